package membership

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// How a view forms
//
// Every node computes, from what it hears, the view it would like: itself,
// the members of its current view, then any other node, each taken only if
// every pair in the set hears each other (heartbeats carry each node's "deaf"
// set, so the clique test needs no extra round). The lowest node id of that
// set is its coordinator. A coordinator that wants a different view than the
// current one sends Prepare to the proposed members; each freezes its old
// view (stops delivering, sending and sequencing in it) and answers Flush
// with what it holds of the old view. With every Flush in hand the
// coordinator picks a ring seq above any the members ever used, and sends
// Commit carrying all Flushes. Every member computes from them the same cut
// of its old view (the longest prefix some survivor holds), fetches what it
// lacks from a survivor that holds it, delivers up to the cut, and only then
// starts the new view. That is virtual synchrony: members that move together
// from one view to the next deliver the same messages of the old view.
//
// A node follows the lowest coordinator it can; a Prepare from a higher one
// is rejected with a hint. Silent members are dropped after Consensus; a
// coordinator that never proposes is given up after Consensus. Because the
// lowest node of a connected clique absorbs every node compatible with its
// view and no higher node can pull members away from it, a quiet network
// converges to one view per clique, and asymmetric links end as separate
// views rather than endless changes.

type coordinator struct {
	attempt    uint64
	members    []Member
	prepare    *peerpb.Prepare
	flushes    map[NodeID]*peerpb.Flush
	started    time.Time
	lastSend   map[NodeID]time.Time
	committed  bool
	ring       RingID
	commit     *peerpb.Commit
	acked      map[NodeID]bool
	commitTime time.Time
}

// rejectedPrepare is the last Prepare this node refused.
type rejectedPrepare struct {
	from    NodeID
	inc     uint64
	prepare *peerpb.Prepare
	at      time.Time
}

type preparation struct {
	coord   NodeID
	inc     uint64
	attempt uint64
	heard   time.Time
}

type recovery struct {
	started   time.Time
	old       *order
	cut       uint64
	group     []*peerpb.Transition // members leaving the same old ring
	lastFetch time.Time
}

// candidate: a node we could put in a view now.
func (e *Engine) candidate(p *peer) bool {
	return !e.deaf.has(p.idx) && !p.heldUntil.After(e.now) && !p.unresponsiveUntil.After(e.now) && !p.excludedUntil.After(e.now)
}

// choose returns the view this node would form now, sorted by node id.
func (e *Engine) choose() []NodeID {
	in := newNodeSet(len(e.ids))
	deaf := newNodeSet(len(e.ids)) // nodes some chosen node does not hear
	in.set(e.self)
	deaf.or(e.deaf)
	try := func(p *peer) {
		if p.idx == e.self || in.has(p.idx) || deaf.has(p.idx) || !e.candidate(p) {
			return
		}
		if p.deaf != nil && p.deaf.intersects(in) {
			return
		}
		in.set(p.idx)
		if p.deaf != nil {
			deaf.or(p.deaf)
		}
	}
	for _, m := range e.members {
		if p := e.peer(m.Node); p != nil && p.inc == m.Incarnation {
			try(p)
		}
	}
	for _, p := range e.peers {
		// Never pull a node out of a view led by a lower node: that node
		// absorbs what it can reach, and a tug of war between coordinators
		// would never settle.
		// (Its leader itself, anyone whose leader is with us, and anyone
		// whose leader we know is gone are fine. A leader we merely do not
		// hear may well be alive for them: a one-way link.)
		if r := p.ring.Rep; r != 0 && r < e.cfg.Self && r != p.id {
			if i, ok := e.index[r]; ok && !in.has(i) && !e.peers[i].gone() {
				continue
			}
		}
		try(p)
	}
	ids := make([]NodeID, 0, in.count())
	for i, id := range e.ids {
		if in.has(i) {
			ids = append(ids, id)
		}
	}
	return ids
}

// lost: q is known gone, or went silent so recently that others may still
// be about to notice. (A node silent for long is more likely alive for
// others, behind a one-way link.)
func (e *Engine) lost(q *peer) bool {
	if q.gone() {
		return true
	}
	return !e.hears(q) && !q.lastHeard.IsZero() && e.now.Sub(q.lastHeard) < e.cfg.Token+4*e.period
}

// viewMate: p is in our committed view and agrees it is.
func (e *Engine) viewMate(p *peer) bool {
	if p.ring == e.committed && p.state >= StateRecover && p.state <= StateOperational {
		return true
	}
	c := e.coord
	return c != nil && c.committed && c.ring == e.committed && !c.acked[p.id]
}

// broken: our view cannot go on as it is. We have none, or a member is out
// of reach, restarted, or no longer in our ring.
func (e *Engine) broken(chosen []NodeID) bool {
	if e.state == StateGather || e.state == StatePrepared {
		return true
	}
	for _, m := range e.members {
		if m.Node == e.cfg.Self {
			continue
		}
		p := e.peer(m.Node)
		if _, ok := slices.BinarySearch(chosen, m.Node); !ok || p.inc != m.Incarnation || !e.viewMate(p) {
			return true
		}
	}
	return false
}

// needChange: the view we would form differs from the one we have.
func (e *Engine) needChange(chosen []NodeID) bool {
	return e.broken(chosen) || len(chosen) != len(e.members)
}

// joinWait is how long the wanted view must stay unchanged before nodes are
// added. Up to 64 nodes, reachability changes reach every peer in a round
// trip and Join suffices; beyond that they travel with the (stretched)
// heartbeat period, and a coordinator acting on older news forms a cascade
// of small views.
func (e *Engine) joinWait() time.Duration {
	if len(e.ids) <= allToAllLimit {
		return e.cfg.Join
	}
	return max(e.cfg.Join, e.period)
}

// adds: the view would take in nodes that are not in the current one.
func (e *Engine) adds(chosen []NodeID) bool {
	if e.state == StateGather && len(e.members) == 0 {
		return true
	}
	for _, id := range chosen {
		if _, ok := e.isMember(id); !ok {
			return true
		}
	}
	return false
}

func hashIDs(ids []NodeID) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, id := range ids {
		b[0], b[1], b[2], b[3] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
		h.Write(b[:])
	}
	return h.Sum64()
}

// evaluate decides whether to start, restart or wait for a view change.
func (e *Engine) evaluate() {
	e.viewDirty = false
	e.joinAt = time.Time{}
	if e.state == StateLeft || !e.started {
		return
	}
	chosen := e.choose()
	if sig := hashIDs(chosen); sig != e.chosenSig {
		e.chosenSig = sig
		e.chosenSince = e.now
	}
	if c := e.coord; c != nil && !c.committed {
		// A proposed member is no longer reachable: propose again without
		// it at once, rather than wait out Consensus.
		for _, m := range c.members {
			if _, ok := slices.BinarySearch(chosen, m.Node); !ok || (m.Node != e.cfg.Self && e.peer(m.Node).inc != m.Incarnation) {
				if chosen[0] == e.cfg.Self {
					e.startAttempt(chosen)
				} else {
					e.abortAttempt()
					e.viewDirty = true
				}
				return
			}
		}
		return
	}
	need := e.needChange(chosen)
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		e.log.Debug("evaluate", "ring", e.ring.String(), "state", e.state.String(), "chosen", chosen, "need", need, "deaf", e.deafString())
	}
	if !need {
		e.waitFor = 0
		return
	}
	leader := chosen[0]
	if pr := e.prep; pr != nil && pr.coord != e.cfg.Self && pr.coord != leader {
		// We are prepared for another coordinator. While it lives, its
		// commit is on its way (it proposed us); leaving it now would only
		// split the view it is forming.
		if c := e.peer(pr.coord); c != nil && e.hears(c) {
			return
		}
	}
	if leader == e.cfg.Self {
		if e.adds(chosen) && e.now.Sub(e.chosenSince) < e.joinWait() {
			e.joinAt = e.chosenSince.Add(e.joinWait()) // let joins settle
			return
		}
		e.startAttempt(chosen)
		return
	}
	if e.prep != nil && e.prep.coord == leader {
		return // prepared for it; waiting for its commit
	}
	if r := e.rejected; r.prepare != nil && r.from == leader && e.now.Sub(r.at) < e.cfg.Retransmit*4 {
		e.rejected = rejectedPrepare{}
		if p := e.peer(leader); p.inc == r.inc {
			e.onPrepare(p, r.inc, r.prepare)
			return
		}
	}
	if !e.broken(chosen) {
		// Our view is fine and only could grow: that is the leader's
		// call. Never leave a working view over it.
		e.waitFor = 0
		return
	}
	if e.waitFor != leader {
		e.waitFor = leader
		e.waitSince = e.now
	}
}

func (e *Engine) tickView() {
	now := e.now
	if c := e.coord; c != nil {
		e.tickCoordinator(c)
	}
	if p := e.prep; p != nil && p.coord != e.cfg.Self && now.Sub(p.heard) > 2*e.cfg.Consensus {
		cp := e.peer(p.coord)
		cp.unresponsiveUntil = now.Add(4 * e.cfg.Consensus)
		e.log.Warn("coordinator did not commit the view; giving up on it",
			"ring", e.ring.String(), "coordinator", p.coord, "attempt", p.attempt)
		e.prep = nil
		e.state = StateGather
		e.viewDirty = true
	}
	if e.waitFor != 0 && now.Sub(e.waitSince) > e.cfg.Consensus {
		p := e.peer(e.waitFor)
		p.unresponsiveUntil = now.Add(4 * e.cfg.Consensus)
		e.log.Info("expected coordinator does not form a view with this node; going on without it",
			"ring", e.ring.String(), "coordinator", e.waitFor)
		e.waitFor = 0
		e.viewDirty = true
	}
	if r := e.recov; r != nil {
		if now.Sub(r.started) > 2*e.cfg.Consensus {
			// Every entry up to the cut is held by a member of the view
			// (that is how the cut is chosen), so this cannot happen; if
			// it does, start over rather than hold the new view's sync
			// hostage: peers see us leave it and re-form.
			e.log.Error("could not complete the old view's messages; starting over",
				"ring", e.ring.String(), "committed", e.committed.String(), "cut", r.cut)
			e.recov, e.next = nil, nil
			e.state = StateGather
			e.viewDirty = true
		} else {
			e.recoverStep()
		}
	}
	if e.viewDirty || (!e.joinAt.IsZero() && !now.Before(e.joinAt)) {
		e.evaluate()
	}
}

// startAttempt proposes chosen as the next view.
func (e *Engine) startAttempt(chosen []NodeID) {
	e.nextAttempt++
	c := &coordinator{
		attempt:  e.nextAttempt,
		flushes:  map[NodeID]*peerpb.Flush{},
		started:  e.now,
		lastSend: map[NodeID]time.Time{},
	}
	pm := make([]*peerpb.Member, 0, len(chosen))
	for _, id := range chosen {
		inc := e.cfg.Incarnation
		if id != e.cfg.Self {
			inc = e.peer(id).inc
		}
		c.members = append(c.members, Member{Node: id, Incarnation: inc})
		pm = append(pm, &peerpb.Member{Node: uint32(id), Incarnation: inc})
	}
	e.coord = c
	e.waitFor = 0
	e.log.Info("forming view", "ring", e.ring.String(), "attempt", c.attempt, "members", chosen)
	c.flushes[e.cfg.Self] = e.prepare(e.cfg.Self, e.cfg.Incarnation, c.attempt)
	prep := &peerpb.Prepare{Attempt: c.attempt, Members: pm}
	c.prepare = prep
	for _, m := range c.members {
		if m.Node != e.cfg.Self {
			e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Prepare{Prepare: prep}})
			c.lastSend[m.Node] = e.now
		}
	}
	e.maybeCommit()
}

func (e *Engine) abortAttempt() {
	if e.coord == nil || e.coord.committed {
		e.coord = nil
		return
	}
	e.coord = nil
	if e.prep != nil && e.prep.coord == e.cfg.Self {
		e.prep = nil
		e.state = StateGather
	}
}

func (e *Engine) tickCoordinator(c *coordinator) {
	now := e.now
	if !c.committed {
		if now.Sub(c.started) > e.cfg.Consensus {
			var silent []NodeID
			for _, m := range c.members {
				if c.flushes[m.Node] == nil {
					e.peer(m.Node).unresponsiveUntil = now.Add(4 * e.cfg.Consensus)
					silent = append(silent, m.Node)
				}
			}
			e.log.Warn("members did not answer; forming the view without them",
				"ring", e.ring.String(), "attempt", c.attempt, "silent", silent)
			e.abortAttempt()
			e.viewDirty = true
			return
		}
		for _, m := range c.members {
			if m.Node != e.cfg.Self && c.flushes[m.Node] == nil && now.Sub(c.lastSend[m.Node]) >= e.cfg.Retransmit {
				e.resendPrepare(c, m.Node)
			}
		}
		return
	}
	done := true
	for _, m := range c.members {
		if m.Node == e.cfg.Self || c.acked[m.Node] {
			continue
		}
		if e.peer(m.Node).ring == c.ring {
			c.acked[m.Node] = true
			continue
		}
		done = false
		if now.Sub(c.lastSend[m.Node]) >= e.cfg.Retransmit {
			e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Commit{Commit: c.commit}})
			c.lastSend[m.Node] = now
			e.stats.Retransmissions++
		}
	}
	if done || now.Sub(c.commitTime) > e.cfg.Consensus {
		e.coord = nil
		e.viewDirty = true
	}
}

func (e *Engine) resendPrepare(c *coordinator, to NodeID) {
	e.send(to, &peerpb.Message{Body: &peerpb.Message_Prepare{Prepare: c.prepare}})
	c.lastSend[to] = e.now
	e.stats.Retransmissions++
}

// prepare freezes the current view for coordinator coord and returns the
// Flush describing it.
func (e *Engine) prepare(coord NodeID, inc, attempt uint64) *peerpb.Flush {
	if e.coord != nil && coord != e.cfg.Self {
		e.log.Info("following a lower coordinator", "ring", e.ring.String(), "coordinator", coord)
		e.coord = nil
	}
	if e.state == StateRecover {
		// The committed view never started here; report the old one again.
		e.next, e.recov = nil, nil
	}
	e.prep = &preparation{coord: coord, inc: inc, attempt: attempt, heard: e.now}
	if c := e.peer(coord); c != nil && c.idx != e.self {
		c.unresponsiveUntil, c.excludedUntil = time.Time{}, time.Time{} // we follow it now
	}
	e.state = StatePrepared
	e.installed = false
	f := &peerpb.Flush{Attempt: attempt, MaxSeq: e.maxSeq}
	if o := e.cur; o != nil {
		o.frozen = true
		f.OldRing = ringPB(o.ring)
		f.Delivered = o.delivered
		f.Held = o.heldRanges()
	}
	return f
}

func (e *Engine) onPrepare(p *peer, inc uint64, pr *peerpb.Prepare) {
	in := false
	for _, m := range pr.Members {
		if NodeID(m.Node) == e.cfg.Self && m.Incarnation == e.cfg.Incarnation {
			in = true
		}
	}
	if !in {
		return
	}
	if lc := e.lastCommit; lc.coord == p.id && (inc < lc.inc || (inc == lc.inc && pr.Attempt <= lc.attempt)) {
		return // a late copy of an attempt we already committed
	}
	reject := func(pref NodeID) {
		// Kept: if p becomes our leader soon (say our coordinator just
		// died and we have not heard yet), we accept it then, without
		// waiting for p to send it again.
		e.rejected = rejectedPrepare{from: p.id, inc: inc, prepare: pr, at: e.now}
		e.send(p.id, &peerpb.Message{Body: &peerpb.Message_Reject{Reject: &peerpb.Reject{Attempt: pr.Attempt, Preferred: uint32(pref), Ring: ringPB(e.committed)}}})
	}
	if p.heldUntil.After(e.now) {
		reject(0)
		return
	}
	if leader := e.choose()[0]; p.id > leader {
		reject(leader)
		return
	}
	if cur := e.prep; cur != nil {
		switch {
		case p.id > cur.coord:
			reject(cur.coord)
			return
		case p.id == cur.coord && (inc < cur.inc || (inc == cur.inc && pr.Attempt < cur.attempt)):
			return // an older attempt
		case p.id == cur.coord && inc == cur.inc && pr.Attempt == cur.attempt:
			cur.heard = e.now // a retransmission: our Flush was lost
		}
	}
	var f *peerpb.Flush
	if cur := e.prep; cur != nil && cur.coord == p.id && cur.inc == inc && cur.attempt == pr.Attempt {
		f = e.flushOf(pr.Attempt)
	} else {
		f = e.prepare(p.id, inc, pr.Attempt)
	}
	e.waitFor = 0
	e.send(p.id, &peerpb.Message{Body: &peerpb.Message_Flush{Flush: f}})
}

func (e *Engine) flushOf(attempt uint64) *peerpb.Flush {
	f := &peerpb.Flush{Attempt: attempt, MaxSeq: e.maxSeq}
	if o := e.cur; o != nil {
		f.OldRing = ringPB(o.ring)
		f.Delivered = o.delivered
		f.Held = o.heldRanges()
	}
	return f
}

func (e *Engine) onFlush(p *peer, f *peerpb.Flush) {
	c := e.coord
	if c == nil || c.committed || f.Attempt != c.attempt {
		return
	}
	for _, m := range c.members {
		if m.Node == p.id && m.Incarnation == p.inc {
			c.flushes[p.id] = f
			e.maybeCommit()
			return
		}
	}
}

func (e *Engine) onReject(p *peer, r *peerpb.Reject) {
	e.peerRing(p, ringOf(r.Ring))
	if c := e.coord; c != nil && !c.committed && r.Attempt == c.attempt {
		for _, m := range c.members {
			if m.Node != p.id {
				continue
			}
			if q := e.peer(NodeID(r.Preferred)); q != nil && q.idx != e.self && e.lost(q) {
				// It follows a coordinator that is gone or that we just
				// stopped hearing: it has not learned yet, and will accept
				// our Prepare, which is sent again, once it has.
				return
			}
			// It follows someone else: leave it out of our view.
			p.excludedUntil = e.now.Add(4 * e.cfg.Consensus)
			e.viewDirty = true
			return
		}
	}

}

func (e *Engine) maybeCommit() {
	c := e.coord
	if c == nil || c.committed {
		return
	}
	for _, m := range c.members {
		if c.flushes[m.Node] == nil {
			return
		}
	}
	seq := e.maxSeq
	for _, f := range c.flushes {
		seq = max(seq, f.MaxSeq)
	}
	ring := RingID{Rep: e.cfg.Self, Seq: seq + 4}
	cm := &peerpb.Commit{Attempt: c.attempt, Ring: ringPB(ring)}
	for _, m := range c.members {
		f := c.flushes[m.Node]
		cm.Members = append(cm.Members, &peerpb.Member{Node: uint32(m.Node), Incarnation: m.Incarnation})
		cm.Transitions = append(cm.Transitions, &peerpb.Transition{Node: uint32(m.Node), OldRing: f.OldRing, Delivered: f.Delivered, Held: f.Held})
	}
	c.committed, c.ring, c.commit, c.commitTime = true, ring, cm, e.now
	c.acked = map[NodeID]bool{}
	for _, m := range c.members {
		if m.Node != e.cfg.Self {
			e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Commit{Commit: cm}})
			c.lastSend[m.Node] = e.now
		}
	}
	e.applyCommit(cm)
}

func (e *Engine) onCommit(p *peer, inc uint64, cm *peerpb.Commit) {
	ring := ringOf(cm.Ring)
	if ring == e.committed && e.state != StatePrepared {
		e.send(p.id, &peerpb.Message{Body: &peerpb.Message_CommitAck{CommitAck: &peerpb.CommitAck{Ring: cm.Ring}}})
		return
	}
	pr := e.prep
	if pr == nil || pr.coord != p.id || pr.inc != inc || pr.attempt != cm.Attempt || ring.Rep != p.id {
		return
	}
	if ring.Seq <= e.maxSeq {
		e.log.Error("refusing a commit whose ring seq is not above ours", "ring", ring.String(), "max_seq", e.maxSeq)
		return
	}
	e.applyCommit(cm)
	e.send(p.id, &peerpb.Message{Body: &peerpb.Message_CommitAck{CommitAck: &peerpb.CommitAck{Ring: cm.Ring}}})
}

func (e *Engine) onCommitAck(p *peer, a *peerpb.CommitAck) {
	if r := ringOf(a.Ring); r.Seq >= p.ring.Seq {
		e.peerRing(p, r)
		if p.state < StateRecover || p.state > StateOperational {
			p.state = StateRecover
		}
	}
	if c := e.coord; c != nil && c.committed && ringOf(a.Ring) == c.ring {
		c.acked[p.id] = true
	}
}

// applyCommit moves to the committed view: persist its seq, then complete the
// old view up to the agreed cut.
func (e *Engine) applyCommit(cm *peerpb.Commit) {
	ring := ringOf(cm.Ring)
	e.maxSeq = ring.Seq
	e.persist = true
	if e.prep != nil {
		e.lastCommit = *e.prep
	}
	e.prep = nil
	e.committed = ring
	e.members = e.members[:0:0]
	for _, m := range cm.Members {
		e.members = append(e.members, Member{Node: NodeID(m.Node), Incarnation: m.Incarnation})
	}
	e.stats.ViewChanges++
	// Members of a committed view demonstrably cooperate: forget why we
	// held any of them at arm's length.
	for _, m := range e.members {
		if p := e.peer(m.Node); p != nil && p.idx != e.self {
			p.unresponsiveUntil, p.excludedUntil = time.Time{}, time.Time{}
		}
	}
	e.next = newOrder(e, ring, e.members)
	e.recov = &recovery{old: e.cur, started: e.now}
	e.state = StateRecover
	if old := e.cur; old != nil {
		for _, t := range cm.Transitions {
			if ringOf(t.OldRing) == old.ring {
				e.recov.group = append(e.recov.group, t)
			}
		}
		e.recov.cut = cutOf(e.recov.group)
		if limit := old.delivered + maxLogSpan; e.recov.cut > limit {
			// No log holds that much; a corrupt Commit must not make us
			// walk billions of sequence numbers.
			e.log.Error("commit claims an impossible cut; limiting it", "ring", e.ring.String(), "cut", e.recov.cut, "limit", limit)
			e.recov.cut = limit
		}
		if e.cfg.Testing.SkipFlush {
			e.recov.cut = old.received
		}
		if e.recov.cut < old.delivered {
			e.recov.cut = old.delivered
		}
	}
	e.recoverStep()
}

// cutOf is the end of the longest prefix of the old view's order that some
// member of group holds: everything any of them delivered, extended by
// entries they hold beyond it.
func cutOf(group []*peerpb.Transition) uint64 {
	var cut uint64
	for _, t := range group {
		cut = max(cut, t.Delivered)
	}
	for grown := true; grown; {
		grown = false
		for _, t := range group {
			for _, r := range t.Held {
				if r.First <= cut+1 && r.Last > cut {
					cut = r.Last
					grown = true
				}
			}
		}
	}
	return cut
}

// holder picks the member of group that serves entry seq: the lowest node id
// other than self that delivered or holds it.
func holder(group []*peerpb.Transition, seq uint64, self NodeID) NodeID {
	best := NodeID(0)
	for _, t := range group {
		if NodeID(t.Node) == self {
			continue
		}
		has := t.Delivered >= seq
		for _, r := range t.Held {
			if r.First <= seq && seq <= r.Last {
				has = true
			}
		}
		if has && (best == 0 || NodeID(t.Node) < best) {
			best = NodeID(t.Node)
		}
	}
	return best
}

// recoverStep fetches missing old-view entries, and finishes the transition
// once every entry up to the cut is here.
func (e *Engine) recoverStep() {
	r := e.recov
	if r == nil {
		return
	}
	if o := r.old; o != nil {
		missing := o.missing(o.delivered+1, r.cut)
		if len(missing) > 0 {
			if !r.lastFetch.IsZero() && e.now.Sub(r.lastFetch) < e.cfg.Retransmit {
				return
			}
			r.lastFetch = e.now
			asks := map[NodeID][]*peerpb.Range{}
			var order []NodeID
			for _, rg := range missing {
				for s := rg.First; s <= rg.Last; s++ {
					h := holder(r.group, s, e.cfg.Self)
					if h == 0 {
						continue // cannot happen: the cut only covers held entries
					}
					if _, ok := asks[h]; !ok {
						order = append(order, h)
					}
					asks[h] = extendRanges(asks[h], s)
				}
			}
			for _, h := range order {
				e.send(h, &peerpb.Message{Body: &peerpb.Message_Fetch{Fetch: &peerpb.Fetch{Ring: ringPB(o.ring), Ranges: asks[h]}}})
			}
			return
		}
		for o.delivered < r.cut {
			en := o.log.get(o.delivered + 1)
			o.delivered++
			e.deliverEntry(o, en)
		}
	}
	e.finishTransition()
}

func (e *Engine) onFetch(p *peer, f *peerpb.Fetch) {
	ring := ringOf(f.Ring)
	var o *order
	for _, c := range []*order{e.cur, e.prev} {
		if c != nil && c.ring == ring {
			o = c
		}
	}
	if o == nil {
		return
	}
	var batch []*peerpb.Entry
	size := 0
	flush := func() {
		if len(batch) > 0 {
			e.send(p.id, &peerpb.Message{Body: &peerpb.Message_Retrans{Retrans: &peerpb.Retrans{Ring: f.Ring, Entries: batch}}})
			batch, size = nil, 0
		}
	}
	n := 0
	lo, hi := o.log.base+1, o.log.base+uint64(len(o.log.buf)) // what we could hold
	for _, r := range f.Ranges {
		for s := max(r.First, lo); s <= min(r.Last, hi) && n < 4*e.cfg.Window; s++ {
			en := o.log.get(s)
			if en == nil {
				continue
			}
			n++
			if size+entrySize(en) > e.cfg.MaxBatch {
				flush()
			}
			batch = append(batch, en)
			size += entrySize(en)
		}
	}
	flush()
}

func (e *Engine) onRetrans(p *peer, rt *peerpb.Retrans) {
	r := e.recov
	if r == nil || r.old == nil || r.old.ring != ringOf(rt.Ring) {
		return
	}
	for _, en := range rt.Entries {
		r.old.store(e, en)
	}
	if len(r.old.missing(r.old.delivered+1, r.cut)) == 0 {
		r.lastFetch = time.Time{}
		e.recoverStep()
	}
}

// finishTransition starts the committed view: the old one is complete.
func (e *Engine) finishTransition() {
	old := e.cur
	var oldMembers []Member
	if old != nil {
		oldMembers = old.members
		e.requeue(old)
	}
	e.prev, e.cur, e.next, e.recov = old, e.next, nil, nil
	e.ring = e.committed
	e.state = StateSync
	e.installed = false
	var joined, left []NodeID
	for _, m := range e.members {
		if !hasMember(oldMembers, m) {
			joined = append(joined, m.Node)
		}
	}
	for _, m := range oldMembers {
		if !hasMember(e.members, m) {
			left = append(left, m.Node)
			if m.Node == e.cfg.Self {
				continue
			}
			if p := e.peer(m.Node); !(p.left && p.deadInc >= m.Incarnation) {
				e.recordRemoval(p)
			}
		}
	}
	ids := memberIDs(e.members)
	e.log.Info("view started", "ring", e.ring.String(), "members", ids, "joined", joined, "left", left)
	e.emit(Event{Kind: EventNodelist, Ring: e.ring, Members: ids, Joined: joined, Left: left})
	e.viewDirty = true
	e.cur.deliverReady(e)
}

// install marks the current view installed: every member finished its sync.
func (e *Engine) install(o *order) {
	o.installed = true
	ids := memberIDs(o.members)
	var joined, left []NodeID
	for _, id := range ids {
		if _, ok := slices.BinarySearch(e.lastInst, id); !ok {
			joined = append(joined, id)
		}
	}
	for _, id := range e.lastInst {
		if _, ok := slices.BinarySearch(ids, id); !ok {
			left = append(left, id)
		}
	}
	e.lastInst = ids
	if o == e.cur && e.state == StateSync {
		e.state = StateOperational
		e.installed = true
	}
	e.log.Info("view installed", "ring", o.ring.String(), "members", ids)
	e.emit(Event{Kind: EventInstalled, Ring: o.ring, Members: ids, Joined: joined, Left: left})
}

func (e *Engine) deafString() string {
	var b []byte
	for _, p := range e.peers {
		if p.idx == e.self {
			continue
		}
		b = fmt.Appendf(b, "%d:{", p.id)
		for i, id := range e.ids {
			if p.deaf != nil && p.deaf.has(i) {
				b = fmt.Appendf(b, "%d ", id)
			}
		}
		b = fmt.Appendf(b, "} ")
	}
	return string(b)
}
