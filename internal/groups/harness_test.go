package groups

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// harness runs several engines over a total order it controls: each
// partition is one view whose messages are delivered, in the order they
// were taken from the engines (node order), to every member. It is the
// service host and the membership engine in miniature.
type harness struct {
	t      *testing.T
	now    time.Time
	eng    map[NodeID]*Engine
	parts  [][]NodeID
	rings  map[NodeID]RingID
	seq    uint64
	notes  map[whoKey][]Notification
	deacts map[NodeID][]Deactivation
	// held: messages taken from engines but not delivered yet, per part
	// index; hold lets a test reorder or inspect them.
	hold bool
	held map[int][]heldMsg
	incs map[NodeID]uint64 // the last engine incarnation of each node
}

type heldMsg struct {
	from    NodeID
	payload []byte
}

type whoKey struct {
	node NodeID
	tok  Token
}

// who is one local client token.
type who struct {
	node   NodeID
	client ClientID
	tok    Token
	inst   int16
}

func (w who) id() ProviderID { return ProviderID{w.node, w.inst} }

func newHarness(t *testing.T, nodes ...NodeID) *harness {
	h := &harness{t: t, now: time.Unix(1000, 0), eng: map[NodeID]*Engine{}, rings: map[NodeID]RingID{},
		notes: map[whoKey][]Notification{}, deacts: map[NodeID][]Deactivation{}, held: map[int][]heldMsg{}}
	for _, n := range nodes {
		h.eng[n] = h.restart(n)
	}
	h.view(nodes)
	return h
}

// restart is a new engine for node n, one incarnation above its last.
func (h *harness) restart(n NodeID) *Engine {
	if h.incs == nil {
		h.incs = map[NodeID]uint64{}
	}
	h.incs[n]++
	return New(Config{Node: n, Incarnation: h.incs[n]})
}

// view settles the current views, then installs the given partitions.
func (h *harness) view(parts ...[]NodeID) {
	h.t.Helper()
	h.settle()
	h.parts = nil
	for _, p := range parts {
		p = append([]NodeID(nil), p...)
		sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
		h.seq++
		ring := RingID{Rep: p[0], Seq: h.seq}
		for _, n := range p {
			h.eng[n].Nodelist(h.now, ring, p)
		}
		var msgs []heldMsg
		for _, n := range p {
			s, norm := h.eng[n].Output()
			for _, b := range s {
				msgs = append(msgs, heldMsg{n, b})
			}
			// Normal messages queued before the view: the host sends them
			// in the new view (after the sync step).
			for _, b := range norm {
				h.held[len(h.parts)] = append(h.held[len(h.parts)], heldMsg{n, b})
			}
		}
		for _, m := range msgs {
			for _, n := range p {
				h.eng[n].Deliver(h.now, ring, m.from, m.payload, true)
			}
		}
		for _, n := range p {
			if !h.eng[n].SyncReady(ring) {
				h.t.Fatalf("node %d not sync-ready", n)
			}
		}
		for _, n := range p {
			h.eng[n].Installed(h.now, ring, p)
			h.rings[n] = ring
		}
		h.parts = append(h.parts, p)
	}
	h.settle()
}

// kill stops a node: it receives nothing more and is dropped from its
// partition's deliveries; the next view leaves it out.
func (h *harness) kill(n NodeID) {
	delete(h.eng, n)
	for i, p := range h.parts {
		var q []NodeID
		for _, m := range p {
			if m != n {
				q = append(q, m)
			}
		}
		h.parts[i] = q
	}
}

// pump takes every engine's output into the held queues; returns whether
// anything was taken.
func (h *harness) pump() bool {
	any := false
	for i, p := range h.parts {
		for _, n := range p {
			s, norm := h.eng[n].Output()
			if len(s) > 0 {
				h.t.Fatalf("node %d: sync output outside a sync step", n)
			}
			for _, b := range norm {
				h.held[i] = append(h.held[i], heldMsg{n, b})
				any = true
			}
		}
	}
	return any
}

// settle delivers until nothing is left, then checks that the replicas of
// each partition are identical.
func (h *harness) settle() {
	h.t.Helper()
	for round := 0; ; round++ {
		if round > 1000 {
			h.t.Fatal("settle: no quiescence")
		}
		h.pump()
		if h.hold {
			h.collect()
			return
		}
		delivered := false
		for i, p := range h.parts {
			msgs := h.held[i]
			h.held[i] = nil
			for _, m := range msgs {
				delivered = true
				for _, n := range p {
					h.eng[n].Deliver(h.now, h.rings[n], m.from, m.payload, false)
				}
			}
		}
		for _, p := range h.parts {
			for _, n := range p {
				h.eng[n].Tick(h.now)
			}
		}
		h.collect()
		if !delivered && !h.pumpPending() {
			break
		}
	}
	h.checkReplicas()
}

func (h *harness) pumpPending() bool {
	for i := range h.parts {
		if len(h.held[i]) > 0 {
			return true
		}
	}
	for _, p := range h.parts {
		for _, n := range p {
			if len(h.eng[n].normOut) > 0 {
				return true
			}
		}
	}
	return false
}

// release delivers the held messages of partition 0 in the given order of
// indexes (a test-chosen total order), then settles normally.
func (h *harness) release(order ...int) {
	h.t.Helper()
	msgs := h.held[0]
	h.held[0] = nil
	for _, i := range order {
		for _, n := range h.parts[0] {
			h.eng[n].Deliver(h.now, h.rings[n], msgs[i].from, msgs[i].payload, false)
		}
	}
	h.hold = false
	h.settle()
}

func (h *harness) collect() {
	for n, e := range h.eng {
		r := e.Ready()
		for _, x := range r.Notifications {
			k := whoKey{n, x.Token}
			h.notes[k] = append(h.notes[k], x)
		}
		h.deacts[n] = append(h.deacts[n], r.Deactivations...)
	}
}

func (h *harness) checkReplicas() {
	h.t.Helper()
	for _, p := range h.parts {
		if len(p) == 0 {
			continue
		}
		want := digest(h.eng[p[0]])
		for _, n := range p[1:] {
			if got := digest(h.eng[n]); got != want {
				h.t.Fatalf("replicas differ: node %d:\n%s\nnode %d:\n%s", p[0], want, n, got)
			}
		}
	}
}

func digest(e *Engine) string {
	var b strings.Builder
	for _, name := range sortedKeys(e.groups) {
		b.Write(encode(&wmsg{K: kSyncGroup, Group: e.groups[name]}))
		b.WriteByte('\n')
	}
	nodes := make([]NodeID, 0, len(e.adapters))
	for n := range e.adapters {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	for _, n := range nodes {
		fmt.Fprintf(&b, "adapters %d %+v\n", n, e.adapters[n])
	}
	return b.String()
}

// advance lets time pass in steps of one second (so the representative's
// Tick fires close to the deadlines), settling after each.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	for d > 0 {
		step := time.Second
		if d < step {
			step = d
		}
		h.now = h.now.Add(step)
		d -= step
		for _, p := range h.parts {
			for _, n := range p {
				h.eng[n].Tick(h.now)
			}
		}
		h.settle()
	}
}

var nextClient ClientID

func (h *harness) join(node NodeID, inst int16, a Attributes) who {
	h.t.Helper()
	w, err := h.tryJoin(node, inst, a)
	if err != nil {
		h.t.Fatalf("join %d/%d: %v", node, inst, err)
	}
	return w
}

func (h *harness) tryJoin(node NodeID, inst int16, a Attributes) (who, error) {
	nextClient++
	w := who{node: node, client: nextClient, inst: inst}
	tok, err := h.eng[node].Join(h.now, w.client, JoinArgs{Attributes: a, Instance: inst})
	w.tok = tok
	return w, err
}

func (h *harness) e(w who) *Engine { return h.eng[w.node] }

// take returns and clears w's notifications, formatted.
func (h *harness) take(w who) []string {
	h.collect()
	k := whoKey{w.node, w.tok}
	ns := h.notes[k]
	delete(h.notes, k)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = fmtNote(n)
	}
	return out
}

// expect checks w's notifications since the last take.
func (h *harness) expect(w who, want ...string) {
	h.t.Helper()
	got := h.take(w)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("%d/%d (tok %d) notifications:\n got: %s\nwant: %s", w.node, w.inst, w.tok,
			strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func (h *harness) vote(w who, v VoteValue) {
	h.t.Helper()
	if err := h.e(w).Vote(h.now, w.client, w.tok, VoteArgs{Value: v}); err != nil {
		h.t.Fatalf("vote %v by %d/%d: %v", v, w.node, w.inst, err)
	}
}

func (h *harness) voteArgs(w who, a VoteArgs) {
	h.t.Helper()
	if err := h.e(w).Vote(h.now, w.client, w.tok, a); err != nil {
		h.t.Fatalf("vote by %d/%d: %v", w.node, w.inst, err)
	}
}

func short(s string) string { return strings.ReplaceAll(s, "HA_GS_", "") }

func ids(ps []ProviderID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// fmtNote renders a notification in one line, for golden comparisons.
func fmtNote(n Notification) string {
	var b strings.Builder
	switch n.Type {
	case NotifyNPhase, NotifyApproved, NotifyRejected:
		kind := map[NotificationType]string{NotifyNPhase: "nphase", NotifyApproved: "approved", NotifyRejected: "rejected"}[n.Type]
		p := n.Proposal
		fmt.Fprintf(&b, "%s %s ph=%d sum=%s", kind, short(n.Protocol.String()), p.Phase.Number, short(n.Summary.String()))
		if len(p.ChangingMembership) > 0 {
			fmt.Fprintf(&b, " ch=%s", ids(p.ChangingMembership))
		}
		for _, li := range p.LeaveInfo {
			fmt.Fprintf(&b, " li=%s", short(li.Reason.String()))
			if li.Code != 0 {
				fmt.Fprintf(&b, ":%d", li.Code)
			}
		}
		if n.Type != NotifyNPhase {
			fmt.Fprintf(&b, " mem=%s", ids(p.ProposedMembership))
		}
		if p.HasProposedState {
			fmt.Fprintf(&b, " state=%q", p.ProposedState)
		}
		if p.HasMessage {
			fmt.Fprintf(&b, " msg=%q", p.Message)
		}
		if p.HasSourceState {
			fmt.Fprintf(&b, " src=%q", p.SourceState)
		}
	case NotifyAnnouncement:
		fmt.Fprintf(&b, "announce %s %s", short(n.Summary.String()), ids(n.Announcement))
	case NotifyMerge:
		fmt.Fprintf(&b, "merge sum=%s merging=%s state=%q", short(n.Summary.String()), ids(n.Merging), n.MergeState)
	case NotifyDelayedError:
		fmt.Fprintf(&b, "error %s %s", short(n.Err.Error()), short(n.Protocol.String()))
	case NotifySubscription:
		fmt.Fprintf(&b, "sub")
		for _, f := range []struct {
			t SubscriptionType
			n string
		}{{SubscriptionInitial, "initial"}, {SubscriptionState, "state"}, {SubscriptionDeltaJoin, "join"},
			{SubscriptionDeltaLeave, "leave"}, {SubscriptionDissolved, "dissolved"}} {
			if n.SubscriptionType&f.t != 0 {
				b.WriteString(" " + f.n)
			}
		}
		if n.SubscriptionType&SubscriptionState != 0 {
			fmt.Fprintf(&b, " val=%q", n.State)
		}
		if n.FullMembership != nil {
			fmt.Fprintf(&b, " full=%s", ids(n.FullMembership))
		}
		if n.ChangingMembership != nil {
			fmt.Fprintf(&b, " ch=%s", ids(n.ChangingMembership))
		}
	default:
		fmt.Fprintf(&b, "%v", n.Type)
	}
	return b.String()
}
