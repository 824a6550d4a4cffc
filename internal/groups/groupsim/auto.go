package groupsim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/conclave/conclave/internal/groups"
)

// AutoVoter answers n-phase notifications for every dispatching client: a
// random think time, then a random vote (APPROVE mostly, some CONTINUE and
// REJECT, sometimes with a proposed state value, a message or a default
// vote). Some clients skip a phase that has a time limit (tardy voters);
// some vote just as it expires, racing the time-out.
type AutoVoter struct {
	Rng      *rand.Rand
	MaxThink time.Duration
	// ApproveOnly: answer every phase at once with APPROVE (to let
	// everything finish at the end of a run).
	ApproveOnly bool
	// Votes counts the votes cast.
	Votes int
}

// never is a vote time that does not come: the client stays silent and
// the phase time limit decides.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Hurry makes every client answer its open phase now, with APPROVE.
func (a *AutoVoter) Hurry(h *Harness) {
	a.ApproveOnly = true
	for _, c := range h.order {
		for _, p := range c.provs {
			p.voteAt = time.Time{}
		}
	}
}

func (a *AutoVoter) act(h *Harness, now time.Time) {
	for _, c := range h.order {
		if c.Deaf || !c.Alive() || h.S.Node(c.Node).Paused {
			continue
		}
		for _, g := range sortedKeys(c.provs) {
			p := c.provs[g]
			if p.Dead || p.latest == nil || p.voted {
				continue
			}
			if p.voteAt.IsZero() {
				switch {
				case a.ApproveOnly:
					p.voteAt = now
				case p.latest.Proposal.Phase.TimeLimit > 0 && a.Rng.IntN(12) == 0:
					p.voteAt = never
				case p.latest.Proposal.Phase.TimeLimit > 0 && a.Rng.IntN(4) == 0:
					// A voter racing the time-out: its vote and the
					// representative's time-out meet in the ordered stream.
					limit := time.Duration(p.latest.Proposal.Phase.TimeLimit) * time.Second
					p.voteAt = now.Add(limit - 20*time.Millisecond + time.Duration(a.Rng.Int64N(int64(40*time.Millisecond))))
				default:
					p.voteAt = now.Add(time.Duration(a.Rng.Int64N(int64(a.MaxThink) + 1)))
				}
			}
			if now.Before(p.voteAt) {
				continue
			}
			v := a.choose(p)
			a.Votes++
			if err := h.Vote(p, v); err != nil {
				// The client answers the phase its node's replica is in, so
				// the vote must be expected.
				h.fail("%s %v: vote %v: %v", p.Group, p.ID, v.Value, err)
				p.voted = true
			}
		}
	}
}

func (a *AutoVoter) choose(p *Provider) groups.VoteArgs {
	v := groups.VoteArgs{Value: groups.VoteApprove}
	if a.ApproveOnly {
		return v
	}
	r := a.Rng.IntN(100)
	switch {
	case r < 12:
		v.Value = groups.VoteReject
	case r < 30 && p.latest.Proposal.Phase.Number < 4:
		v.Value = groups.VoteContinue
	}
	if a.Rng.IntN(5) == 0 {
		v.State, v.HasState = fmt.Appendf(nil, "v%d", a.Rng.IntN(6)), true
	}
	if a.Rng.IntN(8) == 0 {
		v.Message, v.HasMessage = []byte("m"), true
	}
	if a.Rng.IntN(5) == 0 {
		v.Default = groups.VoteValue(1 + 2*a.Rng.IntN(2))
	}
	return v
}
