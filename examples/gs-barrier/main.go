// Command gs-barrier shows the group services' n-phase protocol as a
// barrier and as a two-phase commit. Run one per provider (on one agent or
// several); they join the group "barrier", and once --providers are
// members the first of them (in join order) proposes "round 1" as an
// n-phase state change. Every provider votes CONTINUE in phase 1 — the
// barrier: phase 2 begins only when all have arrived — and APPROVE in
// phase 2 — the commit: the new state value is applied by all or by none
// (a REJECT in phase 1, a provider that fails or does not vote in time,
// aborts it everywhere). Then the next round, until --rounds.
//
//	conclave demo &                 # three agents; note their sockets
//	go run ./examples/gs-barrier --socket /tmp/conclave-demo/n1.sock &
//	go run ./examples/gs-barrier --socket /tmp/conclave-demo/n2.sock &
//	go run ./examples/gs-barrier --socket /tmp/conclave-demo/n3.sock
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/conclave/conclave/gs"
)

func main() {
	socket := flag.String("socket", "", "agent socket (default $CONCLAVE_SOCKET, then /run/conclave/conclave.sock)")
	group := flag.String("group", "barrier", "group name")
	instance := flag.Int("instance", 1, "provider instance number (unique per node)")
	providers := flag.Int("providers", 3, "start once this many providers have joined")
	rounds := flag.Int("rounds", 3, "rounds of barrier + commit before leaving")
	reject := flag.Int("reject", 0, "vote REJECT in phase 1 of this round (0: never), to see an abort")
	flag.Parse()
	if err := run(*socket, *group, int16(*instance), *providers, *rounds, *reject); err != nil {
		log.Fatal(err)
	}
}

func run(socket, group string, instance int16, providers, rounds, reject int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := gs.Init(gs.Callbacks{DelayedError: func(_ *gs.Client, n *gs.DelayedErrorNotification) {
		log.Printf("%s failed: %v", n.Protocol, n.ReturnCode)
	}}, gs.WithSocket(socket))
	if err != nil {
		return err
	}
	defer c.Quit()
	node, _ := c.NodeNumber()
	me := gs.ProviderID{Node: node, Instance: instance}
	say := func(format string, args ...any) { fmt.Printf("%s: "+format+"\n", append([]any{me}, args...)...) }

	// propose starts round r if this provider leads (is first in join
	// order); a collision with another protocol is retried.
	var tok gs.Token
	propose := func(members []gs.ProviderID, r int) {
		if len(members) < providers || members[0] != me || r > rounds {
			return
		}
		go func() {
			for {
				err := c.ChangeStateValue(tok, gs.StateChangeRequest{NumPhases: gs.NPhase, TimeLimit: 10,
					NewState: []byte("round " + strconv.Itoa(r))})
				if !errors.Is(err, gs.ErrCollide) {
					if err != nil {
						log.Print(err)
					}
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	round := func(state []byte) int {
		r, _ := strconv.Atoi(strings.TrimPrefix(string(state), "round "))
		return r
	}
	cb := gs.ProviderCallbacks{
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			vote := gs.VoteApprove
			if n.Protocol == gs.ProtoStateValueChange {
				r := round(n.Proposal.ProposedState)
				switch n.Proposal.Phase.Number {
				case 1:
					say("round %d, phase 1: prepared, waiting at the barrier", r)
					vote = gs.VoteContinue
					if r == reject {
						say("round %d: not ready, voting REJECT", r)
						vote = gs.VoteReject
					}
				default:
					say("round %d, phase %d: everyone passed the barrier; commit", r, n.Proposal.Phase.Number)
				}
			}
			if err := c.Vote(n.Token, vote, nil, nil, gs.NullVote); err != nil {
				log.Print(err)
			}
		},
		Approved: func(c *gs.Client, n *gs.ApprovedNotification) {
			p := n.Proposal
			switch n.Protocol {
			case gs.ProtoJoin, gs.ProtoFailureLeave, gs.ProtoLeave:
				say("%s approved: members %v", n.Protocol, p.ProposedMembership)
				propose(p.ProposedMembership, round(p.CurrentState)+1)
			case gs.ProtoStateValueChange:
				r := round(p.ProposedState)
				say("round %d committed by all after %d phases: state %q", r, p.Phase.Number, p.ProposedState)
				if r >= rounds {
					stop()
					return
				}
				propose(p.ProposedMembership, r+1)
			}
		},
		Rejected: func(c *gs.Client, n *gs.RejectedNotification) {
			p := n.Proposal
			say("%s aborted everywhere (%s); state stays %q", n.Protocol, n.Summary, p.CurrentState)
			if n.Protocol == gs.ProtoStateValueChange {
				propose(p.CurrentMembership, round(p.ProposedState)+1)
			}
		},
	}
	tok, err = c.Join(gs.JoinRequest{
		Attributes: gs.Attributes{GroupName: group, NumPhases: gs.NPhase, TimeLimit: 10, DefaultVote: gs.VoteReject},
		Instance:   instance, LocalName: fmt.Sprintf("gs-barrier[%d]", os.Getpid()), Callbacks: cb,
	})
	if err != nil {
		return err
	}
	say("joining %s; starting once %d providers are members", group, providers)
	return c.Run(ctx)
}
