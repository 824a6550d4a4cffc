package groupsim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/conclave/conclave/internal/groups"
)

func short(s string) string { return strings.ReplaceAll(s, "HA_GS_", "") }

// IDs renders a membership list in order: [1/1 2/1].
func IDs(ps []groups.ProviderID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Render prints a notification in one line:
//
//	nphase|approved|rejected PROTOCOL ph=K [1-phase] [limit=S] sum=CODES
//	    [ch=[changing] [li=REASON[:code]...]] mem=[current][->[proposed]]
//	    state="current"[->"proposed"] [msg="m"] [src="source state"] [attrs=...]
//	announce CODES [providers]
//	merge sum=CODES other=[providers] state="this instance's" winner-state="…"
//	error ERROR PROTOCOL [backlevel=[providers]]
//	sub TYPES [state="v"] [full=[...]] [ch=[...]]
//
// mem shows the membership before the protocol and, when the protocol
// would change it, the membership it proposes; state likewise.
func Render(n groups.Notification) string {
	var b strings.Builder
	switch n.Type {
	case groups.NotifyNPhase, groups.NotifyApproved, groups.NotifyRejected:
		kind := map[groups.NotificationType]string{groups.NotifyNPhase: "nphase",
			groups.NotifyApproved: "approved", groups.NotifyRejected: "rejected"}[n.Type]
		p := n.Proposal
		fmt.Fprintf(&b, "%s %s ph=%d", kind, short(n.Protocol.String()), p.Phase.Number)
		if p.Phase.NumPhases != groups.NPhase {
			b.WriteString(" 1-phase")
		}
		if n.Type == groups.NotifyNPhase && p.Phase.TimeLimit != 0 {
			fmt.Fprintf(&b, " limit=%d", p.Phase.TimeLimit)
		}
		fmt.Fprintf(&b, " sum=%s", short(n.Summary.String()))
		if len(p.ChangingMembership) > 0 {
			fmt.Fprintf(&b, " ch=%s", IDs(p.ChangingMembership))
			var li []string
			for _, l := range p.LeaveInfo {
				s := short(l.Reason.String())
				if l.Code != 0 {
					s += ":" + strconv.FormatUint(uint64(l.Code), 10)
				}
				li = append(li, s)
			}
			if len(li) > 0 {
				fmt.Fprintf(&b, " li=%s", strings.Join(li, ","))
			}
		}
		fmt.Fprintf(&b, " mem=%s", IDs(p.CurrentMembership))
		if IDs(p.ProposedMembership) != IDs(p.CurrentMembership) {
			fmt.Fprintf(&b, "->%s", IDs(p.ProposedMembership))
		}
		fmt.Fprintf(&b, " state=%q", p.CurrentState)
		if p.HasProposedState {
			fmt.Fprintf(&b, "->%q", p.ProposedState)
		}
		if p.HasMessage {
			fmt.Fprintf(&b, " msg=%q", p.Message)
		}
		if p.HasSourceState {
			fmt.Fprintf(&b, " src=%q", p.SourceState)
		}
		if p.ProposedAttributes != nil {
			fmt.Fprintf(&b, " attrs=%s->%s", renderAttrs(p.CurrentAttributes), renderAttrs(*p.ProposedAttributes))
		}
	case groups.NotifyAnnouncement:
		fmt.Fprintf(&b, "announce %s %s", short(n.Summary.String()), IDs(n.Announcement))
	case groups.NotifyMerge:
		fmt.Fprintf(&b, "merge sum=%s other=%s state=%q winner-state=%q", short(n.Summary.String()),
			IDs(n.Merging), n.MergeState, n.WinnerState)
	case groups.NotifyDelayedError:
		fmt.Fprintf(&b, "error %s %s", short(n.Err.Error()), short(n.Protocol.String()))
		if r := n.FailingRequest; r != nil && len(r.BacklevelProviders) > 0 {
			fmt.Fprintf(&b, " backlevel=%s", IDs(r.BacklevelProviders))
		}
	case groups.NotifySubscription:
		var ts []string
		for _, f := range []struct {
			t groups.SubscriptionType
			n string
		}{{groups.SubscriptionInitial, "INITIAL"}, {groups.SubscriptionState, "STATE"},
			{groups.SubscriptionDeltaJoin, "DELTA_JOIN"}, {groups.SubscriptionDeltaLeave, "DELTA_LEAVE"},
			{groups.SubscriptionDissolved, "DISSOLVED"}} {
			if n.SubscriptionType&f.t != 0 {
				ts = append(ts, f.n)
			}
		}
		fmt.Fprintf(&b, "sub %s", strings.Join(ts, "|"))
		if n.SubscriptionType&groups.SubscriptionState != 0 {
			fmt.Fprintf(&b, " state=%q", n.State)
		}
		if n.FullMembership != nil {
			fmt.Fprintf(&b, " full=%s", IDs(n.FullMembership))
		}
		if n.ChangingMembership != nil {
			fmt.Fprintf(&b, " ch=%s", IDs(n.ChangingMembership))
		}
	default:
		fmt.Fprintf(&b, "%s summary=%s", n.Type, short(n.Summary.String()))
	}
	return b.String()
}

// renderAttrs prints the attributes that are not at their defaults.
func renderAttrs(a groups.Attributes) string {
	var s []string
	if a.NumPhases == groups.NPhase {
		s = append(s, "n-phase")
	} else {
		s = append(s, "1-phase")
	}
	if a.TimeLimit != 0 {
		s = append(s, fmt.Sprintf("limit=%d", a.TimeLimit))
	}
	if a.DefaultVote == groups.VoteReject {
		s = append(s, "dv=reject")
	}
	switch a.BatchControl {
	case groups.BatchJoins:
		s = append(s, "batch=joins")
	case groups.BatchLeaves:
		s = append(s, "batch=leaves")
	case groups.BatchBothJoinsAndLeaves:
		s = append(s, "batch=both")
	}
	if a.MergeControl == groups.DontMerge {
		s = append(s, "merge=dont")
	}
	if a.SourceGroupName != "" {
		s = append(s, "source="+a.SourceGroupName)
		if a.SourceReflectionNumPhases == groups.NPhase {
			s = append(s, "srcphases=n")
		}
		if a.SourceProtocolTimeLimit != 0 {
			s = append(s, fmt.Sprintf("srclimit=%d", a.SourceProtocolTimeLimit))
		}
	}
	return strings.Join(s, ",")
}

// renderGroup prints one node's replica of a group (without the
// node-local subscriber count, so equal replicas print alike).
func renderGroup(gi groups.GroupInfo) string {
	var b strings.Builder
	var ids []groups.ProviderID
	for _, p := range gi.Providers {
		ids = append(ids, p.ID)
	}
	fmt.Fprintf(&b, "%s members=%s state=%q", renderAttrs(gi.Attributes), IDs(ids), gi.State)
	if p := gi.Protocol; p != nil {
		fmt.Fprintf(&b, " running=%s#%d ph=%d", short(p.Type.String()), p.Seq, p.Phase)
		if p.NumPhases != groups.NPhase {
			b.WriteString(" 1-phase")
		}
		if len(p.Changing) > 0 {
			fmt.Fprintf(&b, " ch=%s", IDs(p.Changing))
		}
		if p.NumPhases == groups.NPhase {
			fmt.Fprintf(&b, " voters=%s voted=%s", IDs(p.Voters), IDs(p.Voted))
		}
	} else {
		b.WriteString(" idle")
	}
	if gi.Queued > 0 {
		fmt.Fprintf(&b, " queued=%d", gi.Queued)
	}
	return b.String()
}
