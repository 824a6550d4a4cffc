package groupsim

import (
	"strings"
	"testing"

	"github.com/conclave/conclave/internal/groups"
)

// TestCheckerCatches shows that each property check can fail: a faulty
// engine is stood in for by changing what the checker is shown.
func TestCheckerCatches(t *testing.T) {
	setup := []string{"cluster nodes=3", "up 1..3", "settle"}
	cases := []struct {
		name   string
		script []string
		mutate func(p *Provider, n *groups.Notification) bool
		// act runs after the script, with the harness.
		act  func(t *testing.T, sc *Script) error
		want string
	}{{
		name:   "an outcome is lost",
		script: []string{"form 1/1 2/1 3/1", "state 1/1 a"},
		mutate: func(p *Provider, n *groups.Notification) bool {
			return !(p.ID.Node == 2 && n.Protocol == groups.ProtoJoin && n.Proposal.ChangingMembership[0].Node == 3)
		},
		want: "but its provider 2/1 was last told [1/1 2/1] state",
	}, {
		name:   "a provider is told another state value",
		script: []string{"form 1/1", "state 1/1 a"},
		mutate: func(p *Provider, n *groups.Notification) bool {
			if n.Protocol == groups.ProtoStateValueChange {
				pr := *n.Proposal
				pr.ProposedState = []byte("other")
				n.Proposal = &pr
			}
			return true
		},
		want: `replica of g has [1/1] state "a", but its provider 1/1 was last told [1/1] state "other"`,
	}, {
		name:   "two providers see different outcomes in one ring",
		script: []string{"form 1/1 2/1 3/1", "msg 1/1 hello"},
		mutate: func(p *Provider, n *groups.Notification) bool {
			if p.ID.Node == 2 && n.Protocol == groups.ProtoProviderMessage {
				pr := *n.Proposal
				pr.Message = []byte("bye")
				n.Proposal = &pr
			}
			return true
		},
		want: "saw different outcomes at the same point",
	}, {
		name:   "a phase is skipped",
		script: []string{"form 1/1 2/1 phases=n", "state 1/1 s phases=n", "vote 1/1 continue", "vote 2/1 approve"},
		mutate: func(p *Provider, n *groups.Notification) bool {
			if n.Type == groups.NotifyNPhase && n.Proposal.Phase.Number == 2 {
				pr := *n.Proposal
				pr.Phase.Number = 3
				n.Proposal = &pr
			}
			return true
		},
		want: "phase 3 of HA_GS_STATE_VALUE_CHANGE after phase 1",
	}, {
		// The engine counts, in phase 2, a vote the client never cast in
		// that phase (here: cast behind the checker's back).
		name:   "a vote is counted that the client did not cast in that phase",
		script: []string{"form 1/1 2/1 phases=n", "state 1/1 s phases=n", "vote 1/1 continue", "vote 2/1 approve", "vote 1/1 approve"},
		act: func(t *testing.T, sc *Script) error {
			p, err := sc.H.clients["2/1"].Provider("g")
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.H.Engine(2).Vote(sc.H.S.Now(), p.C.ID, p.Tok, groups.VoteArgs{Value: groups.VoteApprove}); err != nil {
				t.Fatal(err)
			}
			sc.H.poke(2)
			return sc.H.S.RunFor(RequestSettle)
		},
		want: "closed without its vote and without a time-out",
	}, {
		name:   "a counted REJECT does not reject",
		script: []string{"form 1/1 phases=n", "state 1/1 s phases=n", "vote 1/1 reject"},
		mutate: func(p *Provider, n *groups.Notification) bool {
			if n.Type == groups.NotifyRejected {
				n.Type, n.Summary = groups.NotifyApproved, 0
			}
			return true
		},
		want: "in the last phase 1, yet",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := NewScript()
			var err error
			for i, line := range append(append([]string{}, setup...), tc.script...) {
				f := strings.Fields(line)
				if _, err = sc.Run(f[0], f[1:]); err != nil {
					break
				}
				if i == len(setup)-1 {
					sc.H.check.mutate = tc.mutate
				}
			}
			if err == nil && tc.act != nil {
				err = tc.act(t, sc)
			}
			if err == nil {
				err = sc.H.Err()
			}
			if err == nil {
				err = sc.H.Final()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checker said %v; want an error containing %q", err, tc.want)
			}
			t.Logf("caught: %v", err)
		})
	}
}
