package groups

import (
	"errors"
	"testing"
)

func TestTally(t *testing.T) {
	p1, p2, p3 := ProviderID{1, 1}, ProviderID{2, 1}, ProviderID{3, 1}
	nn := deactivateNotNeeded
	voted := func(p ProviderID, v VoteValue) ballot { return ballot{P: p, Voted: true, Value: v, Deact: nn} }
	missing := func(p ProviderID) ballot { return ballot{P: p, Deact: nn} }
	failed := func(p ProviderID) ballot { return ballot{P: p, Failed: true, Deact: nn} }
	for _, tc := range []struct {
		name     string
		typ      ProtocolType
		one      bool
		def      VoteValue
		ballots  []ballot
		timedOut bool
		want     outcome
		sum      SummaryCode
		tardy    int
	}{
		{"all approve", ProtoStateValueChange, false, VoteReject,
			[]ballot{voted(p1, VoteApprove), voted(p2, VoteApprove)}, false, outcomeApproved, ExplicitApprove, 0},
		{"continue", ProtoStateValueChange, false, VoteReject,
			[]ballot{voted(p1, VoteApprove), voted(p2, VoteContinue)}, false, outcomeContinue, 0, 0},
		{"reject beats continue", ProtoJoin, false, VoteApprove,
			[]ballot{voted(p1, VoteReject), voted(p2, VoteContinue)}, false, outcomeRejected, ExplicitReject, 0},
		{"tardy, default reject", ProtoProviderMessage, false, VoteReject,
			[]ballot{voted(p1, VoteApprove), missing(p2)}, true, outcomeRejected, DefaultReject | TimeLimitExceeded, 1},
		{"tardy, default approve", ProtoProviderMessage, false, VoteApprove,
			[]ballot{voted(p1, VoteApprove), missing(p2), missing(p3)}, true, outcomeApproved, DefaultApprove | TimeLimitExceeded, 2},
		{"failed, default reject", ProtoStateValueChange, false, VoteReject,
			[]ballot{voted(p1, VoteApprove), failed(p2)}, false, outcomeRejected, DefaultReject | ProviderFailed, 0},
		{"failed and tardy", ProtoStateValueChange, false, VoteReject,
			[]ballot{missing(p1), failed(p2)}, true, outcomeRejected, DefaultReject | ProviderFailed | TimeLimitExceeded, 1},
		{"failed, default approve, continue", ProtoStateValueChange, false, VoteApprove,
			[]ballot{voted(p1, VoteContinue), failed(p2)}, false, outcomeContinue, DefaultApprove | ProviderFailed, 0},
		{"failure leave ignores defaults", ProtoFailureLeave, false, VoteReject,
			[]ballot{voted(p1, VoteApprove), missing(p2)}, true, outcomeApproved, TimeLimitExceeded, 1},
		{"failure leave explicit reject", ProtoFailureLeave, false, VoteReject,
			[]ballot{voted(p1, VoteReject), failed(p2)}, false, outcomeRejected, ExplicitReject | ProviderFailed, 0},
		{"cast-out like failure leave", ProtoCastOut, false, VoteReject,
			[]ballot{failed(p1), voted(p2, VoteApprove)}, false, outcomeApproved, ProviderFailed, 0},
		{"deactivate failed", ProtoExpel, false, VoteApprove,
			[]ballot{voted(p1, VoteApprove), {P: p2, Voted: true, Value: VoteApprove, Deact: DeactivateFailed}},
			false, outcomeRejected, DeactivateUnsuccessful, 0},
		{"deactivate still running at the limit", ProtoExpel, false, VoteApprove,
			[]ballot{voted(p1, VoteApprove), {P: p2, Voted: true, Value: VoteApprove, Deact: deactivatePending}},
			true, outcomeRejected, DeactivateTimeLimitExceeded, 0},
		{"deactivate ok, own vote counts", ProtoExpel, false, VoteApprove,
			[]ballot{voted(p1, VoteApprove), {P: p2, Voted: true, Value: VoteContinue, Deact: DeactivateOK}},
			false, outcomeContinue, 0, 0},
		{"one-phase deactivate failed", ProtoExpel, true, VoteReject,
			[]ballot{{P: p1, NoVote: true, Deact: DeactivateFailed}}, false, outcomeApproved, DeactivateUnsuccessful, 0},
		{"one-phase deactivate, provider failed", ProtoExpel, true, VoteReject,
			[]ballot{{P: p1, NoVote: true, Failed: true}}, false, outcomeApproved, ProviderFailed, 0},
		{"one-phase deactivate ok", ProtoExpel, true, VoteReject,
			[]ballot{{P: p1, NoVote: true, Deact: DeactivateOK}}, false, outcomeApproved, 0, 0},
		{"nobody left to vote", ProtoJoin, false, VoteReject, nil, false, outcomeApproved, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tally(tc.typ, tc.one, tc.def, tc.ballots, tc.timedOut)
			if r.Outcome != tc.want || r.Summary != tc.sum || len(r.Tardy) != tc.tardy {
				t.Fatalf("got %v %v tardy %v; want %v %v tardy %d", r.Outcome, r.Summary, r.Tardy, tc.want, tc.sum, tc.tardy)
			}
		})
	}
}

func TestCombineDefault(t *testing.T) {
	for _, tc := range []struct{ pending, arg, want VoteValue }{
		{NullVote, NullVote, NullVote},
		{NullVote, VoteApprove, VoteApprove},
		{VoteApprove, NullVote, VoteApprove},
		{VoteApprove, VoteReject, VoteReject},
		{VoteReject, VoteApprove, VoteReject},
		{VoteReject, NullVote, VoteReject},
	} {
		if got := combineDefault(tc.pending, tc.arg); got != tc.want {
			t.Errorf("combine(%v, %v) = %v, want %v", tc.pending, tc.arg, got, tc.want)
		}
	}
}

func TestBallotComplete(t *testing.T) {
	for _, tc := range []struct {
		b    ballot
		want bool
	}{
		{ballot{Deact: deactivateNotNeeded}, false},
		{ballot{Voted: true, Deact: deactivateNotNeeded}, true},
		{ballot{Voted: true, Deact: deactivatePending}, false},
		{ballot{Deact: DeactivateFailed}, true},
		{ballot{Voted: true, Deact: DeactivateOK}, true},
		{ballot{Deact: DeactivateOK}, false},
		{ballot{Failed: true, Deact: deactivatePending}, true},
		{ballot{NoVote: true, Deact: deactivatePending}, false},
		{ballot{NoVote: true, Deact: DeactivateTimedOut}, true},
	} {
		if got := tc.b.complete(); got != tc.want {
			t.Errorf("%+v complete = %v", tc.b, got)
		}
	}
}

func TestSummaryString(t *testing.T) {
	if s := (DefaultReject | TimeLimitExceeded).String(); s != "HA_GS_DEFAULT_REJECT|HA_GS_TIME_LIMIT_EXCEEDED" {
		t.Fatal(s)
	}
	if SummaryCode(0).String() != "0" {
		t.Fatal("zero")
	}
}

func TestErrors(t *testing.T) {
	var err error = ErrCollide
	if !errors.Is(err, ErrCollide) || errors.Is(err, ErrBadParameter) || err.Error() != "HA_GS_COLLIDE" {
		t.Fatal(err)
	}
	if Code(nil) != OK || Code(ErrVoteNotExpected) != ErrVoteNotExpected || FromCode(0) != nil {
		t.Fatal("codes")
	}
	for e := OK; e <= ErrGroupDissolved; e++ {
		if _, ok := errorNames[e]; !ok {
			t.Errorf("no name for %d", e)
		}
	}
}

// Collisions (U-16): every provider proposal collides, synchronously,
// with a running protocol and with queued work; a join never does.
func TestCollisions(t *testing.T) {
	type propose func(h *harness, w who) error
	props := map[string]propose{
		"leave": func(h *harness, w who) error { return h.e(w).Leave(h.now, w.client, w.tok, LeaveArgs{}) },
		"expel": func(h *harness, w who) error {
			return h.e(w).Expel(h.now, w.client, w.tok, ExpelArgs{List: []ProviderID{w.id()}})
		},
		"state": func(h *harness, w who) error {
			return h.e(w).ChangeState(h.now, w.client, w.tok, StateChangeArgs{NewState: []byte("x")})
		},
		"message": func(h *harness, w who) error {
			return h.e(w).SendMessage(h.now, w.client, w.tok, MessageArgs{Message: []byte("x")})
		},
		"attrs": func(h *harness, w who) error {
			return h.e(w).ChangeAttributes(h.now, w.client, w.tok, AttributesArgs{Attributes: nPhase("g", 0, VoteReject)})
		},
	}
	for _, name := range sortedKeys(props) {
		for _, busy := range []string{"idle", "running", "queued join"} {
			t.Run(name+"/"+busy, func(t *testing.T) {
				h, ws := abc(t, nPhase("g", 0, VoteReject), 1, 2)
				a, b := ws[0], ws[1]
				switch busy {
				case "running":
					h.changeState(a, NPhase, 0, "s")
					h.settle()
				case "queued join":
					h.changeState(a, NPhase, 0, "s")
					h.settle()
					if _, err := h.tryJoin(3, 1, nPhase("g", 0, VoteReject)); err != nil {
						t.Fatalf("join collided: %v", err)
					}
					h.settle()
					h.vote(a, VoteApprove)
					h.vote(b, VoteApprove)
					h.settle() // the state change is done, the join runs
				}
				err := props[name](h, b)
				if busy == "idle" {
					if err != nil {
						t.Fatalf("idle: %v", err)
					}
					return
				}
				if !errors.Is(err, ErrCollide) {
					t.Fatalf("busy: %v", err)
				}
			})
		}
	}
}
