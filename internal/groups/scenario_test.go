package groups

import (
	"errors"
	"testing"
	"time"
)

func onePhase(name string) Attributes { return Attributes{GroupName: name} }

func nPhase(name string, limit uint32, dv VoteValue) Attributes {
	return Attributes{GroupName: name, NumPhases: NPhase, TimeLimit: limit, DefaultVote: dv}
}

// S-01 Group creation, one-phase.
func TestS01CreateOnePhase(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	a := h.join(1, 1, onePhase("g"))
	h.settle()
	h.expect(a, "approved JOIN ph=1 sum=0 ch=[1/1] mem=[1/1]")
}

// S-02 One-phase join of a second provider.
func TestS02SecondJoinOnePhase(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	a := h.join(1, 1, onePhase("g"))
	h.settle()
	h.take(a)
	b := h.join(2, 1, onePhase("g"))
	h.settle()
	h.expect(a, "approved JOIN ph=1 sum=0 ch=[2/1] mem=[1/1 2/1]")
	h.expect(b, "approved JOIN ph=1 sum=0 ch=[2/1] mem=[1/1 2/1]")
}

// S-03 Join with mismatched attributes: synchronous when the local
// replica knows the group, asynchronous when the attributes changed in the
// stream first.
func TestS03BadAttributes(t *testing.T) {
	h := newHarness(t, 1, 2)
	a := h.join(1, 1, nPhase("g", 10, VoteReject))
	h.settle()
	h.take(a)
	if _, err := h.tryJoin(2, 1, nPhase("g", 20, VoteReject)); !errors.Is(err, ErrBadGroupAttributes) {
		t.Fatalf("sync join error = %v", err)
	}
	// Async: two joins to a new group with different attributes; the
	// second in the order fails.
	x := h.join(1, 2, onePhase("h"))
	y := h.join(2, 2, Attributes{GroupName: "h", TimeLimit: 5})
	h.settle()
	h.expect(x, "approved JOIN ph=1 sum=0 ch=[1/2] mem=[1/2]")
	h.expect(y, "error BAD_GROUP_ATTRIBUTES JOIN")
	h.expect(a)
	if err := h.e(y).Vote(h.now, y.client, y.tok, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("dead token vote = %v", err)
	}
}

// abc builds A, B, C on nodes 1–3 in g with the given attributes, all
// notifications of the build taken.
func abc(t *testing.T, at Attributes, nodes ...NodeID) (*harness, []who) {
	if len(nodes) == 0 {
		nodes = []NodeID{1, 2, 3}
	}
	h := newHarness(t, 1, 2, 3, 4)
	var ws []who
	for _, n := range nodes {
		w := h.join(n, 1, at)
		h.settle()
		ws = append(ws, w)
		for {
			p := h.e(w).groups[at.GroupName].Proto
			if p == nil {
				break
			}
			for _, v := range ws {
				if b := p.ballot(v.id()); b != nil && !b.Voted {
					h.vote(v, VoteApprove)
				}
			}
			h.settle()
		}
	}
	for _, w := range ws {
		h.take(w)
	}
	return h, ws
}

// S-04 N-phase join, all approve.
func TestS04NPhaseJoinApproved(t *testing.T) {
	h, ws := abc(t, nPhase("g", 30, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	d := h.join(4, 1, nPhase("g", 30, VoteReject))
	h.settle()
	for _, w := range []who{a, b, c, d} {
		h.expect(w, "nphase JOIN ph=1 sum=0 ch=[4/1]")
	}
	for _, w := range []who{a, b, c, d} {
		h.vote(w, VoteApprove)
	}
	h.settle()
	for _, w := range []who{a, b, c, d} {
		h.expect(w, "approved JOIN ph=1 sum=EXPLICIT_APPROVE ch=[4/1] mem=[1/1 2/1 3/1 4/1]")
	}
}

// S-05 N-phase join, explicit reject; subscribers see nothing.
func TestS05NPhaseJoinRejected(t *testing.T) {
	h, ws := abc(t, nPhase("g", 30, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	x := h.subscribe(1, SubscribeAll, "g")
	h.expect(x, `sub initial state val="" full=[1/1 2/1 3/1]`)
	d := h.join(4, 1, nPhase("g", 30, VoteReject))
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteReject)
	h.vote(c, VoteApprove)
	h.vote(d, VoteApprove)
	h.settle()
	for _, w := range []who{a, b, c, d} {
		h.expect(w, "nphase JOIN ph=1 sum=0 ch=[4/1]",
			"rejected JOIN ph=1 sum=EXPLICIT_REJECT ch=[4/1] mem=[1/1 2/1 3/1 4/1]")
	}
	h.expect(x)
	if err := h.e(d).Vote(h.now, d.client, d.tok, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("rejected joiner's token: %v", err)
	}
	if got := h.eng[2].groups["g"].ids(); ids(got) != "[1/1 2/1 3/1]" {
		t.Fatalf("membership %v", got)
	}
}

func (h *harness) subscribe(node NodeID, c SubscriptionControl, group string) who {
	h.t.Helper()
	nextClient++
	tok, err := h.eng[node].Subscribe(h.now, nextClient, SubscribeArgs{Control: c, Group: group})
	if err != nil {
		h.t.Fatalf("subscribe: %v", err)
	}
	return who{node: node, client: nextClient, tok: tok}
}

func (h *harness) changeState(w who, np NumPhases, limit uint32, v string) {
	h.t.Helper()
	if err := h.e(w).ChangeState(h.now, w.client, w.tok, StateChangeArgs{NumPhases: np, TimeLimit: limit, NewState: []byte(v)}); err != nil {
		h.t.Fatalf("change state: %v", err)
	}
}

func (h *harness) sendMessage(w who, np NumPhases, limit uint32, m string) {
	h.t.Helper()
	if err := h.e(w).SendMessage(h.now, w.client, w.tok, MessageArgs{NumPhases: np, TimeLimit: limit, Message: []byte(m)}); err != nil {
		h.t.Fatalf("send message: %v", err)
	}
}

// S-06 Multi-phase barrier via CONTINUE: phase 2 opens only after both
// phase-1 votes are in.
func TestS06Barrier(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject), 1, 2)
	a, b := ws[0], ws[1]
	h.changeState(a, NPhase, 0, "v1")
	h.settle()
	h.expect(a, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="v1"`)
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="v1"`)
	h.voteArgs(a, VoteArgs{Value: VoteContinue})
	h.settle()
	h.expect(a) // barrier: B has not voted
	h.expect(b)
	h.vote(b, VoteApprove)
	h.settle()
	h.expect(a, `nphase STATE_VALUE_CHANGE ph=2 sum=0 state="v1"`)
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=2 sum=0 state="v1"`)
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	for _, w := range ws {
		h.expect(w, `approved STATE_VALUE_CHANGE ph=2 sum=EXPLICIT_APPROVE mem=[1/1 2/1] state="v1"`)
	}
	if s := string(h.eng[3].groups["g"].State); s != "v1" {
		t.Fatalf("state %q", s)
	}
}

// S-07 Time-out with default REJECT, then the tardy announcement.
func TestS07TimeoutDefaultReject(t *testing.T) {
	h, ws := abc(t, nPhase("g", 5, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.sendMessage(a, NPhase, 5, "M")
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.advance(4 * time.Second)
	h.expect(a, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="M"`)
	h.advance(time.Second)
	h.expect(a, `rejected PROVIDER_MESSAGE ph=1 sum=DEFAULT_REJECT|TIME_LIMIT_EXCEEDED mem=[1/1 2/1 3/1] msg="M"`,
		"announce TIME_LIMIT_EXCEEDED [3/1]")
	for _, w := range []who{b} {
		h.expect(w, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="M"`, `rejected PROVIDER_MESSAGE ph=1 sum=DEFAULT_REJECT|TIME_LIMIT_EXCEEDED mem=[1/1 2/1 3/1] msg="M"`,
			"announce TIME_LIMIT_EXCEEDED [3/1]")
	}
	h.expect(c, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="M"`,
		`rejected PROVIDER_MESSAGE ph=1 sum=DEFAULT_REJECT|TIME_LIMIT_EXCEEDED mem=[1/1 2/1 3/1] msg="M"`,
		"announce TIME_LIMIT_EXCEEDED [3/1]")
	// C's late vote: no protocol runs any more.
	if err := h.e(c).Vote(h.now, c.client, c.tok, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrVoteNotExpected) {
		t.Fatalf("late vote: %v", err)
	}
}

// S-08 Time-out with default APPROVE.
func TestS08TimeoutDefaultApprove(t *testing.T) {
	h, ws := abc(t, nPhase("g", 5, VoteApprove))
	a, b := ws[0], ws[1]
	h.sendMessage(a, NPhase, 5, "M")
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.advance(5 * time.Second)
	h.expect(a, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="M"`,
		`approved PROVIDER_MESSAGE ph=1 sum=DEFAULT_APPROVE|TIME_LIMIT_EXCEEDED mem=[1/1 2/1 3/1] msg="M"`,
		"announce TIME_LIMIT_EXCEEDED [3/1]")
}

// S-09 Provider fails during a vote: default reject with PROVIDER_FAILED,
// then the failure leave.
func TestS09ProviderFailsMidVote(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(a, NPhase, 0, "new")
	h.settle()
	h.vote(a, VoteApprove)
	h.settle()
	h.eng[3].ClientGone(h.now, c.client, false)
	h.settle()
	// The phase still waits for B (§6.2 collects every vote).
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="new"`)
	h.vote(b, VoteApprove)
	h.settle()
	h.expect(b, `rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="new"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE")
	for _, w := range []who{a} {
		h.expect(w, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="new"`,
			`rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="new"`,
			"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE")
	}
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	for _, w := range []who{a, b} {
		h.expect(w, "approved FAILURE_LEAVE ph=1 sum=EXPLICIT_APPROVE ch=[3/1] li=PROVIDER_FAILED_LEAVE mem=[1/1 2/1]")
	}
	if g := h.eng[1].groups["g"]; ids(g.ids()) != "[1/1 2/1]" || len(g.State) != 0 {
		t.Fatalf("group %v %q", g.ids(), g.State)
	}
}

// S-10 Failure leave, one-phase, by node loss; DELTA_LEAVE subscribers.
func TestS10NodeDiesOnePhase(t *testing.T) {
	h, ws := abc(t, onePhase("g"))
	a, b := ws[0], ws[1]
	x := h.subscribe(2, SubscribeDeltaLeaves|SubscribeDeltasOnly, "g")
	h.expect(x, "sub initial full=[1/1 2/1 3/1]") // the snapshot always has the membership
	h.kill(3)
	h.view([]NodeID{1, 2, 4})
	for _, w := range []who{a, b} {
		h.expect(w, "approved FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE mem=[1/1 2/1]")
	}
	h.expect(x, "sub leave ch=[3/1]")
}

// S-11 A failure leave is not defeated by default votes.
func TestS11FailureLeaveDefaults(t *testing.T) {
	h := newHarness(t, 1, 2, 3, 4)
	at := nPhase("g", 5, VoteReject)
	var ws []who
	for n := NodeID(1); n <= 4; n++ {
		ws = append(ws, h.join(n, 1, at))
		h.settle()
		for _, w := range ws {
			h.e(w).Vote(h.now, w.client, w.tok, VoteArgs{Value: VoteApprove})
		}
		h.settle()
	}
	for _, w := range ws {
		h.take(w)
	}
	a, b, c := ws[0], ws[1], ws[2]
	h.kill(4)
	h.view([]NodeID{1, 2, 3})
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.advance(5 * time.Second)
	h.expect(a, "nphase FAILURE_LEAVE ph=1 sum=0 ch=[4/1] li=PROVIDER_FAILED_LEAVE",
		"approved FAILURE_LEAVE ph=1 sum=TIME_LIMIT_EXCEEDED ch=[4/1] li=PROVIDER_FAILED_LEAVE mem=[1/1 2/1 3/1]",
		"announce TIME_LIMIT_EXCEEDED [3/1]")
	_ = c
}

// S-12 Batched failure leave: one node with three providers crashes.
func TestS12BatchedFailureLeave(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	a := h.join(1, 1, onePhase("g"))
	h.join(2, 1, onePhase("g"))
	h.join(2, 2, onePhase("g"))
	h.join(2, 3, onePhase("g"))
	h.settle()
	h.take(a)
	h.kill(2)
	h.view([]NodeID{1, 3})
	h.expect(a, "approved FAILURE_LEAVE ph=1 sum=0 ch=[2/1 2/2 2/3] li=PROVIDER_FAILED_LEAVE li=PROVIDER_FAILED_LEAVE li=PROVIDER_FAILED_LEAVE mem=[1/1]")
}

// S-13 Batched joins queue behind a running protocol; without batching
// they run one by one in order.
func TestS13BatchedJoins(t *testing.T) {
	for _, bc := range []BatchControl{BatchJoins, NoBatching} {
		at := nPhase("g", 0, VoteReject)
		at.BatchControl = bc
		h, ws := abc(t, at, 1)
		a := ws[0]
		h.changeState(a, NPhase, 0, "s")
		h.settle()
		b, err := h.tryJoin(2, 1, at)
		if err != nil {
			t.Fatal(err)
		}
		c, err := h.tryJoin(3, 1, at)
		if err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.take(a)
		h.vote(a, VoteApprove)
		h.settle()
		if bc == BatchJoins {
			h.expect(a, `approved STATE_VALUE_CHANGE ph=1 sum=EXPLICIT_APPROVE mem=[1/1] state="s"`,
				"nphase JOIN ph=1 sum=0 ch=[2/1 3/1]")
			h.vote(a, VoteApprove)
			for _, w := range []who{b, c} {
				h.expect(w, "nphase JOIN ph=1 sum=0 ch=[2/1 3/1]")
				h.vote(w, VoteApprove)
			}
			h.settle()
			h.expect(a, "approved JOIN ph=1 sum=EXPLICIT_APPROVE ch=[2/1 3/1] mem=[1/1 2/1 3/1]")
			continue
		}
		h.expect(a, `approved STATE_VALUE_CHANGE ph=1 sum=EXPLICIT_APPROVE mem=[1/1] state="s"`,
			"nphase JOIN ph=1 sum=0 ch=[2/1]")
		h.expect(b, "nphase JOIN ph=1 sum=0 ch=[2/1]")
		h.expect(c)
		h.vote(a, VoteApprove)
		h.vote(b, VoteApprove)
		h.settle()
		h.expect(b, "approved JOIN ph=1 sum=EXPLICIT_APPROVE ch=[2/1] mem=[1/1 2/1]", "nphase JOIN ph=1 sum=0 ch=[3/1]")
		h.expect(c, "nphase JOIN ph=1 sum=0 ch=[3/1]")
	}
}

// S-14 Collision: synchronous when the local replica knows the group is
// busy; asynchronous for the loser of a race in the total order.
func TestS14Collide(t *testing.T) {
	h, ws := abc(t, nPhase("g", 60, VoteReject), 1, 2)
	a, b := ws[0], ws[1]
	h.changeState(a, NPhase, 60, "x")
	h.settle()
	err := h.e(b).ChangeState(h.now, b.client, b.tok, StateChangeArgs{NumPhases: NPhase, NewState: []byte("y")})
	if !errors.Is(err, ErrCollide) {
		t.Fatalf("sync collide: %v", err)
	}
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	h.take(a)
	h.take(b)
	// The race: both proposals are broadcast before either is delivered.
	h.changeState(a, OnePhase, 0, "a")
	h.changeState(b, OnePhase, 0, "b")
	h.settle()
	// One-phase protocols end as soon as they are delivered: no collision.
	h.expect(a, `approved STATE_VALUE_CHANGE ph=1 sum=0 mem=[1/1 2/1] state="a"`,
		`approved STATE_VALUE_CHANGE ph=1 sum=0 mem=[1/1 2/1] state="b"`)
	h.take(b)
	// One-phase protocols finish at once, so race with n-phase ones. The
	// harness orders node 1's message first.
	h.changeState(b, NPhase, 0, "b2")
	h.changeState(a, NPhase, 0, "a2")
	h.settle()
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="a2"`, "error COLLIDE STATE_VALUE_CHANGE")
	h.expect(a, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="a2"`)
}

// S-15 Vote not expected, bad vote values.
func TestS15VoteErrors(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject), 1)
	a := ws[0]
	e := h.e(a)
	if err := e.Vote(h.now, a.client, a.tok, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrVoteNotExpected) {
		t.Fatalf("idle vote: %v", err)
	}
	if err := e.Vote(h.now, a.client, a.tok, VoteArgs{Value: 99}); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("vote 99: %v", err)
	}
	if err := e.Vote(h.now, a.client, a.tok, VoteArgs{Value: VoteApprove, Default: VoteContinue}); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("default continue: %v", err)
	}
	if err := e.Vote(h.now, a.client, 999, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("unknown token: %v", err)
	}
	// A second vote in the same phase.
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.voteArgs(a, VoteArgs{Value: VoteContinue})
	if err := e.Vote(h.now, a.client, a.tok, VoteArgs{Value: VoteApprove}); !errors.Is(err, ErrVoteNotExpected) {
		t.Fatalf("second vote: %v", err)
	}
	// Oversized state value.
	big := make([]byte, DefaultMaxState+1)
	if err := e.Vote(h.now, a.client, a.tok, VoteArgs{Value: VoteApprove, State: big, HasState: true}); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("big vote state: %v", err)
	}
}

// S-16 Voluntary leave, one-phase.
func TestS16LeaveOnePhase(t *testing.T) {
	h, ws := abc(t, onePhase("g"), 1, 2)
	a, b := ws[0], ws[1]
	if err := h.e(b).Leave(h.now, b.client, b.tok, LeaveArgs{LeaveCode: 7}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	for _, w := range ws {
		h.expect(w, "approved LEAVE ph=1 sum=0 ch=[2/1] li=PROVIDER_LEFT:7 mem=[1/1]")
	}
	if err := h.e(b).Leave(h.now, b.client, b.tok, LeaveArgs{}); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("after leave: %v", err)
	}
	_ = a
}

// S-17 Voluntary leave, n-phase, rejected.
func TestS17LeaveRejected(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	if err := h.e(c).Leave(h.now, c.client, c.tok, LeaveArgs{NumPhases: NPhase}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.vote(a, VoteReject)
	h.settle()
	h.vote(b, VoteApprove)
	h.vote(c, VoteApprove)
	h.settle()
	h.expect(c, "nphase LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_LEFT",
		"rejected LEAVE ph=1 sum=EXPLICIT_REJECT ch=[3/1] li=PROVIDER_LEFT mem=[1/1 2/1]")
	if ids(h.eng[1].groups["g"].ids()) != "[1/1 2/1 3/1]" {
		t.Fatal("C left")
	}
}

// S-18 Goodbye, idle and during an n-phase protocol with dv=APPROVE.
func TestS18Goodbye(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteApprove))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.vote(a, VoteApprove)
	if err := h.e(c).Goodbye(h.now, c.client, c.tok); err != nil {
		t.Fatal(err)
	}
	if err := h.e(c).Goodbye(h.now, c.client, c.tok); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("second goodbye: %v", err)
	}
	h.settle()
	h.vote(b, VoteApprove)
	h.settle()
	h.expect(a, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`,
		`approved STATE_VALUE_CHANGE ph=1 sum=DEFAULT_APPROVE|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="s"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_SAID_GOODBYE")
	h.expect(c, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`)
}

// S-19 Quit: failure leave in every group of the client.
func TestS19Quit(t *testing.T) {
	h := newHarness(t, 1, 2)
	a1 := h.join(1, 1, onePhase("g1"))
	a2 := h.join(1, 1, onePhase("g2"))
	x1 := h.join(2, 1, onePhase("g1"))
	h.settle()
	x2tok, err := h.eng[2].Join(h.now, x1.client, JoinArgs{Attributes: onePhase("g2"), Instance: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.take(a1)
	h.take(a2)
	h.eng[2].ClientGone(h.now, x1.client, true)
	h.settle()
	h.expect(a1, "approved FAILURE_LEAVE ph=1 sum=0 ch=[2/1] li=PROVIDER_QUIT mem=[1/1]")
	h.expect(a2, "approved FAILURE_LEAVE ph=1 sum=0 ch=[2/1] li=PROVIDER_QUIT mem=[1/1]")
	_ = x2tok
}

func (h *harness) joinWith(node NodeID, a JoinArgs) who {
	h.t.Helper()
	nextClient++
	w := who{node: node, client: nextClient, inst: a.Instance}
	tok, err := h.eng[node].Join(h.now, w.client, a)
	if err != nil {
		h.t.Fatalf("join: %v", err)
	}
	w.tok = tok
	return w
}

// expelSetup: A, B on nodes 1, 2 and C (with a deactivate script) on node
// 3, in an n-phase group.
func expelSetup(t *testing.T, at Attributes) (*harness, who, who, who) {
	h := newHarness(t, 1, 2, 3)
	a := h.join(1, 1, at)
	h.settle()
	h.vote(a, VoteApprove)
	h.settle()
	b := h.join(2, 1, at)
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	c := h.joinWith(3, JoinArgs{Attributes: at, Instance: 1, DeactivateScript: "/usr/local/bin/deact.sh"})
	h.settle()
	for _, w := range []who{a, b, c} {
		h.vote(w, VoteApprove)
	}
	h.settle()
	for _, w := range []who{a, b, c} {
		h.take(w)
	}
	return h, a, b, c
}

func (h *harness) takeDeacts(n NodeID) []Deactivation {
	h.collect()
	d := h.deacts[n]
	h.deacts[n] = nil
	return d
}

// S-20..S-22 Expel with deactivate scripts: success, failure, hang.
func TestS20to22ExpelDeactivate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status DeactivateStatus
		want   string
	}{
		{"ok", DeactivateOK, "approved EXPEL ph=1 sum=EXPLICIT_APPROVE ch=[3/1] li=PROVIDER_EXPELLED:9 mem=[1/1 2/1]"},
		{"fail", DeactivateFailed, "rejected EXPEL ph=1 sum=DEACTIVATE_UNSUCCESSFUL ch=[3/1] li=PROVIDER_EXPELLED:9 mem=[1/1 2/1]"},
		{"hang", DeactivateTimedOut, "rejected EXPEL ph=1 sum=DEACTIVATE_TIME_LIMIT_EXCEEDED ch=[3/1] li=PROVIDER_EXPELLED:9 mem=[1/1 2/1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, a, b, c := expelSetup(t, nPhase("g", 0, VoteReject))
			err := h.e(a).Expel(h.now, a.client, a.tok, ExpelArgs{NumPhases: NPhase, List: []ProviderID{c.id()},
				ExpelCode: 9, DeactivatePhase: 1, DeactivateTimeLimit: 3, DeactivateArgument: "arg"})
			if err != nil {
				t.Fatal(err)
			}
			h.settle()
			ds := h.takeDeacts(3)
			if len(ds) != 1 || ds[0].Script != "/usr/local/bin/deact.sh" || ds[0].TimeLimit != 3*time.Second ||
				ds[0].ExpelCode != 9 || ds[0].Argument != "arg" || ds[0].Token != c.tok {
				t.Fatalf("deactivations %+v", ds)
			}
			if len(h.takeDeacts(1))+len(h.takeDeacts(2)) != 0 {
				t.Fatal("scripts requested on other nodes")
			}
			for _, w := range []who{a, b, c} {
				h.vote(w, VoteApprove)
			}
			h.settle()
			h.expect(a, "nphase EXPEL ph=1 sum=0 ch=[3/1] li=PROVIDER_EXPELLED:9") // waits for the script
			if err := h.eng[3].DeactivateDone(h.now, ds[0].ID, tc.status); err != nil {
				t.Fatal(err)
			}
			h.settle()
			h.expect(a, tc.want)
			h.expect(c, "nphase EXPEL ph=1 sum=0 ch=[3/1] li=PROVIDER_EXPELLED:9", tc.want)
			member := h.eng[1].groups["g"].memberIndex(c.id()) >= 0
			if member != (tc.status != DeactivateOK) {
				t.Fatalf("C member=%v", member)
			}
		})
	}
	// One-phase expel whose script hangs: approved with the flag, by the
	// replicated time limit when the agent never reports.
	t.Run("one-phase", func(t *testing.T) {
		h, a, b, c := expelSetup(t, nPhase("g", 0, VoteReject))
		err := h.e(a).Expel(h.now, a.client, a.tok, ExpelArgs{List: []ProviderID{c.id()}, DeactivatePhase: 1, DeactivateTimeLimit: 3})
		if err != nil {
			t.Fatal(err)
		}
		h.settle()
		if len(h.takeDeacts(3)) != 1 {
			t.Fatal("no deactivation")
		}
		h.advance(3 * time.Second)
		for _, w := range []who{a, b, c} {
			h.expect(w, "approved EXPEL ph=1 sum=DEACTIVATE_TIME_LIMIT_EXCEEDED ch=[3/1] li=PROVIDER_EXPELLED mem=[1/1 2/1]")
		}
	})
	t.Run("errors", func(t *testing.T) {
		h, a, _, _ := expelSetup(t, nPhase("g", 0, VoteReject))
		e := h.e(a)
		if err := e.Expel(h.now, a.client, a.tok, ExpelArgs{List: []ProviderID{{9, 9}}}); !errors.Is(err, ErrUnknownProvider) {
			t.Fatalf("unknown: %v", err)
		}
		if err := e.Expel(h.now, a.client, a.tok, ExpelArgs{List: []ProviderID{{3, 1}}, DeactivatePhase: 2}); !errors.Is(err, ErrInvalidDeactivatePhase) {
			t.Fatalf("phase: %v", err)
		}
		if err := e.Expel(h.now, a.client, a.tok, ExpelArgs{}); !errors.Is(err, ErrBadParameter) {
			t.Fatalf("empty: %v", err)
		}
	})
}

// S-23 Self-expel, one-phase.
func TestS23SelfExpel(t *testing.T) {
	h, ws := abc(t, onePhase("g"), 1, 2)
	a := ws[0]
	if err := h.e(a).Expel(h.now, a.client, a.tok, ExpelArgs{List: []ProviderID{a.id()}}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.expect(a, "approved EXPEL ph=1 sum=0 ch=[1/1] li=PROVIDER_EXPELLED mem=[2/1]")
	if err := h.e(a).Leave(h.now, a.client, a.tok, LeaveArgs{}); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("token after self-expel: %v", err)
	}
}

// S-24 A state value proposed in a vote; S-31 subscribers' view of it.
func TestS24StateInVote(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject), 1, 2)
	a, b := ws[0], ws[1]
	x := h.subscribe(3, SubscribeState, "g")
	y := h.subscribe(3, SubscribeMembership, "g")
	h.take(x)
	h.take(y)
	h.sendMessage(a, NPhase, 0, "M")
	h.settle()
	h.vote(a, VoteApprove)
	h.voteArgs(b, VoteArgs{Value: VoteContinue, State: []byte("v2"), HasState: true, Message: []byte("hi"), HasMessage: true})
	h.settle()
	h.expect(a, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="M"`,
		`nphase PROVIDER_MESSAGE ph=2 sum=0 state="v2" msg="hi"`)
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	// The vote's message was delivered once; the protocol's own message
	// shows again.
	h.expect(a, `approved PROVIDER_MESSAGE ph=2 sum=EXPLICIT_APPROVE mem=[1/1 2/1] state="v2" msg="M"`)
	h.expect(x, `sub state val="v2"`)
	h.expect(y)
}

// S-25 Competing state values: the first in the total order wins.
func TestS25CompetingStates(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(c, NPhase, 0, "orig")
	h.settle()
	h.voteArgs(b, VoteArgs{Value: VoteApprove, State: []byte("y"), HasState: true})
	h.voteArgs(a, VoteArgs{Value: VoteApprove, State: []byte("x"), HasState: true})
	h.vote(c, VoteApprove)
	h.settle()
	// The harness orders node 1's message first.
	if s := string(h.eng[2].groups["g"].State); s != "x" {
		t.Fatalf("state %q", s)
	}
}

// S-26 A NULL default vote keeps the default set in an earlier phase.
func TestS26NullDefaultKeeps(t *testing.T) {
	h, ws := abc(t, nPhase("g", 5, VoteReject), 1, 2)
	a, b := ws[0], ws[1]
	h.changeState(a, NPhase, 5, "s")
	h.settle()
	h.voteArgs(a, VoteArgs{Value: VoteContinue, Default: VoteApprove})
	h.vote(b, VoteContinue)
	h.settle()
	h.voteArgs(a, VoteArgs{Value: VoteContinue, Default: NullVote})
	h.vote(b, VoteContinue)
	h.settle()
	h.vote(a, VoteApprove)
	h.advance(5 * time.Second)
	h.expect(a, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`,
		`nphase STATE_VALUE_CHANGE ph=2 sum=0 state="s"`,
		`nphase STATE_VALUE_CHANGE ph=3 sum=0 state="s"`,
		`approved STATE_VALUE_CHANGE ph=3 sum=DEFAULT_APPROVE|TIME_LIMIT_EXCEEDED mem=[1/1 2/1] state="s"`,
		"announce TIME_LIMIT_EXCEEDED [2/1]")
}

// S-27 Attribute change; S-28 back-level providers.
func TestS27AttributeChange(t *testing.T) {
	h, ws := abc(t, nPhase("g", 10, VoteReject), 1, 2)
	a, b := ws[0], ws[1]
	na := nPhase("g", 60, VoteReject)
	if err := h.e(a).ChangeAttributes(h.now, a.client, a.tok, AttributesArgs{NumPhases: NPhase, Attributes: na}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	h.expect(a, "nphase GROUP_ATTRIBUTE_CHANGE ph=1 sum=0",
		"approved GROUP_ATTRIBUTE_CHANGE ph=1 sum=EXPLICIT_APPROVE mem=[1/1 2/1]")
	if _, err := h.tryJoin(3, 1, nPhase("g", 10, VoteReject)); !errors.Is(err, ErrBadGroupAttributes) {
		t.Fatalf("old attrs: %v", err)
	}
	h.join(3, 1, na)
	h.settle()
	bad := na
	bad.GroupName = "other"
	if err := h.e(a).ChangeAttributes(h.now, a.client, a.tok, AttributesArgs{Attributes: bad}); !errors.Is(err, ErrBadGroupAttributes) {
		t.Fatalf("rename: %v", err)
	}
}

func TestS28Backlevel(t *testing.T) {
	h := newHarness(t, 1, 2)
	a := h.join(1, 1, onePhase("g"))
	old := onePhase("g")
	old.ClientVersion = 1
	h.join(2, 1, old)
	h.settle()
	h.take(a)
	if err := h.e(a).ChangeAttributes(h.now, a.client, a.tok, AttributesArgs{Attributes: Attributes{GroupName: "g", TimeLimit: 3}}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.expect(a, "error BACKLEVEL_PROVIDERS GROUP_ATTRIBUTE_CHANGE")
	if err := h.e(a).Goodbye(h.now, a.client, a.tok); !errors.Is(err, ErrBacklevelProviders) {
		t.Fatalf("goodbye: %v", err)
	}
}

// sourceTarget: source s with S1 (node 1), S2 (node 2); target t with
// T1, T2 on the same nodes, cast-outs and reflections n-phase.
func sourceTarget(t *testing.T) (*harness, who, who, who, who) {
	h := newHarness(t, 1, 2, 3)
	s1 := h.join(1, 1, onePhase("s"))
	s2 := h.join(2, 1, onePhase("s"))
	h.settle()
	ta := Attributes{GroupName: "t", SourceGroupName: "s", SourceReflectionNumPhases: NPhase}
	if _, err := h.tryJoin(3, 1, ta); !errors.Is(err, ErrNoSourceGroupProvider) {
		t.Fatalf("target join without source provider: %v", err)
	}
	t1 := h.join(1, 1, ta)
	t2 := h.join(2, 1, ta)
	h.settle()
	for _, w := range []who{s1, s2, t1, t2} {
		h.take(w)
	}
	return h, s1, s2, t1, t2
}

// S-29 Cast-out: even an explicit reject cannot keep T2.
func TestS29CastOut(t *testing.T) {
	h, s1, s2, t1, t2 := sourceTarget(t)
	h.changeState(s1, OnePhase, 0, "src")
	h.settle()
	h.take(s1)
	h.take(s2)
	// The reflection of "src" runs first; approve it.
	h.vote(t1, VoteApprove)
	h.vote(t2, VoteApprove)
	h.settle()
	h.take(t1)
	h.take(t2)
	if err := h.e(s2).Leave(h.now, s2.client, s2.tok, LeaveArgs{}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.expect(t1, `nphase CAST_OUT ph=1 sum=0 ch=[2/1] li=PROVIDER_CAST_OUT src="src"`)
	h.vote(t1, VoteReject)
	h.vote(t2, VoteApprove)
	h.settle()
	want := `rejected CAST_OUT ph=1 sum=EXPLICIT_REJECT ch=[2/1] li=PROVIDER_CAST_OUT mem=[1/1] src="src"`
	h.expect(t1, want)
	h.expect(t2, `nphase CAST_OUT ph=1 sum=0 ch=[2/1] li=PROVIDER_CAST_OUT src="src"`, want)
	if ids(h.eng[3].groups["t"].ids()) != "[1/1]" {
		t.Fatal("T2 not cast out")
	}
}

// S-30 Source-state reflection, rejected: the target's state stays.
func TestS30Reflection(t *testing.T) {
	h, s1, _, t1, t2 := sourceTarget(t)
	h.changeState(s1, OnePhase, 0, "up")
	h.settle()
	h.expect(t1, `nphase SOURCE_STATE_REFLECTION ph=1 sum=0 src="up"`)
	h.vote(t1, VoteReject)
	h.voteArgs(t2, VoteArgs{Value: VoteApprove, State: []byte("mine"), HasState: true})
	h.settle()
	h.expect(t1, `rejected SOURCE_STATE_REFLECTION ph=1 sum=EXPLICIT_REJECT mem=[1/1 2/1] state="mine" src="up"`)
	if s := h.eng[1].groups["t"].State; len(s) != 0 {
		t.Fatalf("target state %q", s)
	}
}

// S-32 Subscribe to an unknown group; dissolution.
func TestS32Dissolution(t *testing.T) {
	h := newHarness(t, 1, 2)
	nextClient++
	tok, err := h.eng[1].Subscribe(h.now, nextClient, SubscribeArgs{Control: SubscribeAll, Group: "nogroup"})
	if err != nil {
		t.Fatal(err)
	}
	h.expect(who{node: 1, tok: tok}, "error UNKNOWN_GROUP SUBSCRIPTION")
	a := h.join(1, 1, onePhase("g"))
	h.settle()
	y := h.subscribe(2, SubscribeAll, "g")
	h.expect(y, `sub initial state val="" full=[1/1]`)
	if err := h.e(a).Leave(h.now, a.client, a.tok, LeaveArgs{}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.expect(y, "sub leave full=[] ch=[1/1]", "sub dissolved")
	if err := h.eng[2].Unsubscribe(h.now, y.client, y.tok); !errors.Is(err, ErrBadMemberToken) {
		t.Fatalf("dissolved token: %v", err)
	}
	if len(h.eng[1].groups)+len(h.eng[2].groups) != 0 {
		t.Fatal("group not dissolved")
	}
}

// S-33 Responsiveness announcement.
func TestS33Responsiveness(t *testing.T) {
	h, ws := abc(t, onePhase("g"), 1, 2)
	a, z := ws[0], ws[1]
	h.eng[2].Responsiveness(h.now, z.client, false)
	h.settle()
	h.expect(a, "announce RESPONSIVENESS_NO_RESPONSE [2/1]")
	h.expect(z, "announce RESPONSIVENESS_NO_RESPONSE [2/1]")
	if len(h.eng[1].groups["g"].Providers) != 2 {
		t.Fatal("Z removed")
	}
}

// S-36 Group leader (and ring representative) fails mid-protocol.
func TestS36LeaderFailsMidProtocol(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.vote(b, VoteApprove)
	h.kill(1)
	h.view([]NodeID{2, 3, 4})
	h.vote(c, VoteApprove)
	h.settle()
	want := []string{`nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`,
		`rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="s"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[1/1] li=PROVIDER_FAILED_LEAVE"}
	h.expect(b, want...)
	h.expect(c, want...)
	_ = a
}

// S-37 A join issued while the view changes is not lost.
func TestS37JoinDuringViewChange(t *testing.T) {
	h, ws := abc(t, onePhase("g"), 1, 2)
	a := ws[0]
	h.settle()
	ring := RingID{Rep: 2, Seq: 99}
	for _, n := range []NodeID{2, 3} {
		h.eng[n].Nodelist(h.now, ring, []NodeID{2, 3})
	}
	c := h.join(3, 1, onePhase("g")) // between nodelist and installed
	h.kill(1)
	h.kill(4)
	var sync []heldMsg
	var normal []heldMsg
	for _, n := range []NodeID{2, 3} {
		s, norm := h.eng[n].Output()
		for _, b := range s {
			sync = append(sync, heldMsg{n, b})
		}
		for _, b := range norm {
			normal = append(normal, heldMsg{n, b})
		}
	}
	for _, m := range sync {
		for _, n := range []NodeID{2, 3} {
			h.eng[n].Deliver(h.now, ring, m.from, m.payload, true)
		}
	}
	for _, n := range []NodeID{2, 3} {
		h.eng[n].Installed(h.now, ring, []NodeID{2, 3})
		h.rings[n] = ring
	}
	h.parts = [][]NodeID{{2, 3}}
	h.held[0] = normal
	h.settle()
	h.expect(c, "approved JOIN ph=1 sum=0 ch=[3/1] mem=[2/1 3/1]")
	_ = a
}

// S-38 Partition and heal: the bigger instance survives; the other's
// providers get the merge notification with their lost state value.
func TestS38PartitionMerge(t *testing.T) {
	h, ws := abc(t, onePhase("g"))
	a, b, c := ws[0], ws[1], ws[2]
	h.view([]NodeID{1, 2}, []NodeID{3, 4})
	h.expect(a, "approved FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE mem=[1/1 2/1]")
	h.expect(c, "approved FAILURE_LEAVE ph=1 sum=0 ch=[1/1 2/1] li=PROVIDER_FAILED_LEAVE li=PROVIDER_FAILED_LEAVE mem=[3/1]")
	h.changeState(c, OnePhase, 0, "side2")
	h.changeState(a, OnePhase, 0, "side1")
	h.settle()
	h.take(a)
	h.take(b)
	h.take(c)
	h.view([]NodeID{1, 2, 3, 4})
	h.expect(a)
	h.expect(b)
	h.expect(c, `merge sum=GROUP_DISSOLVED merging=[1/1 2/1] state="side2"`)
	g := h.eng[4].groups["g"]
	if ids(g.ids()) != "[1/1 2/1]" || string(g.State) != "side1" {
		t.Fatalf("merged group %v %q", g.ids(), g.State)
	}
	// C may re-join.
	c2 := h.join(3, 1, onePhase("g"))
	h.settle()
	h.expect(c2, "approved JOIN ph=1 sum=0 ch=[3/1] mem=[1/1 2/1 3/1]")
}
