package groupsim

import (
	"fmt"
	"slices"
	"time"

	"github.com/conclave/conclave/internal/groups"
)

// The checker verifies, from what the clients are told and what the
// replicas hold, the three properties issue 4 item 9 asks for. Everything a
// provider is told is recorded when its node's engine emits it (a client
// that does not dispatch is still told; it just reads later).
//
// 1. Agreement: all surviving providers of a group see the same sequence of
// approved (and rejected) protocols and state values.
//   - Each provider's outcomes form a chain: every protocol starts from the
//     membership and state value the previous one left (approved, or a
//     rejected failure leave / cast-out, which still removes its providers),
//     and its first outcome is its own join. A lost, duplicated or reordered
//     outcome breaks the chain.
//   - For every two providers P and Q of a group, the outcomes P saw with
//     both P and Q members afterwards equal, one for one, the outcomes Q
//     saw with both members afterwards. A difference is allowed only where
//     the two outcomes come from different rings (P and Q were partitioned:
//     each side runs its copy); such a pair has forked, and Final requires
//     that no forked pair is still two live members of one group.
//
// 2. No approved state value is lost while a provider of the group survives:
// after every step, on every node, the replica's membership and state value
// equal what each live local provider was last told (so a view change or a
// merge cannot silently replace them), and a provider whose instance is
// dissolved by a merge is told the state value it loses.
//
// 3. No vote is counted twice or in the wrong phase: a provider's n-phase
// notifications of one protocol number its phases 1, 2, … and the outcome
// names the last; a phase closes without a provider's vote only by its time
// limit (TIME_LIMIT_EXCEEDED, and the provider is named in the tardy
// announcement) or by its failed deactivate script; a counted REJECT ends
// the protocol rejected with EXPLICIT_REJECT; a counted CONTINUE or REJECT
// never lets the phase approve; EXPLICIT_APPROVE needs the provider's
// APPROVE in the last phase. "Counted": the provider is not in the tardy
// list (its vote was in before the time-out).
//
// Provider ids that are reused in a group (the same node and instance
// joining again after leaving) are left out of the pairwise comparison;
// the random test never reuses them.
type checker struct {
	h       *Harness
	groups  map[string]*groupTrack
	pending []*Provider // outcomes waiting for a possible tardy announcement
	// mutate, for the checker's own test, stands for a faulty engine: it
	// may change a notification before the checker sees it, or drop it
	// (false).
	mutate func(p *Provider, n *groups.Notification) bool
	// Counts, to show what a run exercised.
	outcomes, compared, forks, tardy, merges, resolved int
}

type groupTrack struct {
	provs  map[groups.ProviderID]*Provider
	reused map[groups.ProviderID]bool
	pairs  map[[2]groups.ProviderID]*pairState
}

type pairState struct {
	matched int
	forked  bool
}

// rec is one protocol outcome as a provider saw it.
type rec struct {
	key         string // the rendered notification
	ring        groups.RingID
	typ         groups.ProtocolType
	approved    bool
	summary     groups.SummaryCode
	changing    []groups.ProviderID
	before      []groups.ProviderID
	after       []groups.ProviderID
	beforeState string
	afterState  string
}

// protoTrack is a running n-phase protocol as one provider sees it.
type protoTrack struct {
	typ   groups.ProtocolType
	phase int
	votes map[int]groups.VoteValue
}

type pendingFinal struct {
	r     *rec
	track *protoTrack
}

func newChecker(h *Harness) *checker {
	return &checker{h: h, groups: map[string]*groupTrack{}}
}

func (c *checker) group(name string) *groupTrack {
	g := c.groups[name]
	if g == nil {
		g = &groupTrack{provs: map[groups.ProviderID]*Provider{}, reused: map[groups.ProviderID]bool{},
			pairs: map[[2]groups.ProviderID]*pairState{}}
		c.groups[name] = g
	}
	return g
}

func (c *checker) joined(p *Provider) {
	g := c.group(p.Group)
	if old := g.provs[p.ID]; old != nil && old.Member {
		g.reused[p.ID] = true
	}
	g.provs[p.ID] = p
	p.filt = map[groups.ProviderID][]*rec{}
}

// gone: the provider's token died by its client's hand (goodbye, exit).
func (c *checker) gone(p *Provider) {
	if p.pending != nil {
		c.resolve(p, false, false)
	}
	p.Dead = true
	p.latest, p.cur = nil, nil
}

func (c *checker) voted(p *Provider, a groups.VoteArgs) {
	if p.cur == nil || p.latest == nil || p.voted {
		c.h.fail("%s %v: vote accepted though it has no open n-phase notification", p.Group, p.ID)
		return
	}
	p.cur.votes[p.cur.phase] = a.Value
}

func contains(ids []groups.ProviderID, id groups.ProviderID) bool { return slices.Contains(ids, id) }

// cannotVeto: the protocol's membership change stands even when rejected
// (spec §6.2: failure leave, cast-out).
func cannotVeto(t groups.ProtocolType) bool {
	return t == groups.ProtoFailureLeave || t == groups.ProtoCastOut
}

func newRec(n groups.Notification) *rec {
	p := n.Proposal
	r := &rec{key: Render(n), ring: n.Ring, typ: n.Protocol, approved: n.Type == groups.NotifyApproved,
		summary: n.Summary, changing: p.ChangingMembership, before: p.CurrentMembership,
		after: p.CurrentMembership, beforeState: string(p.CurrentState), afterState: string(p.CurrentState)}
	if r.approved || cannotVeto(n.Protocol) {
		r.after = p.ProposedMembership
	}
	if r.approved && p.HasProposedState {
		r.afterState = string(p.ProposedState)
	}
	return r
}

// provider checks and records one notification to p.
func (c *checker) provider(p *Provider, n groups.Notification) {
	h := c.h
	who := fmt.Sprintf("%s %v", p.Group, p.ID)
	if c.mutate != nil && !c.mutate(p, &n) {
		return
	}
	if p.Dead {
		h.fail("%s: told %q after its token died", who, Render(n))
		return
	}
	switch n.Type {
	case groups.NotifyNPhase:
		pr := n.Proposal
		if p.last != nil && (IDs(pr.CurrentMembership) != IDs(p.last.after) || string(pr.CurrentState) != p.last.afterState) {
			h.fail("%s: %q does not start from what the last outcome left (%s state %q)", who, Render(n), IDs(p.last.after), p.last.afterState)
		}
		switch {
		case p.cur == nil && pr.Phase.Number != 1:
			h.fail("%s: protocol starts at phase %d: %q", who, pr.Phase.Number, Render(n))
		case p.cur != nil && (p.cur.typ != n.Protocol || pr.Phase.Number != p.cur.phase+1):
			h.fail("%s: phase %d of %s after phase %d of %s", who, pr.Phase.Number, n.Protocol, p.cur.phase, p.cur.typ)
		}
		if p.cur == nil {
			p.cur = &protoTrack{typ: n.Protocol, votes: map[int]groups.VoteValue{}}
		}
		p.cur.phase = pr.Phase.Number
		p.latest, p.voted, p.voteAt = &n, false, time.Time{}
	case groups.NotifyApproved, groups.NotifyRejected:
		c.outcomes++
		pr := n.Proposal
		r := newRec(n)
		if p.last == nil {
			if n.Protocol != groups.ProtoJoin || !contains(r.changing, p.ID) {
				h.fail("%s: first outcome is not its own join: %q", who, r.key)
			}
		} else if IDs(r.before) != IDs(p.last.after) || r.beforeState != p.last.afterState {
			h.fail("%s: outcome %q does not follow the last one (which left %s state %q): an outcome was lost, repeated or reordered",
				who, r.key, IDs(p.last.after), p.last.afterState)
		}
		if pr.Phase.NumPhases == groups.NPhase {
			if p.cur == nil || p.cur.typ != n.Protocol || pr.Phase.Number != p.cur.phase {
				h.fail("%s: n-phase outcome %q does not end the phases it was shown (%+v)", who, r.key, p.cur)
			}
		} else if p.cur != nil || pr.Phase.Number != 1 {
			h.fail("%s: one-phase outcome %q in the middle of a protocol (%+v)", who, r.key, p.cur)
		}
		track := p.cur
		p.cur, p.latest = nil, nil
		p.last = r
		p.nrecs++
		if contains(r.after, p.ID) {
			if n.Protocol == groups.ProtoJoin && contains(r.changing, p.ID) {
				p.Member = true
			}
			c.pairs(p, r)
		} else {
			p.Dead = true
		}
		if track != nil {
			p.pending = &pendingFinal{r: r, track: track}
			if p.Dead {
				c.resolve(p, false, false) // it will not see the announcement
			} else {
				c.pending = append(c.pending, p)
			}
		}
	case groups.NotifyAnnouncement:
		if n.Summary != groups.TimeLimitExceeded {
			return
		}
		if p.pending == nil {
			h.fail("%s: tardy announcement %v that follows no n-phase outcome", who, IDs(n.Announcement))
			return
		}
		c.tardy++
		c.resolve(p, contains(n.Announcement, p.ID), true)
	case groups.NotifyMerge:
		if n.Summary&groups.GroupDissolved == 0 {
			return
		}
		if p.last != nil && string(n.MergeState) != p.last.afterState {
			h.fail("%s: merge dissolves its instance reporting state %q, but it last saw %q", who, n.MergeState, p.last.afterState)
		}
		c.merges++
		p.Dead = true
		p.cur, p.latest = nil, nil
	case groups.NotifyDelayedError:
		if n.Protocol == groups.ProtoJoin {
			if p.Member {
				h.fail("%s: join error %v after the join was approved", who, n.Err)
			}
			p.Dead = true
		}
	}
}

// endBatch: the notifications of one Ready are handed out; an outcome
// whose tardy announcement did not come with it had none.
func (c *checker) endBatch() {
	for _, p := range c.pending {
		if p.pending != nil {
			c.resolve(p, false, true)
		}
	}
	c.pending = c.pending[:0]
}

// resolve checks the votes p cast in a protocol that ended. tardy: p is
// named in its tardy announcement; known: p could have seen that
// announcement.
func (c *checker) resolve(p *Provider, tardy, known bool) {
	pf := p.pending
	p.pending = nil
	c.resolved++
	r, t := pf.r, pf.track
	who := fmt.Sprintf("%s %v", p.Group, p.ID)
	deactFlags := r.summary&(groups.DeactivateUnsuccessful|groups.DeactivateTimeLimitExceeded) != 0
	deactSettled := r.typ == groups.ProtoExpel && deactFlags && contains(r.changing, p.ID)
	for j := 1; j <= t.phase; j++ {
		v, voted := t.votes[j]
		if !voted {
			if deactSettled {
				continue
			}
			if r.summary&groups.TimeLimitExceeded == 0 {
				c.h.fail("%s: phase %d of %q closed without its vote and without a time-out", who, j, r.key)
			} else if known && !tardy {
				c.h.fail("%s: phase %d of %q closed without its vote, but it is not in the tardy announcement", who, j, r.key)
			}
			continue
		}
		if tardy || !known || deactSettled {
			// Its vote may have come after the time-out, or its failed
			// script replaced it (U-10: REJECT with only the deactivate flag).
			continue
		}
		switch {
		case j < t.phase && v == groups.VoteReject:
			c.h.fail("%s: its REJECT in phase %d was counted, yet %q ran phase %d", who, j, r.key, j+1)
		case j == t.phase && r.approved && v != groups.VoteApprove:
			c.h.fail("%s: it voted %v in the last phase %d, yet %q", who, v, j, r.key)
		case j == t.phase && v == groups.VoteReject && r.summary&groups.ExplicitReject == 0:
			c.h.fail("%s: its REJECT in phase %d was counted, yet %q lacks EXPLICIT_REJECT", who, j, r.key)
		}
	}
	if r.approved && r.summary&groups.ExplicitApprove != 0 {
		if v, ok := t.votes[t.phase]; !ok || v != groups.VoteApprove {
			c.h.fail("%s: %q says EXPLICIT_APPROVE, but its last-phase vote was %v (cast: %v)", who, r.key, v, ok)
		}
	}
}

// pairs records r, seen by p, for every other member after it, and
// compares p's and that member's sequences so far.
func (c *checker) pairs(p *Provider, r *rec) {
	g := c.group(p.Group)
	if g.reused[p.ID] {
		return
	}
	for _, q := range r.after {
		if q == p.ID || g.reused[q] {
			continue
		}
		p.filt[q] = append(p.filt[q], r)
		if other := g.provs[q]; other != nil {
			c.compare(g, p, other)
		}
	}
}

func pairKey(a, b groups.ProviderID) [2]groups.ProviderID {
	if b.Node < a.Node || (b.Node == a.Node && b.Instance < a.Instance) {
		a, b = b, a
	}
	return [2]groups.ProviderID{a, b}
}

func (c *checker) compare(g *groupTrack, p, q *Provider) {
	k := pairKey(p.ID, q.ID)
	ps := g.pairs[k]
	if ps == nil {
		ps = &pairState{}
		g.pairs[k] = ps
	}
	if ps.forked {
		return
	}
	a, b := p.filt[q.ID], q.filt[p.ID]
	for ps.matched < len(a) && ps.matched < len(b) {
		x, y := a[ps.matched], b[ps.matched]
		if x.key != y.key {
			if x.ring == y.ring {
				c.h.fail("%s: in ring %s, %v and %v saw different outcomes at the same point: %q and %q",
					p.Group, x.ring, p.ID, q.ID, x.key, y.key)
				return
			}
			ps.forked = true
			c.forks++
			return
		}
		ps.matched++
		c.compared++
	}
}

// local checks node's replica against what its live providers were told
// last: same membership, same state value.
func (c *checker) local(node NodeID, e *groups.Engine) {
	for _, cl := range c.h.order {
		if cl.Node != node || !cl.Alive() {
			continue
		}
		for _, name := range sortedKeys(cl.provs) {
			p := cl.provs[name]
			if p.Dead || !p.Member || p.last == nil {
				continue
			}
			gi, ok := e.Group(p.Group)
			if !ok {
				c.h.fail("node %d: group %s is gone from the replica, but its provider %v was never told", node, p.Group, p.ID)
				continue
			}
			var ids []groups.ProviderID
			for _, m := range gi.Providers {
				ids = append(ids, m.ID)
			}
			if IDs(ids) != IDs(p.last.after) || string(gi.State) != p.last.afterState {
				c.h.fail("node %d: replica of %s has %s state %q, but its provider %v was last told %s state %q",
					node, p.Group, IDs(ids), gi.State, p.ID, IDs(p.last.after), p.last.afterState)
			}
		}
	}
}

// Final checks, once the cluster has converged into one view and every
// protocol has ended, that every node holds the same replica, and that
// every two live members of a group saw the same outcomes while both were
// members.
func (h *Harness) Final() error {
	h.collect()
	if h.err != nil {
		return h.err
	}
	var ref string
	refNode := NodeID(0)
	for _, n := range h.S.Nodes() {
		e := h.Engine(n.ID)
		if e == nil {
			continue
		}
		var s string
		for _, gi := range e.Groups() {
			s += gi.Name + " " + renderGroup(gi) + "\n"
		}
		if refNode == 0 {
			ref, refNode = s, n.ID
		} else if s != ref {
			return fmt.Errorf("replicas differ after convergence:\nnode %d:\n%snode %d:\n%s", refNode, ref, n.ID, s)
		}
	}
	for _, name := range sortedKeys(h.check.groups) {
		g := h.check.groups[name]
		var live []*Provider
		for _, p := range g.provs {
			if p.alive() && p.Member && !g.reused[p.ID] {
				live = append(live, p)
			}
		}
		for _, p := range live {
			for _, q := range live {
				if p == q || !contains(p.last.after, q.ID) || !contains(q.last.after, p.ID) {
					continue
				}
				ps := g.pairs[pairKey(p.ID, q.ID)]
				a, b := p.filt[q.ID], q.filt[p.ID]
				switch {
				case ps != nil && ps.forked:
					return fmt.Errorf("%s: %v and %v are members of one instance, but their histories forked at outcome %d: %q vs %q",
						name, p.ID, q.ID, ps.matched, a[ps.matched].key, b[ps.matched].key)
				case len(a) != len(b):
					return fmt.Errorf("%s: %v saw %d outcomes with %v as a member, %v saw %d", name, p.ID, len(a), q.ID, q.ID, len(b))
				}
			}
		}
	}
	return nil
}
