package membership

import (
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// The quorum lease bounds the split-brain window that Corosync leaves open
// (corosync issue 182): an isolated node keeps saying "quorate" until its
// own new view forms, while the others may already have formed a quorate
// view without it. Here every heartbeat carries a stamp of the sender's
// clock, and the receiver echoes the latest stamp it got from each member
// of its view. An echo is a promise: "I heard you at or after your stamp,
// and I will not install a view without you until Token after I heard it"
// — which the failure detector keeps by itself, since it declares a node
// gone only after Token of silence (GrantExpiry tells the quorum service
// when a view change could break it: a peer excluded while still heard).
//
// The node that gets the echo holds a lease from that peer until stamp +
// lease (its own clock), where
//
//	lease = Token·(1−ρ)/(1+ρ) − heartbeat period
//
// and ρ is Config.ClockDrift: the peer's Token, measured by a clock up to ρ
// fast, is at least Token/(1+ρ) of real time, and the lease, measured by a
// clock up to ρ slow, at most lease/(1−ρ); the heartbeat period is kept as
// margin for the time the lease holder needs to act on the expiry. The
// quorum service counts only members whose lease holds, so a cut-off node
// reports "not quorate" before any other partition can install a view
// without it (docs/quorum.md).

// leaseFor is the lease an echo gives, 0 when the timing leaves none.
func leaseFor(token, period time.Duration, drift float64) time.Duration {
	l := time.Duration(float64(token)*(1-drift)/(1+drift)) - period
	return max(l, 0)
}

// leaseIn takes the lease news of a heartbeat from p.
func (e *Engine) leaseIn(p *peer, hb *peerpb.Heartbeat) {
	if hb.Stamp > p.stampIn {
		p.stampIn, p.stampInAt = hb.Stamp, e.now
	}
	if hb.Echo == 0 || e.lease == 0 || e.epoch.IsZero() {
		return
	}
	until := e.epoch.Add(time.Duration(hb.Echo-1) + e.lease)
	if until.After(p.leaseUntil) {
		p.leaseUntil = until
	}
}

// leaseOut stamps a heartbeat to p, and echoes p's latest stamp while p is
// in our view: promising to keep p in our views until Token after we heard
// that stamp.
func (e *Engine) leaseOut(p *peer, hb *peerpb.Heartbeat) {
	hb.Stamp = uint64(e.now.Sub(e.epoch)) + 1
	if p.stampIn == 0 || p.gone() {
		return
	}
	if _, ok := e.isMember(p.id); !ok {
		return
	}
	hb.Echo = p.stampIn
	if p.stampInAt.After(p.echoedAt) {
		p.echoedAt = p.stampInAt
	}
}

// LeaseExpiry is until when peer promised not to install a view without
// this node (zero: no promise).
func (e *Engine) LeaseExpiry(peer NodeID) time.Time {
	p := e.peer(peer)
	if p == nil || p.idx == e.self || p.gone() {
		return time.Time{}
	}
	return p.leaseUntil
}

// GrantExpiry is until when this node promised peer not to install a view
// without it: Token after the arrival of the last stamp it echoed. Zero when
// there is no promise, or peer's incarnation is known to be gone (it left,
// or its process died), since a dead process cannot act on a lease.
func (e *Engine) GrantExpiry(peer NodeID) time.Time {
	p := e.peer(peer)
	if p == nil || p.idx == e.self || p.gone() || p.echoedAt.IsZero() {
		return time.Time{}
	}
	return p.echoedAt.Add(e.cfg.Token)
}

// Lease is how long an echo holds (0: the lease is off).
func (e *Engine) Lease() time.Duration { return e.lease }
