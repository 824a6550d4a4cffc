package quorum

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/conclave/conclave/cs"
)

// fakeLeases is an in-memory Leases.
type fakeLeases struct {
	lease, grant map[NodeID]time.Time
}

func newFakeLeases() *fakeLeases {
	return &fakeLeases{lease: map[NodeID]time.Time{}, grant: map[NodeID]time.Time{}}
}

func (f *fakeLeases) LeaseExpiry(p NodeID) time.Time { return f.lease[p] }
func (f *fakeLeases) GrantExpiry(p NodeID) time.Time { return f.grant[p] }

func leased(base func(NodeID) Config, l map[NodeID]*fakeLeases) func(NodeID) Config {
	return func(id NodeID) Config {
		c := base(id)
		if f := l[id]; f != nil {
			c.Leases = f
			c.LeaseTimeout = 800 * time.Millisecond
		}
		return c
	}
}

func quorumEvents(rd Ready) []bool {
	var qs []bool
	for _, ev := range rd.Events {
		if ev.Kind == EventQuorum {
			qs = append(qs, ev.Quorate)
		}
	}
	return qs
}

func TestLeaseReported(t *testing.T) {
	f := newFakeLeases()
	h := newHarness(t, leased(nodelist(3), map[NodeID]*fakeLeases{1: f}))
	far := h.now.Add(time.Hour)
	f.lease[2], f.lease[3] = far, far
	h.boot(1, 2, 3)
	h.check("all leases valid", q(true, 3, 3, 2), 1)
	if st := h.eng[1].Status(h.now); !st.LeaseOK || !st.Quorate || st.LeaseTimeout != 800*time.Millisecond {
		t.Errorf("status %+v", st)
	}
	h.drain(1)

	// The lease from node 3 runs out: {1,2} would still be quorate.
	f.lease[3] = h.now.Add(time.Second)
	if nt := h.eng[1].NextTick(); !nt.Equal(f.lease[3]) {
		t.Errorf("NextTick %v, want the lease expiry %v", nt, f.lease[3])
	}
	h.advance(time.Second)
	if st := h.eng[1].Status(h.now); st.LeaseOK || !st.Quorate {
		t.Errorf("one lease lapsed: %+v", st)
	}
	// Node 2's too: alone, node 1 would not be.
	f.lease[2] = h.now
	h.advance(time.Millisecond)
	in := h.info(1)
	st := h.eng[1].Status(h.now)
	if in.Flags&InfoQuorate != 0 || st.Quorate || !st.VotequorumQuorate {
		t.Errorf("both lapsed: info %+v status %+v", in, st)
	}
	rd := h.drain(1)
	if qs := quorumEvents(rd); !slices.Equal(qs, []bool{false}) {
		t.Errorf("quorum events %v, want [false]", qs)
	}
	if l := logsWith(rd, "non-primary"); len(l) != 1 {
		t.Errorf("logs %q", l)
	}
	// The hypothetical run left no trace.
	if st.Members == nil || len(st.Members) != 3 || infoOf(t, h.eng[1], 3).NodeState != NodestateMember {
		t.Errorf("state changed by the lease check: %+v", st)
	}
	// Renewed: quorate again.
	f.lease[2], f.lease[3] = far, far
	h.advance(time.Millisecond)
	if qs := quorumEvents(h.drain(1)); !slices.Equal(qs, []bool{true}) {
		t.Errorf("quorum events %v, want [true]", qs)
	}
	// Nodes without leases are unaffected.
	if st := h.eng[2].Status(h.now); !st.LeaseOK || !st.Quorate {
		t.Errorf("node 2 %+v", st)
	}
}

func TestLeaseHold(t *testing.T) {
	f := newFakeLeases()
	h := newHarness(t, leased(nodelist(4), map[NodeID]*fakeLeases{1: f}))
	far := h.now.Add(time.Hour)
	for _, id := range ids(2, 4) {
		f.lease[id] = far
	}
	h.boot(1, 2, 3)
	h.start(4)
	h.drain(1)

	// Node 3 goes, node 4 comes; node 1 promised node 3 to wait 5 s.
	f.grant[3] = h.now.Add(5 * time.Second)
	h.kill(3)
	h.form([]NodeID{1, 2, 4})
	ring := h.ring(1)
	if h.eng[1].SyncReady(ring) {
		t.Fatal("not holding")
	}
	st := h.eng[1].Status(h.now)
	if st.HeldRing != ring || !st.HoldUntil.Equal(f.grant[3]) || st.SyncInProgress {
		t.Errorf("status %+v", st)
	}
	if rd := h.drain(1); len(rd.Events) != 0 {
		t.Errorf("events during the hold: %+v", rd.Events)
	}
	// Node 4's NODEINFO arrived and is kept for later.
	if _, err := h.eng[1].GetInfo(h.now, 4); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("node 4 applied during the hold: %v", err)
	}
	if nt := h.eng[1].NextTick(); !nt.Equal(f.grant[3]) {
		t.Errorf("NextTick %v, want %v", nt, f.grant[3])
	}

	// The grant is renewed once: the hold extends.
	f.grant[3] = h.now.Add(7 * time.Second)
	h.advance(5 * time.Second)
	if h.eng[1].SyncReady(ring) {
		t.Fatal("hold released before the renewed grant ran out")
	}
	h.advance(2 * time.Second)
	if !h.eng[1].SyncReady(ring) {
		t.Fatal("hold not released")
	}
	h.check("installed after the hold", q(true, 4, 3, 3), 1, 2, 4)
	if in := infoOf(t, h.eng[1], 3); in.NodeState != NodestateDead {
		t.Errorf("node 3 %+v", in)
	}
	var kinds []EventKind
	rd := h.drain(1)
	for _, ev := range rd.Events {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Equal(kinds, []EventKind{EventNodelist, EventQuorum}) {
		t.Errorf("events %v %+v", kinds, rd)
	}
}

// A newer view replaces a held one; a view dropping nobody is not held.
func TestLeaseHoldSuperseded(t *testing.T) {
	f := newFakeLeases()
	e := mustNew(t, Config{Self: 1, Nodes: []NodeVotes{{1, 1}, {2, 1}, {3, 1}}, Leases: f})
	r1 := view(e, 4, 1, 2, 3)
	nodeinfo(e, 2, 2, 1, 3, 0)
	nodeinfo(e, 3, 3, 1, 3, 0)
	e.Installed(t0, r1, e.members)
	f.grant[3] = t0.Add(time.Second)
	r2 := RingID{Rep: 1, Seq: 8}
	e.Nodelist(t0, r2, []NodeID{1, 2})
	e.Deliver(t0, r2, 2, encodeNodeinfo(2, 1, 3, flagQuorate), true)
	if e.SyncReady(r2) {
		t.Fatal("not held")
	}
	e.Nodelist(t0, r2, []NodeID{1, 2}) // a repeat keeps the hold and its buffer
	if e.hold == nil || len(e.hold.buffered) != 1 {
		t.Fatalf("repeat lost the hold: %+v", e.hold)
	}
	r3 := RingID{Rep: 1, Seq: 12}
	e.Nodelist(t0, r3, []NodeID{1, 2, 3}) // node 3 is back: nothing dropped
	if !e.SyncReady(r2) || !e.SyncReady(r3) || e.ring != r3 {
		t.Errorf("superseded hold: ring %v", e.ring)
	}
	// Installed for a held ring starts it rather than losing it.
	f.grant[2] = t0.Add(time.Second)
	r4 := RingID{Rep: 1, Seq: 16}
	e.Nodelist(t0, r4, []NodeID{1, 3})
	e.Installed(t0, r4, []NodeID{1, 3})
	if e.ring != r4 || e.syncInProgress || e.hold != nil {
		t.Errorf("ring %v sync %v hold %v", e.ring, e.syncInProgress, e.hold)
	}
}

// With leases nothing is claimed in the middle of a view change that drops
// members (sync step or hold), and the clients see no flap: the only
// quorum event is the one at the end. A view change that drops nobody
// keeps the claim.
func TestLeaseNoClaimDuringViewChange(t *testing.T) {
	f := newFakeLeases()
	far := t0.Add(time.Hour)
	f.lease[2], f.lease[3] = far, far
	e := mustNew(t, Config{Self: 1, Nodes: []NodeVotes{{1, 1}, {2, 1}, {3, 1}}, Leases: f})
	r := view(e, 4, 1, 2, 3)
	nodeinfo(e, 2, 2, 1, 3, 0)
	nodeinfo(e, 3, 3, 1, 3, 0)
	e.Installed(t0, r, e.members)
	e.Ready()
	if infoOf(t, e, 0).Flags&InfoQuorate == 0 {
		t.Fatal("not quorate")
	}
	r = view(e, 8, 1, 2, 3) // nobody dropped: the answer stands, no alarm
	if infoOf(t, e, 0).Flags&InfoQuorate == 0 || !e.Status(t0).Quorate {
		t.Error("a view change that drops nobody withdrew the quorum claim")
	}
	nodeinfo(e, 2, 2, 1, 3, flagQuorate)
	nodeinfo(e, 3, 3, 1, 3, flagQuorate)
	e.Installed(t0, r, e.members)
	e.Ready()
	r = view(e, 12, 1, 2) // node 3 dropped: nothing is claimed until installed
	if infoOf(t, e, 0).Flags&InfoQuorate != 0 || e.Status(t0).Quorate {
		t.Error("claims quorum during the sync step of a view that drops a member")
	}
	e.Tick(t0)
	nodeinfo(e, 2, 2, 1, 3, flagQuorate)
	e.Installed(t0, r, e.members)
	e.Tick(t0)
	if qs := quorumEvents(e.Ready()); !slices.Equal(qs, []bool{true}) {
		t.Errorf("quorum events %v, want [true]", qs)
	}
	// Node 3 is back; then a view without it is held: nothing claimed, no
	// event, until the view is installed.
	r = view(e, 16, 1, 2, 3)
	nodeinfo(e, 2, 2, 1, 3, flagQuorate)
	nodeinfo(e, 3, 3, 1, 3, flagQuorate)
	e.Installed(t0, r, e.members)
	e.Ready()
	f.grant[3] = t0.Add(time.Second)
	r = RingID{Rep: 1, Seq: 20}
	e.Nodelist(t0, r, []NodeID{1, 2})
	e.Tick(t0)
	if infoOf(t, e, 0).Flags&InfoQuorate != 0 {
		t.Error("claims quorum during the hold")
	}
	if rd := e.Ready(); len(rd.Events) != 0 {
		t.Errorf("events during the hold: %+v", rd.Events)
	}
	e.Tick(t0.Add(time.Second))
	s, _ := e.Output()
	for _, b := range s {
		e.Deliver(t0, r, 1, b, true)
	}
	nodeinfo(e, 2, 2, 1, 3, flagQuorate)
	e.Installed(t0.Add(time.Second), r, []NodeID{1, 2})
	if qs := quorumEvents(e.Ready()); !slices.Equal(qs, []bool{true}) {
		t.Errorf("quorum events %v, want [true]", qs)
	}
}
