package quorum

import (
	"log/slog"
	"slices"
	"time"
)

// Nodelist starts the sync step of a new view: votequorum's sync_init and
// the first sync_process call. The sync messages (our NODEINFO, our view of
// the device votes, the device name) go out through Output as sync
// messages, and the nodelist event is queued.
//
// With leases, a view that drops a node we promised to wait for is held:
// nothing of it happens until the promise has run out (SyncReady stays
// false meanwhile), and messages that arrive for it are kept and applied
// right after its deferred start.
func (e *Engine) Nodelist(now time.Time, ring RingID, members []NodeID) {
	e.now = now
	if (ring == e.ring && !ring.IsZero()) || (e.hold != nil && e.hold.ring == ring) {
		return // a repeat of a view we already started or hold
	}
	members = slices.Clone(members)
	var dropped []NodeID
	for _, id := range e.members {
		if id != e.self && !slices.Contains(members, id) {
			dropped = append(dropped, id)
		}
	}
	// What clients are told through the view change (with leases): the
	// claim before it, if nobody is left behind; nothing otherwise.
	e.syncClaim = e.reported() && len(dropped) == 0
	// Sync output of an older ring is useless now; so is an older hold.
	e.syncOut = nil
	e.hold = nil
	if e.cfg.Leases != nil {
		if until := e.grantedUntil(dropped); until.After(now) {
			e.hold = &hold{ring: ring, members: members, dropped: dropped, until: until}
			e.logf(slog.LevelInfo, "holding view %s until %s: a lease granted to a departing member is still running",
				ring, until.Format(time.RFC3339Nano))
			return
		}
	}
	e.startSync(ring, members)
}

// grantedUntil is the latest lease we granted to any of ids.
func (e *Engine) grantedUntil(ids []NodeID) time.Time {
	var until time.Time
	for _, id := range ids {
		if t := e.cfg.Leases.GrantExpiry(id); t.After(until) {
			until = t
		}
	}
	return until
}

func (e *Engine) startSync(ring RingID, members []NodeID) {
	e.syncOut = nil
	e.syncInit(ring, members)
	e.syncProcess()
}

// syncInit is votequorum_sync_init.
func (e *Engine) syncInit(ring RingID, members []NodeID) {
	e.syncInProgress = true
	e.syncWait = false
	if len(members) > 1 {
		e.us.flags &^= flagFirst
	}
	left := false
	var joined, gone []NodeID
	for _, id := range e.members {
		if slices.Contains(members, id) {
			continue
		}
		left = true
		gone = append(gone, id)
		if id == QdeviceNodeID {
			continue // not a node; its pseudo entry's state stays 0
		}
		if n := e.find(id); n != nil {
			n.state = NodestateDead
		}
	}
	for _, id := range members {
		if !slices.Contains(e.members, id) {
			joined = append(joined, id)
		}
	}
	// last_man_standing: (re)start the window when nodes left and enough
	// remain, or when few remain but the ATB node is among them. A further
	// change inside the window starts it again (S14).
	if e.lms {
		n, q := uint64(len(members)), uint64(e.quorum)
		if (n >= q && left) || (n <= q && e.atb != atbNone && e.memberWithID(e.lowestID)) {
			e.lmsTimer = e.now.Add(e.lmsWindow)
		}
	}
	e.prevMembers = e.members
	e.members = members
	e.ring = ring
	// An alive device must confirm the new view before it is installed:
	// hold the sync step until it polls with the new ring id, at most
	// sync_timeout.
	if e.us.flags&flagQdevRegistered != 0 && e.us.flags&flagQdevAlive != 0 {
		e.qdevTimer = e.now.Add(e.qdevSyncTimeout)
		e.syncWait = true
		e.logf(slog.LevelInfo, "waiting for quorum device %s poll (but maximum for %d ms)",
			e.qdevName, uint32(e.qdevSyncTimeout/time.Millisecond))
	}
	e.logf(LevelNotice, "%s", viewList("Sync members", members))
	if len(joined) > 0 {
		e.logf(LevelNotice, "%s", viewList("Sync joined", joined))
	}
	if len(gone) > 0 {
		e.logf(LevelNotice, "%s", viewList("Sync left", gone))
	}
}

// syncProcess is the first votequorum_sync_process call.
func (e *Engine) syncProcess() {
	if e.initNodeinfo != nil {
		e.send(e.initNodeinfo, true)
		e.initNodeinfo = nil
	}
	e.sendNodeinfo(e.self, true)
	e.sendNodeinfo(QdeviceNodeID, true)
	if e.qdevName != "" {
		e.send(encodeQdevReg(qdevOpRegister, e.qdevName), true)
	}
	e.event(Event{Kind: EventNodelist, Ring: e.ring, Members: slices.Clone(e.members)})
}

// Deliver handles one message in total order. Messages for a held view are
// kept until the view starts.
func (e *Engine) Deliver(now time.Time, ring RingID, from NodeID, payload []byte, sync bool) {
	e.now = now
	if h := e.hold; h != nil && ring == h.ring {
		h.buffered = append(h.buffered, delivery{from: from, payload: slices.Clone(payload)})
		return
	}
	e.deliver(from, payload)
}

// Installed ends the sync step: votequorum_sync_activate recalculates and
// tells clients the result, changed or not.
func (e *Engine) Installed(now time.Time, ring RingID, members []NodeID) {
	e.now = now
	if h := e.hold; h != nil && h.ring == ring {
		// The driver installed the view without waiting for us; start it
		// now rather than lose it.
		e.releaseHold()
	}
	if ring != e.ring || !e.syncInProgress {
		return
	}
	e.recalculate(false, false)
	// Corosync clears sync_in_progress after the notification; nothing in
	// between reads it except the lease rule, which must see the view as
	// installed.
	e.syncInProgress = false
	e.notify(true)
}

// releaseHold runs the held view's sync step and replays what arrived for it.
func (e *Engine) releaseHold() {
	h := e.hold
	e.hold = nil
	e.startSync(h.ring, h.members)
	for _, d := range h.buffered {
		e.deliver(d.from, d.payload)
	}
}

// SyncReady is false while the sync step of ring waits for the quorum
// device's poll (at most sync_timeout) or is held by a lease.
func (e *Engine) SyncReady(ring RingID) bool {
	if h := e.hold; h != nil && h.ring == ring {
		return false
	}
	if ring == e.ring && e.syncInProgress && e.syncWait && e.us.flags&flagQdevRegistered != 0 {
		return false
	}
	return true
}

// timer kinds, for Tick.
const (
	timerNone = iota
	timerLMS
	timerQdev
	timerHold
)

// nextTimer is the earliest armed deadline.
func (e *Engine) nextTimer() (time.Time, int) {
	var t time.Time
	kind := timerNone
	consider := func(d time.Time, k int) {
		if !d.IsZero() && (kind == timerNone || d.Before(t)) {
			t, kind = d, k
		}
	}
	consider(e.lmsTimer, timerLMS)
	consider(e.qdevTimer, timerQdev)
	if e.hold != nil {
		consider(e.hold.until, timerHold)
	}
	return t, kind
}

// Tick fires due timers in deadline order (the last_man_standing window,
// the device timeout or sync timeout, the end of a lease hold), then
// re-evaluates the lease so a lapsed lease is reported.
func (e *Engine) Tick(now time.Time) {
	e.now = now
	for {
		t, kind := e.nextTimer()
		if kind == timerNone || t.After(now) {
			break
		}
		switch kind {
		case timerLMS:
			e.lmsTimer = time.Time{}
			// Only a quorate partition may lower expected votes.
			if e.quorate {
				e.recalculate(true, true)
			}
		case timerQdev:
			e.qdevTimerFired()
		case timerHold:
			// A grant may have been renewed meanwhile (the peer was not
			// gone after all): keep holding until every promise ran out.
			if until := e.grantedUntil(e.hold.dropped); until.After(now) {
				e.hold.until = until
				continue
			}
			e.releaseHold()
		}
	}
	if !e.inTransition() {
		e.notify(false)
	}
}

// qdevTimerFired is qdevice_timer_fn: the device missed its poll (or the
// new ring's poll during sync): it no longer counts and the sync step may
// go on.
func (e *Engine) qdevTimerFired() {
	e.qdevTimer = time.Time{}
	if e.us.flags&flagQdevAlive == 0 {
		return
	}
	e.us.flags &^= flagQdevAlive | flagQdevCastVote
	e.logf(slog.LevelInfo, "lost contact with quorum device %s", e.qdevName)
	e.sendNodeinfo(e.self, e.nodeinfoDuringWait())
	e.syncWait = false
}

// NextTick is the earliest deadline: a timer, the end of a hold, or (with
// leases, while quorate) the next lease expiry that would change the answer.
func (e *Engine) NextTick() time.Time {
	t, _ := e.nextTimer()
	if e.cfg.Leases != nil && e.quorate {
		for _, id := range e.members {
			if id == e.self {
				continue
			}
			if x := e.cfg.Leases.LeaseExpiry(id); x.After(e.now) && (t.IsZero() || x.Before(t)) {
				t = x
			}
		}
	}
	return t
}

// ---- the quorum lease ----

// leaseOK: every other member has promised to wait for us beyond now.
func (e *Engine) leaseOK() bool {
	if e.cfg.Leases == nil {
		return true
	}
	for _, id := range e.members {
		if id != e.self && !e.cfg.Leases.LeaseExpiry(id).After(e.now) {
			return false
		}
	}
	return true
}

// reported is the quorate state clients see: votequorum's answer, and with
// leases also the answer votequorum would give if every member whose lease
// has lapsed were gone (such a member may already be in a view without us,
// so counting its votes could make two partitions quorate).
//
// With leases, while a view change is under way (its sync step runs, or it
// is held) a node keeps the claim it had before it, if the new view leaves
// nobody behind, and claims nothing otherwise, until the view is installed.
// Corosync recalculates from NODEINFO messages during the sync step, with
// table entries that may be stale (a member still holding the view back,
// say), so right after sync_init a node that just lost half the cluster
// can still say "quorate"; and a new view is only safe to count once
// installed, because installation is what proves every member has let go
// of the promises it made to the nodes left behind (until then a member
// may be counted both here and by a cut-off node it still holds a view
// for). No event is sent meanwhile; the quorum event at the end of the
// sync step carries the answer. A view change that only adds nodes keeps
// the claim, so a node joining is no alarm.
func (e *Engine) reported() bool {
	if !e.quorate {
		return false
	}
	if e.cfg.Leases == nil {
		return true
	}
	if e.inTransition() && !e.syncClaim {
		return false
	}
	if e.leaseOK() {
		return true
	}
	return e.hypothetical()
}

// inTransition: a view change has started here (sync step running or
// held). Corosync sends no quorum event in the middle of one; a held one
// counts as started.
func (e *Engine) inTransition() bool { return e.syncInProgress || e.hold != nil }

// hypothetical runs sync_init and sync_activate's recalculation for the
// members we still hold leases from, on a copy of the state.
func (e *Engine) hypothetical() bool {
	members := []NodeID{e.self}
	for _, id := range e.members {
		if id != e.self && e.cfg.Leases.LeaseExpiry(id).After(e.now) {
			members = append(members, id)
		}
	}
	h := e.clone()
	h.syncInit(e.ring, members)
	h.recalculate(false, false)
	return h.quorate
}

// clone copies the state for a hypothetical run; the copy emits nothing.
func (e *Engine) clone() *Engine {
	h := *e
	h.hypo = true
	h.nodes = make([]*node, len(e.nodes))
	for i, n := range e.nodes {
		c := *n
		h.nodes[i] = &c
		if n == e.us {
			h.us = &c
		}
	}
	h.members = slices.Clone(e.members)
	h.prevMembers = slices.Clone(e.prevMembers)
	h.syncOut, h.normalOut, h.rd, h.hold, h.warnings = nil, nil, Ready{}, nil, nil
	return &h
}
