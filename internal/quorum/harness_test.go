package quorum

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/config"
)

// harness drives several engines the way the service host does: a view
// change calls Nodelist on every member, every engine's sync output is
// delivered to all members of its partition in one total order, Installed
// follows once every member is SyncReady, and normal messages are delivered
// in the installed view. Time only moves when a test says so.
type harness struct {
	t      *testing.T
	now    time.Time
	seq    uint64
	cfg    func(id NodeID) Config
	eng    map[NodeID]*Engine
	groups []*group
	rd     map[NodeID]*Ready
}

type group struct {
	ring      RingID
	members   []NodeID
	installed bool
	queue     []wmsg // normal messages, delivered once installed
}

type wmsg struct {
	from NodeID
	b    []byte
}

func newHarness(t *testing.T, cfg func(id NodeID) Config) *harness {
	t.Helper()
	return &harness{t: t, now: time.Unix(1_000_000, 0), cfg: cfg, eng: map[NodeID]*Engine{}, rd: map[NodeID]*Ready{}}
}

// start creates engines without forming a view.
func (h *harness) start(ids ...NodeID) {
	h.t.Helper()
	for _, id := range ids {
		e, err := New(h.cfg(id))
		if err != nil {
			h.t.Fatalf("New(%d): %v", id, err)
		}
		h.eng[id] = e
		h.rd[id] = &Ready{}
		h.collect(id)
	}
}

// boot starts nodes one after the other, each joining everything running.
func (h *harness) boot(ids ...NodeID) {
	h.t.Helper()
	for _, id := range ids {
		h.start(id)
		h.form(h.running())
	}
}

func (h *harness) running() []NodeID {
	var ids []NodeID
	for id := range h.eng {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// form installs new views, one per group; nodes not named keep theirs.
func (h *harness) form(groups ...[]NodeID) {
	h.t.Helper()
	h.settle()
	for _, members := range groups {
		h.seq += 4
		g := &group{ring: RingID{Rep: slices.Min(members), Seq: h.seq}, members: slices.Clone(members)}
		h.groups = slices.DeleteFunc(h.groups, func(o *group) bool {
			o.members = slices.DeleteFunc(o.members, func(id NodeID) bool { return slices.Contains(members, id) })
			return len(o.members) == 0
		})
		h.groups = append(h.groups, g)
		for _, id := range members {
			h.eng[id].Nodelist(h.now, g.ring, members)
		}
	}
	h.settle()
}

// kill stops nodes (no clean leave); the partitions they were in re-form.
func (h *harness) kill(ids ...NodeID) {
	h.t.Helper()
	h.settle()
	var reform [][]NodeID
	for _, g := range h.groups {
		rest := slices.DeleteFunc(slices.Clone(g.members), func(id NodeID) bool { return slices.Contains(ids, id) })
		if len(rest) != len(g.members) && len(rest) > 0 {
			reform = append(reform, rest)
		}
	}
	for _, id := range ids {
		delete(h.eng, id)
	}
	h.groups = slices.DeleteFunc(h.groups, func(g *group) bool {
		g.members = slices.DeleteFunc(g.members, func(id NodeID) bool { return slices.Contains(ids, id) })
		return len(g.members) == 0
	})
	if len(reform) > 0 {
		h.form(reform...)
	}
}

// leave shuts a node down cleanly: its Leave message is delivered, then it
// is gone.
func (h *harness) leave(id NodeID) {
	h.t.Helper()
	h.eng[id].Leave(h.now)
	h.settle()
	h.kill(id)
}

// advance lets time pass and ticks every engine.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	for _, id := range h.running() {
		h.eng[id].Tick(h.now)
	}
	h.settle()
}

func (h *harness) deliverAll(g *group, from NodeID, b []byte, sync bool) {
	for _, id := range g.members {
		h.eng[id].Deliver(h.now, g.ring, from, b, sync)
	}
}

// settle runs until nothing moves.
func (h *harness) settle() {
	h.t.Helper()
	for range 10000 {
		progress := false
		for _, g := range h.groups {
			sent := false
			for _, id := range g.members {
				s, n := h.eng[id].Output()
				if !g.installed {
					for _, b := range s {
						h.deliverAll(g, id, b, true)
						sent, progress = true, true
					}
				}
				for _, b := range n {
					g.queue = append(g.queue, wmsg{id, b})
					progress = true
				}
			}
			if !g.installed && !sent && h.allReady(g) {
				for _, id := range g.members {
					h.eng[id].Installed(h.now, g.ring, g.members)
				}
				g.installed, progress = true, true
			}
			if g.installed && len(g.queue) > 0 {
				q := g.queue
				g.queue = nil
				for _, m := range q {
					h.deliverAll(g, m.from, m.b, false)
				}
				progress = true
			}
		}
		for _, id := range h.running() {
			h.eng[id].Tick(h.now)
			h.collect(id)
		}
		if !progress {
			return
		}
	}
	h.t.Fatal("harness: no quiescence")
}

func (h *harness) allReady(g *group) bool {
	for _, id := range g.members {
		if !h.eng[id].SyncReady(g.ring) {
			return false
		}
	}
	return true
}

// collect accumulates an engine's Ready.
func (h *harness) collect(id NodeID) {
	rd := h.eng[id].Ready()
	acc := h.rd[id]
	acc.Events = append(acc.Events, rd.Events...)
	acc.Replies = append(acc.Replies, rd.Replies...)
	acc.Logs = append(acc.Logs, rd.Logs...)
	if rd.PersistBarrier != 0 {
		acc.PersistBarrier = rd.PersistBarrier
	}
}

// drain returns and forgets what a node produced so far.
func (h *harness) drain(id NodeID) Ready {
	rd := *h.rd[id]
	*h.rd[id] = Ready{}
	return rd
}

func (h *harness) ring(id NodeID) RingID {
	for _, g := range h.groups {
		if slices.Contains(g.members, id) {
			return g.ring
		}
	}
	return RingID{}
}

func (h *harness) info(id NodeID) Info {
	h.t.Helper()
	in, err := h.eng[id].GetInfo(h.now, 0)
	if err != nil {
		h.t.Fatalf("GetInfo on %d: %v", id, err)
	}
	return in
}

// want is one row of a scenario table: what getinfo(0) says.
type want struct {
	quorate                          bool
	expected, highest, total, quorum uint32
	flags                            uint32 // checked only if hasFlags
	hasFlags                         bool
}

func (w want) String() string {
	s := fmt.Sprintf("quorate=%v E=%d H=%d T=%d Q=%d", w.quorate, w.expected, w.highest, w.total, w.quorum)
	if w.hasFlags {
		s += fmt.Sprintf(" flags=%#x", w.flags)
	}
	return s
}

func got(in Info) want {
	return want{quorate: in.Flags&InfoQuorate != 0, expected: in.NodeExpectedVotes, highest: in.HighestExpected,
		total: in.TotalVotes, quorum: in.Quorum, flags: in.Flags, hasFlags: true}
}

// q builds a want: quorate, expected, total, quorum (highest = expected).
func q(quorate bool, expected, total, quorum uint32) want {
	return want{quorate: quorate, expected: expected, highest: expected, total: total, quorum: quorum}
}

func (w want) withHighest(h uint32) want { w.highest = h; return w }
func (w want) withFlags(f uint32) want   { w.flags, w.hasFlags = f, true; return w }

// check compares getinfo(0) on each node with w.
func (h *harness) check(step string, w want, ids ...NodeID) {
	h.t.Helper()
	for _, id := range ids {
		g := got(h.info(id))
		if !w.hasFlags {
			g.flags, g.hasFlags = 0, false
		}
		if g != w {
			h.t.Errorf("%s: node %d: got %v, want %v", step, id, g, w)
		}
	}
}

// logs returns the log lines of a node containing sub.
func logsWith(rd Ready, sub string) []string {
	var out []string
	for _, l := range rd.Logs {
		if strings.Contains(l.Msg, sub) {
			out = append(out, l.Msg)
		}
	}
	return out
}

// ---- configuration helpers ----

type configQuorum = config.Quorum

func u32p(v uint32) *uint32               { return &v }
func bp(v bool) *bool                     { return &v }
func durp(d time.Duration) *time.Duration { return &d }

// nodelist is a configuration of nodes 1..n with one vote each.
func nodelist(n int, opts ...func(*config.Quorum)) func(NodeID) Config {
	return func(id NodeID) Config {
		c := Config{Self: id, Path: "/etc/corosync/corosync.conf"}
		for i := 1; i <= n; i++ {
			c.Nodes = append(c.Nodes, NodeVotes{ID: NodeID(i), Votes: 1})
		}
		for _, o := range opts {
			o(&c.Quorum)
		}
		return c
	}
}

// expectedOnly is a configuration without a nodelist.
func expectedOnly(ev uint32, opts ...func(*config.Quorum)) func(NodeID) Config {
	return func(id NodeID) Config {
		c := Config{Self: id, Path: "/etc/corosync/corosync.conf"}
		c.Quorum.ExpectedVotes = u32p(ev)
		for _, o := range opts {
			o(&c.Quorum)
		}
		return c
	}
}

func twoNode(q *config.Quorum) { q.TwoNode = bp(true) }
func wfaOn(q *config.Quorum)   { q.WaitForAll = bp(true) }
func wfaOff(q *config.Quorum)  { q.WaitForAll = bp(false) }
func lmsOn(q *config.Quorum)   { q.LastManStanding = bp(true) }
func atbOn(q *config.Quorum)   { q.AutoTieBreaker = bp(true) }
func adOn(q *config.Quorum)    { q.AllowDownscale = bp(true) }
func evtOn(q *config.Quorum)   { q.ExpectedVotesTracking = bp(true) }
func atbNode(s string) func(*config.Quorum) {
	return func(q *config.Quorum) { q.AutoTieBreakerNode = s }
}
func lmsWindow(d time.Duration) func(*config.Quorum) {
	return func(q *config.Quorum) { q.LastManStandingWindow = durp(d) }
}
func device(votes *uint32) func(*config.Quorum) {
	return func(q *config.Quorum) {
		q.Device = &config.Device{Model: "net", Votes: votes, Timeout: durp(1000 * time.Millisecond), SyncTimeout: durp(3000 * time.Millisecond)}
	}
}

func ids(a, b int) []NodeID {
	var out []NodeID
	for i := a; i <= b; i++ {
		out = append(out, NodeID(i))
	}
	return out
}
