package groups

import "testing"

// An interrupted view change: nodes 2 and 3 leave ring R for a view they
// never install, while node 1 stays in R and delivers two votes they did
// not; then {1,2} forms. Both copies come from R, at different positions:
// they are two lineages. Node 2's provider of g keeps its own (node 1 has
// none there), so it loses no outcome; group h, which the extra
// deliveries did not touch, is one instance for both nodes and goes on
// with both providers; the replicas agree.
func TestInterruptedViewChangeSplitsLineage(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteApprove), 2, 3)
	a, b := ws[0], ws[1]
	x := h.join(1, 1, onePhase("h"))
	h.settle()
	y := h.join(2, 2, onePhase("h"))
	h.settle()
	h.take(x)
	h.take(y)
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.take(a)
	h.take(b)

	h.hold = true
	h.vote(a, VoteApprove)
	h.vote(b, VoteReject)
	h.settle()
	votes := h.held[0]
	h.held[0], h.hold = nil, false
	if len(votes) != 2 || votes[0].from != 2 {
		t.Fatalf("held %d messages", len(votes))
	}
	for _, m := range votes {
		h.eng[1].Deliver(h.now, h.rings[1], m.from, m.payload, false)
	}
	h.parts = [][]NodeID{{1}, {2, 3}}
	if p := h.eng[1].groups["g"].Proto; p != nil {
		t.Fatalf("node 1: protocol still running: %+v", p)
	}
	for _, n := range []NodeID{2, 3} {
		h.eng[n].Nodelist(h.now, RingID{Rep: 2, Seq: 1000}, []NodeID{2, 3})
		h.eng[n].Output()
	}
	h.kill(3)
	h.kill(4)
	h.view([]NodeID{1, 2})
	// Node 2 did not deliver its own vote: its membership re-sends it in
	// the new view, where it is a repeat for node 1.
	for _, n := range []NodeID{1, 2} {
		h.eng[n].Deliver(h.now, h.rings[n], votes[0].from, votes[0].payload, false)
	}
	h.settle()
	h.expect(a, `approved STATE_VALUE_CHANGE ph=1 sum=DEFAULT_APPROVE|PROVIDER_FAILED mem=[2/1 3/1] state="s"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE")
	h.expect(x)
	h.expect(y)
	for _, n := range []NodeID{1, 2} {
		if g := h.eng[n].groups["h"]; g == nil || ids(g.ids()) != "[1/1 2/2]" {
			t.Fatalf("node %d: h = %+v", n, g)
		}
	}
}

// A message delivered twice (a re-send after a view change is a repeat
// for the members that delivered it before) is applied once.
func TestRepeatAppliedOnce(t *testing.T) {
	h := newHarness(t, 1, 2)
	a := h.join(1, 1, onePhase("g"))
	h.settle()
	h.take(a)
	h.hold = true
	h.changeState(a, OnePhase, 0, "s")
	h.settle()
	m := h.held[0][0]
	h.held[0], h.hold = nil, false
	for range 2 {
		for _, n := range h.parts[0] {
			h.eng[n].Deliver(h.now, h.rings[n], m.from, m.payload, false)
		}
	}
	h.settle()
	h.expect(a, `approved STATE_VALUE_CHANGE ph=1 sum=0 mem=[1/1] state="s"`)
}

// A join this node sent, applied by another partition whose copy wins the
// merge while this node's lineage never saw it: the joiner is told (its
// join can no longer be answered) instead of waiting forever.
func TestJoinSpentInAnotherLineage(t *testing.T) {
	h := newHarness(t, 1, 2)
	a := h.join(1, 1, onePhase("g"))
	h.settle()
	h.take(a)
	h.hold = true
	b := h.join(2, 1, onePhase("g"))
	h.settle()
	j := h.held[0][0]
	h.held[0], h.hold = nil, false
	// Node 1 delivers the join in the old ring; node 2 started a view of
	// its own that never installs, then {1,2} forms again.
	h.eng[1].Deliver(h.now, h.rings[1], j.from, j.payload, false)
	h.parts = [][]NodeID{{1}, {2}}
	h.settle()
	h.eng[2].Nodelist(h.now, RingID{Rep: 2, Seq: 1000}, []NodeID{2})
	h.eng[2].Output()
	h.view([]NodeID{1, 2})
	h.expect(b, "error GROUP_DISSOLVED JOIN")
	h.expect(a, "approved JOIN ph=1 sum=0 ch=[2/1] mem=[1/1 2/1]",
		"approved FAILURE_LEAVE ph=1 sum=0 ch=[2/1] li=PROVIDER_FAILED_LEAVE mem=[1/1]")
}
