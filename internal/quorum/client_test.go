package quorum

import (
	"errors"
	"testing"

	"github.com/conclave/conclave/cs"
)

func TestGetInfoUnknownNode(t *testing.T) {
	e := mustNew(t, nodelist(3)(1))
	in, err := e.GetInfo(t0, 42)
	if !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("err %v", err)
	}
	if in != (Info{NodeID: 42}) {
		t.Errorf("info %+v, want zeroed with the node id", in)
	}
	if in := infoOf(t, e, 0); in.NodeID != 1 || in.NodeState != NodestateMember {
		t.Errorf("getinfo(0) is not the local node: %+v", in)
	}
}

func TestSetExpected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, up    int
		expected uint32
		err      error
	}{
		{"below total votes", 5, 3, 2, cs.ErrInvalidParam},
		{"zero (the CLI refuses it first)", 5, 3, 0, cs.ErrInvalidParam},
		{"would make a quorate cluster inquorate", 3, 3, 6, cs.ErrInvalidParam},
		{"an inquorate cluster may raise it freely", 5, 1, 10, nil},
		{"lower to the votes present", 5, 3, 3, nil},
		{"equal to the quorum limit", 3, 3, 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nodelist(tc.n))
			h.boot(ids(1, tc.up)...)
			before := h.info(1)
			err := h.eng[1].SetExpected(h.now, tc.expected)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("SetExpected(%d) = %v, want %v", tc.expected, err, tc.err)
			}
			h.settle()
			after := h.info(1)
			if tc.err != nil {
				if after != before {
					t.Errorf("rejected call changed state: %+v → %+v", before, after)
				}
				return
			}
			for _, id := range ids(1, tc.up) {
				if in := h.info(id); in.NodeExpectedVotes != tc.expected {
					t.Errorf("node %d expected %d, want %d", id, in.NodeExpectedVotes, tc.expected)
				}
			}
		})
	}

	// Lowering expected votes lowers the quorum (allow decrease) and sends
	// the expected-votes event on every node.
	h := newHarness(t, nodelist(5))
	h.boot(1, 2, 3)
	h.drain(2)
	if err := h.eng[1].SetExpected(h.now, 3); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.check("after setexpected 3", q(true, 3, 3, 2), 1, 2, 3)
	found := false
	for _, ev := range h.drain(2).Events {
		found = found || (ev.Kind == EventExpected && ev.Expected == 3)
	}
	if !found {
		t.Error("no expected-votes event on node 2")
	}
	if st := h.eng[3].Status(h.now); st.EVBarrier != 3 {
		t.Errorf("ev_barrier %d, want 3", st.EVBarrier)
	}
}

func TestSetVotes(t *testing.T) {
	h := newHarness(t, nodelist(3))
	h.boot(1, 2, 3)
	e := h.eng[1]
	if err := e.SetVotes(h.now, 9, 1); !errors.Is(err, cs.ErrNameNotFound) {
		t.Errorf("unknown node: %v", err)
	}
	if err := e.SetVotes(h.now, 1, 2); err != nil {
		t.Errorf("own votes: %v", err)
	}
	h.settle()
	h.check("node 1 has 2 votes", q(true, 4, 4, 3), 1, 2, 3)

	// two_node with two voters forces quorum 1, below half the total.
	h = newHarness(t, nodelist(2, twoNode))
	h.boot(1, 2)
	if err := h.eng[1].SetVotes(h.now, 2, 5); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("q < T/2: %v", err)
	}
	if v := infoOf(t, h.eng[1], 2).NodeVotes; v != 1 {
		t.Errorf("votes not restored: %d", v)
	}
	// Quorum above the total.
	h = newHarness(t, nodelist(2))
	h.boot(1, 2)
	if err := h.eng[1].SetVotes(h.now, 2, 0); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("q > T: %v", err)
	}
	if v := infoOf(t, h.eng[1], 2).NodeVotes; v != 1 {
		t.Errorf("votes not restored: %d", v)
	}
	// Node 0 is the device, even without a device section.
	if err := h.eng[1].SetVotes(h.now, 0, 1); err != nil {
		t.Errorf("device votes: %v", err)
	}
	h.settle()
	if in := h.info(2); in.QdeviceVotes != 1 || in.NodeVotes != 1 {
		t.Errorf("setvotes(0) changed %+v", in)
	}
}

func TestLeaveWithoutDownscale(t *testing.T) {
	e := mustNew(t, nodelist(3)(1))
	if e.Leave(t0) {
		t.Error("Leave sent a message without allow_downscale")
	}
	if s, n := e.Output(); len(s)+len(n) != 0 {
		t.Error("output after Leave")
	}
	e = mustNew(t, nodelist(3, adOn)(1))
	if !e.Leave(t0) {
		t.Error("no Leave message with allow_downscale")
	}
	_, n := e.Output()
	if m, ok := decode(n[0]); !ok || m.kind != msgNodeinfo || m.flags&flagLeaving == 0 {
		t.Errorf("leave message %+v", m)
	}
}
