package groups

import (
	"testing"
	"time"
)

// A provider's node is killed mid-vote, with a time limit running: the
// survivors' protocol ends with PROVIDER_FAILED as soon as the view
// changes, without waiting for the limit.
func TestProviderKilledMidVote(t *testing.T) {
	h, ws := abc(t, nPhase("g", 30, VoteApprove))
	a, b := ws[0], ws[1]
	h.sendMessage(a, NPhase, 30, "m")
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.settle()
	h.kill(3)
	h.view([]NodeID{1, 2, 4})
	h.expect(a, `nphase PROVIDER_MESSAGE ph=1 sum=0 msg="m"`,
		`approved PROVIDER_MESSAGE ph=1 sum=DEFAULT_APPROVE|PROVIDER_FAILED mem=[1/1 2/1 3/1] msg="m"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE")
}

// A node is partitioned away mid-protocol: each side finishes its copy of
// the protocol with the other side's providers failed; at the heal the
// bigger side's instance wins and the other is dissolved with its state.
func TestNodePartitionedMidProtocol(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(a, NPhase, 0, "s")
	h.settle()
	h.vote(a, VoteApprove)
	h.settle()
	h.view([]NodeID{1, 2}, []NodeID{3, 4})
	// Side {1,2}: C failed; B still to vote.
	h.vote(b, VoteApprove)
	h.settle()
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`,
		`rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="s"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[3/1] li=PROVIDER_FAILED_LEAVE")
	// Side {3,4}: A had voted (its vote stands), B failed.
	h.vote(c, VoteApprove)
	h.settle()
	h.expect(c, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`,
		`rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|PROVIDER_FAILED mem=[1/1 2/1 3/1] state="s"`,
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[1/1 2/1] li=PROVIDER_FAILED_LEAVE li=PROVIDER_FAILED_LEAVE")
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.vote(c, VoteApprove)
	h.settle()
	h.take(a)
	h.take(b)
	h.take(c)
	h.view([]NodeID{1, 2, 3, 4})
	h.expect(c, `merge sum=GROUP_DISSOLVED merging=[1/1 2/1] state=""`)
	h.expect(a)
	if g := h.eng[3].groups["g"]; ids(g.ids()) != "[1/1 2/1]" {
		t.Fatalf("merged %v", g.ids())
	}
}

// The ring representative (which sends the time-outs) is killed while a
// phase waits for a provider that never votes: the new representative
// closes the phase when its own timer expires.
func TestRepresentativeKilledMidProtocol(t *testing.T) {
	h, ws := abc(t, nPhase("g", 5, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.changeState(b, NPhase, 5, "s")
	h.settle()
	h.vote(a, VoteApprove)
	h.vote(b, VoteApprove)
	h.advance(3 * time.Second)
	h.kill(1) // the representative, and provider A (which had voted)
	h.view([]NodeID{2, 3, 4})
	h.expect(b, `nphase STATE_VALUE_CHANGE ph=1 sum=0 state="s"`)
	if h.eng[2].NextTick().IsZero() {
		t.Fatal("new representative has no timer")
	}
	h.advance(2 * time.Second)
	h.expect(b, `rejected STATE_VALUE_CHANGE ph=1 sum=DEFAULT_REJECT|TIME_LIMIT_EXCEEDED mem=[1/1 2/1 3/1] state="s"`,
		"announce TIME_LIMIT_EXCEEDED [3/1]",
		"nphase FAILURE_LEAVE ph=1 sum=0 ch=[1/1] li=PROVIDER_FAILED_LEAVE")
	_ = c
}

// Clients of one group go away one after the other (separate failure
// events, no time limit): the failure leave of the first does not wait for
// the votes of the others, whose own failure leaves are queued; the group
// dissolves.
func TestClientsGoneOneByOne(t *testing.T) {
	h, ws := abc(t, nPhase("g", 0, VoteReject))
	a, b, c := ws[0], ws[1], ws[2]
	h.eng[1].ClientGone(h.now, a.client, true)
	h.eng[2].ClientGone(h.now, b.client, true)
	h.eng[3].ClientGone(h.now, c.client, true)
	h.settle()
	for n := NodeID(1); n <= 4; n++ {
		if g := h.eng[n].groups["g"]; g != nil {
			t.Fatalf("node %d: group g still has %v, protocol %+v", n, g.ids(), g.Proto)
		}
	}
}
