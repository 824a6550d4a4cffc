package groups

// ballot is one provider's standing in the current phase of an n-phase
// protocol (or in the deactivate wait of a one-phase expel).
type ballot struct {
	P      ProviderID `json:"p"`
	Voted  bool       `json:"vd,omitempty"`
	Value  VoteValue  `json:"v,omitempty"`
	Failed bool       `json:"f,omitempty"`
	// Deact is the deactivate-script outcome for an expelled provider in
	// the deactivate phase; deactivateNotNeeded otherwise.
	Deact DeactivateStatus `json:"d,omitempty"`
	// NoVote: the provider is only waited for because of its deactivate
	// script (one-phase expel): it casts no vote.
	NoVote bool `json:"nv,omitempty"`
}

// complete: nothing more is expected from this provider in this phase.
// A failed script settles the ballot (its vote is REJECT whatever the
// provider says, U-10), so the group does not wait for a vote that cannot
// matter.
func (b ballot) complete() bool {
	if b.Failed {
		return true
	}
	switch b.Deact {
	case DeactivateFailed, DeactivateTimedOut:
		return true
	case deactivatePending:
		return false
	}
	return b.Voted || b.NoVote
}

type outcome int

const (
	outcomeApproved outcome = iota + 1
	outcomeContinue
	outcomeRejected
)

func (o outcome) String() string {
	switch o {
	case outcomeApproved:
		return "approved"
	case outcomeContinue:
		return "continue"
	case outcomeRejected:
		return "rejected"
	}
	return "?"
}

// tallyResult is what one phase decides.
type tallyResult struct {
	Outcome outcome
	Summary SummaryCode // flags this phase adds
	Tardy   []ProviderID
}

// tally closes one phase: spec §6.2, the part after the votes are
// collected. def is the default vote already combined with this phase's
// default-vote arguments (U-7). timedOut says the phase ended by its time
// limit: every ballot that is not complete then is tardy. onePhase is the
// deactivate wait of a one-phase expel, which cannot be rejected (U-10).
//
// It is a pure function of its arguments so the rules can be tested by
// table, apart from the bookkeeping around them.
func tally(typ ProtocolType, onePhase bool, def VoteValue, ballots []ballot, timedOut bool) tallyResult {
	var r tallyResult
	anyReject, anyContinue, allExplicitApprove := false, false, len(ballots) > 0
	// recordDefault is "record defaultVote" of §6.2, with the failure-leave
	// exception (rule 4, U-12): a failure cannot be voted back.
	recordDefault := func() VoteValue {
		if typ.cannotVeto() {
			return VoteApprove
		}
		if def == VoteReject {
			r.Summary |= DefaultReject
			return VoteReject
		}
		r.Summary |= DefaultApprove
		return VoteApprove
	}
	for _, b := range ballots {
		var v VoteValue
		explicit := false
		switch {
		case b.Failed && onePhase:
			r.Summary |= ProviderFailed
			v = VoteApprove
		case b.Failed:
			r.Summary |= ProviderFailed
			v = recordDefault()
		case b.Deact == DeactivateFailed:
			r.Summary |= DeactivateUnsuccessful
			v = VoteReject
		case b.Deact == DeactivateTimedOut || (b.Deact == deactivatePending && timedOut):
			r.Summary |= DeactivateTimeLimitExceeded
			v = VoteReject
		case b.NoVote:
			v = VoteApprove
		case b.Voted:
			v, explicit = b.Value, true
		default: // not voted, phase timed out
			r.Summary |= TimeLimitExceeded
			r.Tardy = append(r.Tardy, b.P)
			v = recordDefault()
		}
		if onePhase {
			// Only the deactivate flags matter; a one-phase protocol is
			// always approved.
			v = VoteApprove
		}
		if explicit && v == VoteReject {
			r.Summary |= ExplicitReject
		}
		if !explicit || v != VoteApprove {
			allExplicitApprove = false
		}
		switch v {
		case VoteReject:
			anyReject = true
		case VoteContinue:
			anyContinue = true
		}
	}
	switch {
	case anyReject:
		r.Outcome = outcomeRejected
	case anyContinue:
		r.Outcome = outcomeContinue
	default:
		r.Outcome = outcomeApproved
		if allExplicitApprove && !onePhase {
			r.Summary |= ExplicitApprove
		}
	}
	return r
}

// combineDefault folds one vote's default-vote argument into the phase's
// pending default: NULL keeps it, REJECT beats APPROVE among the votes of a
// phase (U-7: the safe choice for a conflict the man page calls arbitrary).
func combineDefault(pending, arg VoteValue) VoteValue {
	switch {
	case arg == NullVote:
		return pending
	case arg == VoteReject || pending == VoteReject:
		return VoteReject
	default:
		return arg
	}
}
