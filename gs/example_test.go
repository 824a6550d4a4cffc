package gs_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/conclave/conclave/gs"
)

// Join a group whose joins are voted on, approve every proposal, and set
// the group's state value once a member: the n-phase protocol as a
// two-phase commit. It needs a running agent.
func Example() {
	c, err := gs.Init(gs.Callbacks{
		DelayedError: func(_ *gs.Client, n *gs.DelayedErrorNotification) {
			log.Printf("%s failed later: %v", n.Protocol, n.ReturnCode)
		},
	}) // $CONCLAVE_SOCKET or /run/conclave/conclave.sock
	if err != nil {
		log.Fatal(err) // gs.ErrNotOK when no agent runs
	}
	defer c.Quit()

	var me gs.Token
	ctx, stop := context.WithCancel(context.Background())
	cb := gs.ProviderCallbacks{
		// Every phase of a voted protocol: answer within the time limit.
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			fmt.Printf("phase %d of %s: %v joining\n", n.Proposal.Phase.Number, n.Protocol, n.Proposal.ChangingMembership)
			if err := c.Vote(n.Token, gs.VoteApprove, nil, nil, gs.NullVote); err != nil {
				log.Print(err)
			}
		},
		Approved: func(c *gs.Client, n *gs.ApprovedNotification) {
			switch n.Protocol {
			case gs.ProtoJoin:
				fmt.Printf("members now %v\n", n.Proposal.ProposedMembership)
				err := c.ChangeStateValue(n.Token, gs.StateChangeRequest{NumPhases: gs.OnePhase, NewState: []byte("ready")})
				if errors.Is(err, gs.ErrCollide) {
					fmt.Println("another protocol is running; try again later")
				}
			case gs.ProtoStateValueChange:
				fmt.Printf("state is %q\n", n.Proposal.ProposedState)
				stop()
			}
		},
		Rejected: func(_ *gs.Client, n *gs.RejectedNotification) {
			fmt.Printf("%s rejected: %s\n", n.Protocol, n.Summary)
			stop()
		},
	}
	me, err = c.Join(gs.JoinRequest{
		Attributes: gs.Attributes{GroupName: "example", NumPhases: gs.NPhase, TimeLimit: 10, DefaultVote: gs.VoteReject},
		Instance:   1,
		LocalName:  "example-provider",
		Callbacks:  cb,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("join requested, token", me)

	// Either poll c.Fd() and call c.Dispatch(gs.NonBlocking), as a C
	// program would, or let Run dispatch until the context ends.
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
