package groups

import (
	"errors"
	"testing"
)

// The host-membership system group follows the installed views; it is
// read-only.
func TestHostGroup(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	x := h.subscribe(1, SubscribeMembership, HostGroupName)
	h.expect(x, "sub initial full=[1/0 2/0 3/0]")
	h.kill(3)
	h.view([]NodeID{1, 2})
	h.expect(x, "sub leave full=[1/0 2/0] ch=[3/0]")
	h.eng[3] = h.restart(3)
	h.view([]NodeID{1, 2, 3})
	h.expect(x, "sub join full=[1/0 2/0 3/0] ch=[3/0]")
	if _, err := h.tryJoin(1, 1, onePhase(HostGroupName)); !errors.Is(err, ErrInvalidGroup) {
		t.Fatalf("join system group: %v", err)
	}
	if _, err := h.tryJoin(1, 1, onePhase("_reserved")); !errors.Is(err, ErrInvalidGroup) {
		t.Fatalf("join reserved: %v", err)
	}
}

// Groups/Group describe the replica for status commands.
func TestGroupInfo(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject), 1, 2)
	a := ws[0]
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.vote(a, VoteApprove)
	h.settle()
	h.subscribe(2, SubscribeState, "g")
	gi, ok := h.eng[2].Group("g")
	if !ok || len(gi.Providers) != 2 || gi.Protocol == nil || gi.Protocol.Type != ProtoStateValueChange ||
		gi.Protocol.Phase != 1 || ids(gi.Protocol.Voted) != "[1/1]" || ids(gi.Protocol.Voters) != "[1/1 2/1]" ||
		gi.Subscribers != 1 {
		t.Fatalf("%+v %+v", gi, gi.Protocol)
	}
	if len(h.eng[1].Groups()) != 1 {
		t.Fatal("Groups")
	}
}

// Malformed requests get the spec's codes and change nothing.
func TestMalformedRequests(t *testing.T) {
	h, ws := abc(t, onePhase("g"), 1)
	a := ws[0]
	e := h.e(a)
	before := digest(e)
	big := make([]byte, DefaultMaxState+1)
	for _, tc := range []struct {
		name string
		err  error
		want Error
	}{
		{"state too big", e.ChangeState(h.now, a.client, a.tok, StateChangeArgs{NewState: big}), ErrBadParameter},
		{"nil state", e.ChangeState(h.now, a.client, a.tok, StateChangeArgs{}), ErrBadParameter},
		{"bad phases", e.ChangeState(h.now, a.client, a.tok, StateChangeArgs{NumPhases: 7, NewState: []byte("x")}), ErrBadParameter},
		{"bad limit", e.SendMessage(h.now, a.client, a.tok, MessageArgs{TimeLimit: MaxTimeLimit + 1, Message: []byte("x")}), ErrBadParameter},
		{"unknown token", e.Leave(h.now, a.client, 12345, LeaveArgs{}), ErrBadMemberToken},
		{"other client's token", e.Leave(h.now, a.client+1000, a.tok, LeaveArgs{}), ErrBadMemberToken},
		{"vote idle", e.Vote(h.now, a.client, a.tok, VoteArgs{Value: VoteApprove}), ErrVoteNotExpected},
		{"name too long", func() error {
			_, err := e.Join(h.now, 77, JoinArgs{Attributes: onePhase("abcdefghijklmnopqrstuvwxyz0123456789")})
			return err
		}(), ErrNameTooLong},
		{"bad name", func() error { _, err := e.Join(h.now, 77, JoinArgs{Attributes: onePhase("a b")}); return err }(), ErrInvalidGroup},
		{"already a member", func() error {
			_, err := e.Join(h.now, a.client, JoinArgs{Attributes: onePhase("g"), Instance: 9})
			return err
		}(), ErrAlreadyAMember},
		{"duplicate instance", func() error {
			_, err := e.Join(h.now, 78, JoinArgs{Attributes: onePhase("g"), Instance: 1})
			return err
		}(), ErrDuplicateInstance},
		{"bad default vote attr", func() error {
			_, err := e.Join(h.now, 79, JoinArgs{Attributes: Attributes{GroupName: "q", DefaultVote: VoteContinue}})
			return err
		}(), ErrBadGroupAttributes},
		{"source is self", func() error {
			_, err := e.Join(h.now, 79, JoinArgs{Attributes: Attributes{GroupName: "q", SourceGroupName: "q"}})
			return err
		}(), ErrInvalidSourceGroup},
		{"missing source", func() error {
			_, err := e.Join(h.now, 79, JoinArgs{Attributes: Attributes{GroupName: "q", SourceGroupName: "nope"}})
			return err
		}(), ErrInvalidSourceGroup},
		{"subscriber token as provider", func() error {
			s := h.subscribe(1, SubscribeState, "g")
			return e.Leave(h.now, s.client, s.tok, LeaveArgs{})
		}(), ErrNotAMember},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	h.settle()
	if digest(e) != before {
		t.Fatal("malformed requests changed the replica")
	}
}

// A sync step cut short on one member: the reconciliation reads the copy
// of another member of the same ring that arrived whole.
func TestSyncCutShort(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	h.join(2, 1, onePhase("a"))
	h.join(2, 2, onePhase("b"))
	h.settle()
	ring := RingID{Rep: 1, Seq: 50}
	members := []NodeID{1, 2, 3}
	for _, n := range members {
		h.eng[n].Nodelist(h.now, ring, members)
	}
	for _, n := range members {
		s, _ := h.eng[n].Output()
		if n == 1 {
			s = s[:2] // header and one group only
		}
		for _, b := range s {
			for _, m := range members {
				h.eng[m].Deliver(h.now, ring, n, b, true)
			}
		}
	}
	for _, n := range members {
		h.eng[n].Installed(h.now, ring, members)
		h.rings[n] = ring
	}
	h.settle()
	if len(h.eng[1].groups) != 2 {
		t.Fatalf("groups after a cut-short sync: %v", sortedKeys(h.eng[1].groups))
	}
}
