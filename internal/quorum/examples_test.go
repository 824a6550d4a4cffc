package quorum

import (
	"testing"
	"time"
)

// The worked examples of votequorum(5), as spec §7.2 tabulates them.

// TestQuorumOfExpected is the E → quorum table of §7.2.
func TestQuorumOfExpected(t *testing.T) {
	for _, tc := range []struct{ e, q uint32 }{
		{1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {6, 4}, {7, 4}, {8, 5}, {9, 5}, {10, 6}, {16, 9},
	} {
		h := newHarness(t, expectedOnly(tc.e))
		h.boot(1)
		if in := h.info(1); in.Quorum != tc.q {
			t.Errorf("expected_votes %d: quorum %d, want %d", tc.e, in.Quorum, tc.q)
		}
	}
}

// M1: expected_votes 8, no nodelist: any 5 live nodes are quorate; three
// failures are survivable, a fourth is not.
func TestM1ExpectedVotes8(t *testing.T) {
	h := newHarness(t, expectedOnly(8))
	h.boot(ids(1, 4)...)
	h.check("4 up", q(false, 8, 4, 5), ids(1, 4)...)
	h.boot(5)
	h.check("5 up", q(true, 8, 5, 5), ids(1, 5)...)
	h.boot(ids(6, 8)...)
	h.check("8 up", q(true, 8, 8, 5).withFlags(InfoQuorate), ids(1, 8)...)
	h.kill(6, 7, 8)
	h.check("3 failed", q(true, 8, 5, 5), ids(1, 5)...)
	h.kill(5)
	h.check("4 failed", q(false, 8, 4, 5), ids(1, 4)...)
}

// M2: two_node forces quorum 1 and implies wait_for_all.
func TestM2TwoNode(t *testing.T) {
	flags := uint32(InfoTwoNode | InfoQuorate | InfoWaitForAll)
	h := newHarness(t, nodelist(2, twoNode))
	h.boot(1, 2)
	h.check("both up", q(true, 2, 2, 1).withFlags(flags), 1, 2)
	h.kill(2)
	h.check("node 2 fails", q(true, 2, 1, 1).withFlags(flags), 1)

	h = newHarness(t, nodelist(2, twoNode))
	h.boot(1, 2)
	h.form([]NodeID{1}, []NodeID{2})
	h.check("split 1/2", q(true, 2, 1, 1), 1, 2)

	h = newHarness(t, nodelist(2, twoNode))
	h.boot(1)
	h.check("cold start alone", q(false, 2, 1, 1).withFlags(InfoTwoNode|InfoWaitForAll), 1)
	if st := h.eng[1].Status(h.now); !st.WaitForAllStatus {
		t.Error("cold start alone: not waiting for all")
	}
	h.boot(2)
	h.check("node 2 joins", q(true, 2, 2, 1), 1, 2)

	h = newHarness(t, nodelist(2, twoNode, wfaOff))
	h.boot(1)
	h.check("cold start alone, wait_for_all: 0", q(true, 2, 1, 1).withFlags(InfoTwoNode|InfoQuorate), 1)

	// A third node (its own configuration: expected_votes 2, two_node)
	// joins: more than two voters, normal arithmetic, flag still set.
	cfg2 := nodelist(2, twoNode)
	cfg3 := expectedOnly(2, twoNode)
	h = newHarness(t, func(id NodeID) Config {
		if id == 3 {
			return cfg3(id)
		}
		return cfg2(id)
	})
	h.boot(1, 2, 3)
	h.check("third node joins", q(true, 3, 3, 2).withFlags(InfoTwoNode|InfoQuorate|InfoWaitForAll), 1, 2, 3)
	h.kill(3)
	h.check("back to two (S07)", q(true, 3, 2, 1), 1, 2)
	h.kill(2)
	h.check("last survivor", q(true, 3, 1, 1), 1)
}

// M3: wait_for_all, expected_votes 8.
func TestM3WaitForAll(t *testing.T) {
	for _, wfa := range []bool{false, true} {
		opt := wfaOff
		if wfa {
			opt = wfaOn
		}
		h := newHarness(t, expectedOnly(8, opt))
		h.boot(ids(1, 4)...)
		h.check("nodes 1-4", q(false, 8, 4, 5), ids(1, 4)...)
		h.boot(ids(5, 7)...)
		h.check("nodes 5-7", q(!wfa, 8, 7, 5), ids(1, 7)...)
		h.boot(8)
		h.check("node 8", q(true, 8, 8, 5), ids(1, 8)...)
		h.kill(6, 7, 8)
		h.check("3 fail", q(true, 8, 5, 5), ids(1, 5)...)
	}
}

// M4: last_man_standing, expected_votes 8, window 10 s: the man page chain.
func TestM4LastManStanding(t *testing.T) {
	h := newHarness(t, expectedOnly(8, lmsOn))
	h.boot(ids(1, 8)...)
	h.check("1 fully operational", q(true, 8, 8, 5), ids(1, 8)...)
	h.kill(6, 7, 8)
	h.check("2 three die", q(true, 8, 5, 5), ids(1, 5)...)
	h.advance(9 * time.Second)
	h.check("window not over", q(true, 8, 5, 5), ids(1, 5)...)
	h.advance(time.Second)
	h.check("3 window expires", q(true, 5, 5, 3), ids(1, 5)...)
	h.kill(4, 5)
	h.check("4 two more die", q(true, 5, 3, 3), ids(1, 3)...)
	h.advance(10 * time.Second)
	h.check("5 window", q(true, 3, 3, 2), ids(1, 3)...)
	h.kill(3)
	h.check("6 one more dies", q(true, 3, 2, 2), 1, 2)
	h.advance(10 * time.Second)
	h.check("7 window", q(true, 2, 2, 2), 1, 2)
	h.kill(2)
	h.check("8 last dies, no ATB", q(false, 2, 1, 2), 1)
	h.advance(10 * time.Second)
	h.check("8 stays inquorate", q(false, 2, 1, 2), 1)

	// No expected-votes event is sent for an LMS reduction.
	for _, ev := range h.drain(1).Events {
		if ev.Kind == EventExpected && ev.Expected < 8 {
			t.Errorf("LMS sent an expected-votes event: %+v", ev)
		}
	}
}

// M4 step 8': with auto_tie_breaker the survivor holding the lowest
// nodeid goes on, and expected votes drop to 1 after the window (S15).
func TestM4LastManStandingATB(t *testing.T) {
	// down to two nodes the way M4 does it, with ATB on
	downToTwo := func() *harness {
		h := newHarness(t, expectedOnly(8, lmsOn, atbOn))
		h.boot(ids(1, 8)...)
		h.kill(6, 7, 8)
		h.advance(10 * time.Second)
		h.kill(4, 5)
		h.advance(10 * time.Second)
		h.kill(3)
		h.advance(10 * time.Second)
		h.check("7 two left after the window", q(true, 2, 2, 2).withFlags(InfoQuorate|InfoLastManStanding|InfoAutoTieBreaker), 1, 2)
		return h
	}
	h := downToTwo()
	h.kill(2)
	h.check("8' survivor holds the lowest id", q(true, 2, 1, 2), 1)
	h.advance(10 * time.Second)
	h.check("8' after the window", q(true, 1, 1, 1), 1)

	// The other survivor (S16) is not so lucky.
	h = downToTwo()
	h.kill(1)
	h.check("survivor without the lowest id", q(false, 2, 1, 2), 2)
	h.advance(10 * time.Second)
	h.check("the window does not help", q(false, 2, 1, 2), 2)
}

// M5: auto_tie_breaker on 4 nodes, lowest / highest / list "3 1", and the
// odd-sized cases.
func TestM5AutoTieBreaker(t *testing.T) {
	type split struct{ a, b []NodeID }
	cases := []struct {
		name    string
		node    string
		split   split
		quorate []NodeID
	}{
		{"lowest {1,2}/{3,4}", "", split{[]NodeID{1, 2}, []NodeID{3, 4}}, []NodeID{1, 2}},
		{"highest {1,2}/{3,4}", "highest", split{[]NodeID{1, 2}, []NodeID{3, 4}}, []NodeID{3, 4}},
		{"list {1,2}/{3,4}", "3 1", split{[]NodeID{1, 2}, []NodeID{3, 4}}, []NodeID{3, 4}},
		{"lowest {1,4}/{2,3}", "lowest", split{[]NodeID{1, 4}, []NodeID{2, 3}}, []NodeID{1, 4}},
		{"highest {1,4}/{2,3}", "highest", split{[]NodeID{1, 4}, []NodeID{2, 3}}, []NodeID{1, 4}},
		{"list {1,4}/{2,3}", "3 1", split{[]NodeID{1, 4}, []NodeID{2, 3}}, []NodeID{2, 3}},
		{"lowest {1}/{2,3,4}", "", split{[]NodeID{1}, []NodeID{2, 3, 4}}, []NodeID{2, 3, 4}},
		{"highest {1}/{2,3,4}", "highest", split{[]NodeID{1}, []NodeID{2, 3, 4}}, []NodeID{2, 3, 4}},
		{"list {1}/{2,3,4}", "3 1", split{[]NodeID{1}, []NodeID{2, 3, 4}}, []NodeID{2, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []func(*configQuorum){atbOn}
			if tc.node != "" {
				opts = append(opts, atbNode(tc.node))
			}
			h := newHarness(t, nodelist(4, opts...))
			h.boot(1, 2, 3, 4)
			h.check("all up", q(true, 4, 4, 3).withFlags(InfoQuorate|InfoAutoTieBreaker), 1, 2, 3, 4)
			h.form(tc.split.a, tc.split.b)
			for _, id := range ids(1, 4) {
				want := false
				for _, w := range tc.quorate {
					want = want || w == id
				}
				if got := h.info(id).Flags&InfoQuorate != 0; got != want {
					t.Errorf("node %d quorate=%v, want %v", id, got, want)
				}
			}
		})
	}

	t.Run("5 nodes WFA {1,2}/{3,4,5}", func(t *testing.T) {
		h := newHarness(t, nodelist(5, atbOn, wfaOn))
		h.boot(ids(1, 5)...)
		h.form([]NodeID{1, 2}, []NodeID{3, 4, 5})
		h.check("minority", q(false, 5, 2, 3), 1, 2)
		h.check("majority", q(true, 5, 3, 3), 3, 4, 5)
	})
	t.Run("5 nodes WFA node 5 dead {1,2}/{3,4}", func(t *testing.T) {
		h := newHarness(t, nodelist(5, atbOn, wfaOn))
		h.boot(ids(1, 5)...)
		h.kill(5)
		h.check("4 left", q(true, 5, 4, 3), 1, 2, 3, 4)
		h.form([]NodeID{1, 2}, []NodeID{3, 4})
		h.check("half with the lowest id", q(true, 5, 2, 3), 1, 2)
		h.check("other half", q(false, 5, 2, 3), 3, 4)
	})
	t.Run("5 nodes no WFA: ATB disabled", func(t *testing.T) {
		h := newHarness(t, nodelist(5, atbOn))
		h.boot(ids(1, 5)...)
		h.check("flags", q(true, 5, 5, 3).withFlags(InfoQuorate), ids(1, 5)...)
		if len(h.eng[1].Warnings()) != 1 {
			t.Errorf("warnings: %q", h.eng[1].Warnings())
		}
	})
}

// M6: allow_downscale, expected votes 3: clean shutdowns lower expected
// votes to the members left, never computing quorum from less than 3.
func TestM6AllowDownscale(t *testing.T) {
	small, big := nodelist(3, adOn), nodelist(13, adOn)
	h := newHarness(t, func(id NodeID) Config {
		if id <= 3 {
			return small(id)
		}
		return big(id)
	})
	h.boot(1, 2, 3)
	h.check("1 three nodes", q(true, 3, 3, 2).withFlags(InfoQuorate|InfoAllowDownscale), 1, 2, 3)
	h.boot(ids(4, 13)...)
	h.check("2 ten added", q(true, 13, 13, 7), ids(1, 13)...)
	if b := h.drain(1).PersistBarrier; b != 13 {
		t.Errorf("ev_tracking barrier persisted %d, want 13", b)
	}
	h.leave(13)
	h.check("3 one clean shutdown", q(true, 12, 12, 7), ids(1, 12)...)
	for id := NodeID(12); id > 3; id-- {
		h.leave(id)
	}
	h.check("4 down to 3", q(true, 3, 3, 2), 1, 2, 3)
	h.leave(3)
	h.check("5 floor of 3", q(true, 2, 2, 2), 1, 2)
	if st := h.eng[1].Status(h.now); st.EVTrackingBarrier != 13 || st.EVBarrier != 3 {
		t.Errorf("barriers: tracking %d (want 13), ev_barrier %d (want 3)", st.EVTrackingBarrier, st.EVBarrier)
	}

	// Failures do not downscale.
	h.kill(2)
	h.check("failure", q(false, 2, 1, 2), 1)
}

// M7: expected_votes_tracking. The stored barrier replaces
// quorum.expected_votes at startup, and setexpected cannot go below it.
func TestM7ExpectedVotesTracking(t *testing.T) {
	cfg := nodelist(3, evtOn, func(q *configQuorum) { q.ExpectedVotes = u32p(3) })
	h := newHarness(t, func(id NodeID) Config {
		c := cfg(id)
		c.EVBarrier = 13
		return c
	})
	h.boot(1, 2, 3)
	h.check("barrier 13 replaces expected_votes", q(false, 13, 3, 7), 1, 2, 3)
	if err := h.eng[1].SetExpected(h.now, 3); err != nil {
		t.Fatalf("SetExpected(3): %v", err)
	}
	h.settle()
	// The members' expected votes are set to 3, the local one is raised
	// back to the barrier.
	in := h.info(1)
	if in.NodeExpectedVotes != 13 || in.HighestExpected != 13 || in.Quorum != 7 || in.Flags&InfoQuorate != 0 {
		t.Errorf("after setexpected 3: %+v", in)
	}
	rd := h.drain(2)
	sawExpected := false
	for _, ev := range rd.Events {
		sawExpected = sawExpected || (ev.Kind == EventExpected && ev.Expected == 3)
	}
	if !sawExpected {
		t.Errorf("no expected-votes event for the RECONFIGURE: %+v", rd.Events)
	}

	// Barrier 0 on first start: quorum.expected_votes is ignored; without a
	// nodelist a lone node starts with expected 1 and is quorate.
	h = newHarness(t, expectedOnly(5, evtOn))
	h.boot(1)
	h.check("first start without nodelist", q(true, 1, 1, 1), 1)
	if b := h.drain(1).PersistBarrier; b != 1 {
		t.Errorf("barrier persisted %d, want 1", b)
	}
	// With a nodelist the sum is used.
	h = newHarness(t, nodelist(3, evtOn, func(q *configQuorum) { q.ExpectedVotes = u32p(7) }))
	h.boot(1)
	h.check("first start with nodelist", q(false, 3, 1, 2), 1)
	if b := h.drain(1).PersistBarrier; b != 3 {
		t.Errorf("barrier persisted %d, want 3", b)
	}

	// The barrier only grows: a fourth node raises it to 4.
	three, four := nodelist(3, evtOn), nodelist(4, evtOn)
	h = newHarness(t, func(id NodeID) Config {
		if id == 4 {
			return four(id)
		}
		return three(id)
	})
	h.boot(1, 2, 3)
	if b := h.drain(1).PersistBarrier; b != 3 {
		t.Errorf("barrier persisted %d, want 3", b)
	}
	h.boot(4)
	h.check("a fourth node", q(true, 4, 4, 3), ids(1, 4)...)
	if b := h.drain(1).PersistBarrier; b != 4 {
		t.Errorf("barrier persisted %d, want 4", b)
	}
	h.kill(4)
	h.check("it fails again", q(true, 4, 3, 3), 1, 2, 3)
	if b := h.drain(1).PersistBarrier; b != 0 {
		t.Errorf("barrier persisted %d, want nothing", b)
	}
}
