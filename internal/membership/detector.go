package membership

import (
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// peer is what this node knows about another configured node.
type peer struct {
	id    NodeID
	idx   int
	links uint8 // links both ends configure

	inc      uint64 // highest incarnation heard
	deadInc  uint64 // incarnations <= deadInc are gone (left or closed)
	left     bool   // deadInc was announced by a graceful Leave
	closedAt time.Time
	liveInc  uint64 // deadInc before the last close, to undo a false one

	lastHeard time.Time
	linkHeard []time.Time // per link number, up to the highest configured
	linkUp    []bool
	wasHeard  bool

	heardYou bool    // its last heartbeat said it hears us
	deaf     nodeSet // nodes it does not hear mutually (nil: unknown)
	ring     RingID  // highest ring it reported
	state    State   // its state, from its latest heartbeat
	hbSeq    uint64  // seq of its latest heartbeat

	// The quorum lease (lease.go).
	stampIn    uint64    // its latest heartbeat stamp
	stampInAt  time.Time // when that stamp arrived
	echoedAt   time.Time // arrival of the latest stamp we echoed back
	leaseUntil time.Time // until when it promised to keep us in its views

	hbDue       bool
	nextHB      time.Time
	lastTrigger time.Time

	// Hold-downs: reasons not to put the node in a view for a while.
	unresponsiveUntil time.Time // it did not answer as coordinator or member
	excludedUntil     time.Time // it refused us, or leads a view without us
	heldUntil         time.Time // it flaps
	holds             int
	removals          []time.Time
}

// wake makes sure tickDetector looks again no later than t.
func (e *Engine) wake(t time.Time) {
	if e.nextScan.IsZero() || t.Before(e.nextScan) {
		e.nextScan = t
	}
}

func (p *peer) gone() bool { return p.inc != 0 && p.inc <= p.deadInc }

// restartPeer resets what we know of p for a new incarnation.
func (e *Engine) restartPeer(p *peer, inc uint64) {
	p.restart(inc)
	e.due(p)
	e.refresh(p)
}

// due queues a heartbeat to p for the next Ready.
func (e *Engine) due(p *peer) {
	if !p.hbDue {
		p.hbDue = true
		e.dueList = append(e.dueList, p.idx)
	}
}

// restart resets what we know of the node for a new incarnation.
func (p *peer) restart(inc uint64) {
	p.inc = inc
	// Promises given to or by an earlier incarnation died with it.
	p.stampIn, p.stampInAt, p.echoedAt, p.leaseUntil = 0, time.Time{}, time.Time{}, time.Time{}
	p.left = false
	p.heardYou = false
	p.deaf = nil
	p.ring = RingID{}
	p.state = StateGather
	p.hbSeq = 0
}

// bestLink is the lowest-numbered link that is up, else the lowest
// configured one.
func (p *peer) bestLink() int {
	first := -1
	for l := range len(p.linkUp) {
		if p.links&(1<<l) == 0 {
			continue
		}
		if p.linkUp[l] {
			return l
		}
		if first < 0 {
			first = l
		}
	}
	return max(first, 0)
}

// hears: something arrived from the node's current incarnation within the
// token.
func (e *Engine) hears(p *peer) bool {
	return !p.gone() && !p.lastHeard.IsZero() && e.now.Sub(p.lastHeard) <= e.cfg.Token
}

// mutual: we hear it and it says it hears us.
func (e *Engine) mutual(p *peer) bool { return p.heardYou && e.hears(p) }

func (e *Engine) heard(p *peer, link int) {
	p.lastHeard = e.now
	if link >= len(p.linkHeard) {
		return // not a link we configure with this peer
	}
	p.linkHeard[link] = e.now
	if p.links&(1<<link) != 0 && !p.linkUp[link] {
		p.linkUp[link] = true
		e.linkEvent(p, link, true)
		e.wake(e.now.Add(e.cfg.Token))
	}
	if !p.wasHeard {
		p.wasHeard = true
		e.viewDirty, e.reachDirty = true, true
		e.trigger(p)
		e.wake(e.now.Add(e.cfg.Token))
	}
	e.refresh(p)
}

func (e *Engine) linkEvent(p *peer, link int, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	e.log.Info("link "+state, "ring", e.ring.String(), "peer", p.id, "link", link)
	e.emit(Event{Kind: EventLink, Node: p.id, Link: link, Up: up})
}

// trigger sends a heartbeat to p soon, so that reachability changes
// propagate in a round trip instead of a heartbeat period. Triggers are
// spaced at least Retransmit/5 apart per peer; one that comes too early is
// deferred, never dropped, since it may carry news the peer needs.
func (e *Engine) trigger(p *peer) {
	spacing := max(e.cfg.Retransmit/5, time.Millisecond)
	next := p.lastTrigger.Add(spacing)
	switch {
	case p.lastTrigger.IsZero() || !e.now.Before(next):
		e.due(p)
		p.lastTrigger = e.now
	case next.Before(p.nextHB):
		p.nextHB = next
		e.wake(next)
	}
}

func (e *Engine) onHeartbeat(p *peer, hb *peerpb.Heartbeat) {
	if hb.Seq <= p.hbSeq {
		return // reordered: we already have newer news
	}
	p.hbSeq = hb.Seq
	e.leaseIn(p, hb)
	// Its state is news about the ring it reports; about an older ring
	// than one we already know it joined, it is stale.
	if r := ringOf(hb.Ring); r.Seq >= p.ring.Seq {
		if st := State(hb.State); st != p.state {
			p.state = st
			e.viewDirty = true
		}
	}
	if hb.HeardYou != p.heardYou {
		p.heardYou = hb.HeardYou
		e.refresh(p)
	}
	if !hb.HeardYou && e.hears(p) {
		e.trigger(p)
	}
	if hb.NodelistDigest == e.digest {
		d := nodeSetFrom(hb.Deaf, len(e.ids))
		if p.deaf == nil || !p.deaf.equal(d) {
			p.deaf = d
			e.viewDirty = true
		}
	} else if p.deaf != nil {
		p.deaf = nil
		e.viewDirty = true
	}
	e.peerRing(p, ringOf(hb.Ring))
	if o := e.cur; o != nil && hb.Stable > 0 && ringOf(hb.Ring) == o.ring && p.id == o.ring.Rep {
		o.updateStable(hb.Stable)
	}
}

// peerRing records the ring a peer reports. A node's ring seq only grows, so
// a report with a lower seq is older news and is ignored.
func (e *Engine) peerRing(p *peer, r RingID) {
	if r.IsZero() || r == p.ring || r.Seq < p.ring.Seq {
		return
	}
	p.ring = r
	e.viewDirty = true
}

// onGone handles a peer incarnation that left (graceful) or whose process
// the transport saw die.
func (e *Engine) onGone(p *peer, inc uint64, graceful bool) {
	if inc < p.deadInc {
		return
	}
	if inc > p.inc {
		e.restartPeer(p, inc)
	}
	wasAlive := !p.gone()
	if !graceful && wasAlive {
		p.liveInc, p.closedAt = p.deadInc, e.now
	}
	p.deadInc = inc
	p.left = graceful
	e.refresh(p)
	if wasAlive {
		how := "closed"
		if graceful {
			how = "left"
		}
		e.log.Info("peer "+how, "ring", e.ring.String(), "peer", p.id, "incarnation", inc)
	}
	e.viewDirty = true
}

// revive undoes a close that was not a death: the transport saw the
// incarnation's connection close, yet authenticated messages from it keep
// coming long after any that were in flight could have (a reset by a
// middlebox, not a dead process). A graceful Leave is never undone.
func (e *Engine) revive(p *peer, inc uint64) bool {
	if p.left || inc != p.deadInc || p.closedAt.IsZero() || e.now.Sub(p.closedAt) < e.cfg.Token {
		return false
	}
	e.log.Warn("peer's connection closed, but it is still sending: taking it back",
		"ring", e.ring.String(), "peer", p.id, "incarnation", inc, "closed", e.now.Sub(p.closedAt).Round(time.Millisecond))
	p.deadInc, p.closedAt = p.liveInc, time.Time{}
	e.refresh(p)
	return true
}

// tickDetector runs timeouts, link state and the heartbeat schedule. It
// scans the peers only when a deadline is due (nextScan): with a thousand
// peers a scan per tick would dominate the cost of a quiet cluster.
func (e *Engine) tickDetector() {
	if !e.nextScan.IsZero() && e.now.Before(e.nextScan) {
		return
	}
	next := e.now.Add(e.cfg.Token)
	soon := func(t time.Time) {
		if t.After(e.now) && t.Before(next) {
			next = t
		}
	}
	for _, p := range e.peers {
		if p.idx == e.self {
			continue
		}
		for l := range len(p.linkUp) {
			if p.links&(1<<l) == 0 {
				continue
			}
			up := !p.gone() && !p.linkHeard[l].IsZero() && e.now.Sub(p.linkHeard[l]) <= e.cfg.Token
			if up != p.linkUp[l] {
				p.linkUp[l] = up
				e.linkEvent(p, l, up)
			}
			if up {
				soon(p.linkHeard[l].Add(e.cfg.Token + 1))
			}
		}
		h := e.hears(p)
		if h != p.wasHeard {
			p.wasHeard = h
			e.viewDirty, e.reachDirty = true, true
		}
		e.refresh(p)
		if h {
			soon(p.lastHeard.Add(e.cfg.Token + 1))
		}
		if !e.now.Before(p.nextHB) {
			e.due(p)
			p.lastTrigger = e.now
		} else {
			soon(p.nextHB)
		}
		for _, t := range []time.Time{p.unresponsiveUntil, p.excludedUntil, p.heldUntil} {
			if t.IsZero() {
				continue
			}
			if !t.After(e.now) && t.After(e.now.Add(-e.cfg.Token)) {
				e.viewDirty = true // a hold-down ran out: look again
			}
			soon(t)
		}
	}
	e.nextScan = next
}

// refresh re-derives p's place in the deaf set (nodes we do not hear
// mutually) after anything that can change it. Keeping the set up to date
// peer by peer spares a scan of every peer on every message.
func (e *Engine) refresh(p *peer) {
	if p.idx == e.self {
		return
	}
	d := !e.mutual(p)
	if d != e.deaf.has(p.idx) {
		if d {
			e.deaf.set(p.idx)
		} else {
			e.deaf.clear(p.idx)
		}
		e.viewDirty, e.reachDirty = true, true
	}
}

// sendHeartbeats sends the due heartbeats, on every shared link. When our
// own reachability changed since the last heartbeats, every peer gets one
// now rather than in a period, so views form in round trips.
func (e *Engine) sendHeartbeats() {
	if e.reachDirty {
		e.reachDirty = false
		if !e.deaf.equal(e.deafSent) {
			e.deafSent = append(e.deafSent[:0], e.deaf...)
			if len(e.ids) <= allToAllLimit {
				for _, q := range e.peers {
					if q.idx != e.self {
						e.trigger(q)
					}
				}
			}
		}
	}
	if len(e.dueList) == 0 {
		return
	}
	var deaf []byte
	list := e.dueList
	e.dueList = nil
	for _, i := range list {
		p := e.peers[i]
		if p.idx == e.self || !p.hbDue {
			continue
		}
		if deaf == nil {
			e.deafSent = append(e.deafSent[:0], e.deaf...)
			deaf = e.deaf.bytes()
		}
		p.hbDue = false
		p.nextHB = e.now.Add(e.period)
		e.wake(p.nextHB)
		e.hbSeq++
		hb := &peerpb.Heartbeat{
			Seq:            e.hbSeq,
			State:          uint32(e.state),
			Ring:           ringPB(e.committed),
			HeardYou:       e.hears(p),
			Deaf:           deaf,
			NodelistDigest: e.digest,
			PeriodMs:       uint32(e.period / time.Millisecond),
		}
		e.leaseOut(p, hb)
		if o := e.cur; o != nil && o.isRep && !o.frozen {
			hb.Stable = o.stable
		}
		for l := range 8 {
			if p.links&(1<<l) != 0 {
				m := e.stamp(p.id, &peerpb.Message{Body: &peerpb.Message_Heartbeat{Heartbeat: hb}})
				e.out.Messages = append(e.out.Messages, Outgoing{To: p.id, Link: l, Msg: m})
			}
		}
	}
}

// recordRemoval counts a node dropping out of our view without a graceful
// leave; a node that does so FlapCount times within FlapWindow is held out of
// views for a while, so a bad link or a crash-looping agent does not keep the
// whole cluster changing views.
func (e *Engine) recordRemoval(p *peer) {
	since := e.now.Add(-e.cfg.FlapWindow)
	kept := p.removals[:0]
	for _, t := range p.removals {
		if t.After(since) {
			kept = append(kept, t)
		}
	}
	p.removals = append(kept, e.now)
	if len(p.removals) < e.cfg.FlapCount {
		return
	}
	d := e.cfg.FlapHolddown << min(p.holds, 5)
	p.holds++
	p.heldUntil = e.now.Add(d)
	p.removals = nil
	e.log.Warn("node keeps leaving and rejoining; holding it out of the view",
		"ring", e.ring.String(), "peer", p.id, "for", d, "removals", e.cfg.FlapCount, "within", e.cfg.FlapWindow)
	e.emit(Event{Kind: EventHeldOut, Node: p.id, Until: p.heldUntil})
}

func ringOf(r *peerpb.RingID) RingID {
	if r == nil {
		return RingID{}
	}
	return RingID{Rep: NodeID(r.Rep), Seq: r.Seq}
}

func ringPB(r RingID) *peerpb.RingID {
	if r.IsZero() {
		return nil
	}
	return &peerpb.RingID{Rep: uint32(r.Rep), Seq: r.Seq}
}
