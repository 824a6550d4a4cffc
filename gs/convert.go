package gs

import (
	"time"

	"github.com/conclave/conclave/api/clientpb"
)

// Conversions between the wire messages (api/clientpb) and this package's
// types. The numbers pass through unchanged: both sides use the agent's
// values.

func idsToPB(ids []ProviderID) []*clientpb.GSProviderID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]*clientpb.GSProviderID, len(ids))
	for i, id := range ids {
		out[i] = &clientpb.GSProviderID{Node: id.Node, Instance: int32(id.Instance)}
	}
	return out
}

func idsFromPB(ids []*clientpb.GSProviderID) []ProviderID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]ProviderID, len(ids))
	for i, id := range ids {
		out[i] = idFromPB(id)
	}
	return out
}

func idFromPB(id *clientpb.GSProviderID) ProviderID {
	if id == nil {
		return ProviderID{}
	}
	return ProviderID{Node: id.Node, Instance: int16(id.Instance)}
}

func attrsToPB(a Attributes) *clientpb.GSAttributes {
	return &clientpb.GSAttributes{
		Version: int32(a.Version), ClientVersion: int32(a.ClientVersion), BatchControl: int32(a.BatchControl),
		NumPhases: int32(a.NumPhases), SourceReflectionNumPhases: int32(a.SourceReflectionNumPhases),
		DefaultVote: int32(a.DefaultVote), MergeControl: int32(a.MergeControl), TimeLimit: a.TimeLimit,
		SourceProtocolTimeLimit: a.SourceProtocolTimeLimit, GroupName: a.GroupName, SourceGroupName: a.SourceGroupName,
	}
}

func attrsFromPB(a *clientpb.GSAttributes) Attributes {
	if a == nil {
		return Attributes{}
	}
	return Attributes{
		Version: int16(a.Version), ClientVersion: int16(a.ClientVersion), BatchControl: BatchControl(a.BatchControl),
		NumPhases: NumPhases(a.NumPhases), SourceReflectionNumPhases: NumPhases(a.SourceReflectionNumPhases),
		DefaultVote: VoteValue(a.DefaultVote), MergeControl: MergeControl(a.MergeControl), TimeLimit: a.TimeLimit,
		SourceProtocolTimeLimit: a.SourceProtocolTimeLimit, GroupName: a.GroupName, SourceGroupName: a.SourceGroupName,
	}
}

func ringFromPB(r *clientpb.RingID) RingID {
	if r == nil {
		return RingID{}
	}
	return RingID{Rep: r.Rep, Seq: r.Seq}
}

func proposalFromPB(p *clientpb.GSProposal) *Proposal {
	if p == nil {
		return nil
	}
	out := &Proposal{
		WhatsChanged:       Changed(p.WhatsChanged),
		CurrentState:       nonNil(p.CurrentState),
		ProposedState:      p.ProposedState,
		HasProposedState:   p.HasProposedState,
		Message:            p.Message,
		HasMessage:         p.HasMessage,
		CurrentMembership:  idsFromPB(p.CurrentMembership),
		ChangingMembership: idsFromPB(p.ChangingMembership),
		ProposedMembership: idsFromPB(p.ProposedMembership),
		SourceState:        p.SourceState,
		HasSourceState:     p.HasSourceState,
		CurrentAttributes:  attrsFromPB(p.CurrentAttributes),
	}
	if out.HasProposedState {
		out.ProposedState = nonNil(out.ProposedState)
	}
	if out.HasMessage {
		out.Message = nonNil(out.Message)
	}
	if out.HasSourceState {
		out.SourceState = nonNil(out.SourceState)
	}
	if ph := p.Phase; ph != nil {
		out.Phase = PhaseInfo{Number: int(ph.Number), NumPhases: NumPhases(ph.NumPhases), TimeLimit: ph.TimeLimit}
	}
	for _, l := range p.LeaveInfo {
		out.LeaveInfo = append(out.LeaveInfo, LeaveInfo{Reason: LeaveReason(l.Reason), Code: l.Code})
	}
	if p.ProposedAttributes != nil {
		a := attrsFromPB(p.ProposedAttributes)
		out.ProposedAttributes = &a
	}
	return out
}

// nonNil keeps "a value that is empty" distinct from "no value" after the
// wire, which does not tell them apart.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func requestFromPB(r *clientpb.GSFailingRequest) *Request {
	if r == nil {
		return nil
	}
	out := &Request{Protocol: ProtocolType(r.Protocol), BacklevelProviders: idsFromPB(r.BacklevelProviders)}
	if j := r.Join; j != nil {
		out.Join = &JoinRequest{Attributes: attrsFromPB(j.Attributes), Instance: int16(j.Instance), LocalName: j.LocalName}
	}
	if l := r.Leave; l != nil {
		out.Leave = &LeaveRequest{NumPhases: NumPhases(l.NumPhases), TimeLimit: l.TimeLimit, LeaveCode: l.LeaveCode}
	}
	if e := r.Expel; e != nil {
		out.Expel = &ExpelRequest{NumPhases: NumPhases(e.NumPhases), TimeLimit: e.TimeLimit, ExpelList: idsFromPB(e.List),
			ExpelCode: e.ExpelCode, DeactivatePhase: int(e.DeactivatePhase), DeactivateTimeLimit: e.DeactivateTimeLimit,
			DeactivateArgument: e.DeactivateArgument}
	}
	if s := r.State; s != nil {
		out.StateChange = &StateChangeRequest{NumPhases: NumPhases(s.NumPhases), TimeLimit: s.TimeLimit, NewState: nonNil(s.NewState)}
	}
	if m := r.Message; m != nil {
		out.Message = &MessageRequest{NumPhases: NumPhases(m.NumPhases), TimeLimit: m.TimeLimit, Message: nonNil(m.Message)}
	}
	if a := r.Attributes; a != nil {
		out.ChangeAttributes = &ChangeAttributesRequest{NumPhases: NumPhases(a.NumPhases), TimeLimit: a.TimeLimit,
			Attributes: attrsFromPB(a.Attributes)}
	}
	if s := r.Subscribe; s != nil {
		out.Subscribe = &SubscribeRequest{Control: SubscriptionControl(s.Control), Group: s.Group}
	}
	return out
}

// notificationFromPB builds the notification block n's type names; nil for
// a type this library does not know (a newer agent).
func notificationFromPB(n *clientpb.GSNotification) Notification {
	typ := NotificationType(n.Type)
	ring := ringFromPB(n.RingId)
	switch typ {
	case NPhaseNotificationType, ApprovedNotificationType, RejectedNotificationType:
		return &ProtocolNotification{Type: typ, Token: Token(n.Token), Group: n.Group, Ring: ring,
			Protocol: ProtocolType(n.Protocol), Summary: SummaryCode(n.Summary), Proposal: proposalFromPB(n.Proposal)}
	case AnnouncementNotificationType:
		return &AnnouncementNotification{Type: typ, Token: Token(n.Token), Group: n.Group, Ring: ring,
			Summary: SummaryCode(n.Summary), Announcement: idsFromPB(n.Announcement)}
	case MergeNotificationType:
		return &MergeNotification{Type: typ, Token: Token(n.Token), Group: n.Group, Ring: ring,
			Summary: SummaryCode(n.Summary), MergingProviders: idsFromPB(n.Merging),
			MergeState: nonNil(n.MergeState), WinnerState: nonNil(n.WinnerState)}
	case DelayedErrorNotificationType:
		return &DelayedErrorNotification{Type: typ, RequestToken: Token(n.Token), Group: n.Group, Ring: ring,
			Protocol: ProtocolType(n.Protocol), ReturnCode: Error(n.Error), FailingRequest: requestFromPB(n.FailingRequest)}
	case SubscriptionNotificationType:
		s := &SubscriptionNotification{Type: typ, Token: Token(n.Token), Group: n.Group, Ring: ring,
			SubscriptionType:   SubscriptionType(n.SubscriptionType),
			FullMembership:     idsFromPB(n.FullMembership),
			ChangingMembership: idsFromPB(n.ChangingMembership)}
		if s.SubscriptionType&SubscriptionState != 0 {
			s.StateValue = nonNil(n.State)
		}
		return s
	}
	return nil
}

func responsivenessToPB(r Responsiveness) *clientpb.GSResponsiveness {
	return &clientpb.GSResponsiveness{Type: int32(r.Type), IntervalMs: durationMs(r.Interval),
		ResponseTimeLimitMs: durationMs(r.ResponseTimeLimit)}
}

// durationMs is d in whole milliseconds, clamped to the field.
func durationMs(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > int64(^uint32(0)):
		return ^uint32(0)
	}
	return uint32(ms)
}
