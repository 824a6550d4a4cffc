package groups

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/internal/service"
)

// NodeID and RingID are the membership engine's, through the service host.
type (
	NodeID = service.NodeID
	RingID = service.RingID
)

// ClientID names a local client connection. The agent assigns it; the
// engine only uses it to address notifications and to find every provider
// of a client that goes away.
type ClientID uint64

// Token is an ha_gs_token_t: a provider or subscriber token. Tokens are
// local to one node (each agent numbers its own, from 1), because a token
// only ever travels between a client and its own agent; the replicated state
// names providers by ProviderID instead.
type Token uint64

// ProviderID identifies a provider cluster-wide: the node it runs on and the
// provider instance number its client chose at join (spec §1.7, §2.4). The
// node number is the membership node id (a uint32, not the C short; see the
// departures list in doc.go).
type ProviderID struct {
	Node     NodeID `json:"n"`
	Instance int16  `json:"i"`
}

func (p ProviderID) String() string {
	return strconv.FormatUint(uint64(p.Node), 10) + "/" + strconv.Itoa(int(p.Instance))
}

// ProtocolType is ha_gs_request_t (spec §5.1).
type ProtocolType int

// The protocol types. Subscription and Merge only appear in delayed-error
// and merge notifications.
const (
	ProtoJoin                  ProtocolType = 1
	ProtoFailureLeave          ProtocolType = 2
	ProtoLeave                 ProtocolType = 3
	ProtoExpel                 ProtocolType = 4
	ProtoStateValueChange      ProtocolType = 5
	ProtoProviderMessage       ProtocolType = 6
	ProtoCastOut               ProtocolType = 7
	ProtoSourceStateReflection ProtocolType = 8
	ProtoGroupAttributeChange  ProtocolType = 9
	ProtoSubscription          ProtocolType = 10
	ProtoMerge                 ProtocolType = 11
)

var protocolNames = map[ProtocolType]string{
	ProtoJoin: "HA_GS_JOIN", ProtoFailureLeave: "HA_GS_FAILURE_LEAVE", ProtoLeave: "HA_GS_LEAVE",
	ProtoExpel: "HA_GS_EXPEL", ProtoStateValueChange: "HA_GS_STATE_VALUE_CHANGE",
	ProtoProviderMessage: "HA_GS_PROVIDER_MESSAGE", ProtoCastOut: "HA_GS_CAST_OUT",
	ProtoSourceStateReflection: "HA_GS_SOURCE_STATE_REFLECTION",
	ProtoGroupAttributeChange:  "HA_GS_GROUP_ATTRIBUTE_CHANGE",
	ProtoSubscription:          "HA_GS_SUBSCRIPTION", ProtoMerge: "HA_GS_MERGE",
}

func (t ProtocolType) String() string {
	if n, ok := protocolNames[t]; ok {
		return n
	}
	return "ProtocolType(" + strconv.Itoa(int(t)) + ")"
}

// isDeparture: the protocol removes its changing providers when approved.
func (t ProtocolType) isDeparture() bool {
	return t == ProtoFailureLeave || t == ProtoLeave || t == ProtoExpel || t == ProtoCastOut
}

// cannotVeto: rule 4 of §6.1 and U-12 — a failure (or a source-group
// departure) cannot be undone by a vote, so missing votes count as APPROVE
// and even a rejection leaves the membership change standing.
func (t ProtocolType) cannotVeto() bool {
	return t == ProtoFailureLeave || t == ProtoCastOut
}

// NotificationType is ha_gs_notification_type_t (spec §5.2).
type NotificationType int

// The notification types.
const (
	NotifyNPhase         NotificationType = 1
	NotifyApproved       NotificationType = 2
	NotifyRejected       NotificationType = 3
	NotifyAnnouncement   NotificationType = 4
	NotifyDelayedError   NotificationType = 5
	NotifyResponsiveness NotificationType = 6
	NotifySubscription   NotificationType = 7
	NotifyMerge          NotificationType = 8
)

var notificationNames = map[NotificationType]string{
	NotifyNPhase: "HA_GS_N_PHASE_NOTIFICATION", NotifyApproved: "HA_GS_APPROVED_NOTIFICATION",
	NotifyRejected: "HA_GS_REJECTED_NOTIFICATION", NotifyAnnouncement: "HA_GS_ANNOUNCEMENT_NOTIFICATION",
	NotifyDelayedError: "HA_GS_DELAYED_ERROR_NOTIFICATION", NotifyResponsiveness: "HA_GS_RESPONSIVENESS_NOTIFICATION",
	NotifySubscription: "HA_GS_SUBSCRIPTION_NOTIFICATION", NotifyMerge: "HA_GS_MERGE_NOTIFICATION",
}

func (t NotificationType) String() string {
	if n, ok := notificationNames[t]; ok {
		return n
	}
	return "NotificationType(" + strconv.Itoa(int(t)) + ")"
}

// SummaryCode is ha_gs_summary_code_t: bit flags (spec §5.3). In n-phase,
// approved and rejected notifications they accumulate over the phases of one
// protocol ("during any previous voting phase", [S2]).
type SummaryCode uint32

// The summary flags.
const (
	ExplicitApprove             SummaryCode = 0x0001
	ExplicitReject              SummaryCode = 0x0002
	DefaultApprove              SummaryCode = 0x0004
	DefaultReject               SummaryCode = 0x0008
	TimeLimitExceeded           SummaryCode = 0x0010
	ProviderFailed              SummaryCode = 0x0020
	ResponsivenessNoResponse    SummaryCode = 0x0040
	ResponsivenessResponse      SummaryCode = 0x0080
	DeactivateUnsuccessful      SummaryCode = 0x0100
	DeactivateTimeLimitExceeded SummaryCode = 0x0200
	GroupDissolved              SummaryCode = 0x0400
)

var summaryNames = []struct {
	c SummaryCode
	n string
}{
	{ExplicitApprove, "HA_GS_EXPLICIT_APPROVE"}, {ExplicitReject, "HA_GS_EXPLICIT_REJECT"},
	{DefaultApprove, "HA_GS_DEFAULT_APPROVE"}, {DefaultReject, "HA_GS_DEFAULT_REJECT"},
	{TimeLimitExceeded, "HA_GS_TIME_LIMIT_EXCEEDED"}, {ProviderFailed, "HA_GS_PROVIDER_FAILED"},
	{ResponsivenessNoResponse, "HA_GS_RESPONSIVENESS_NO_RESPONSE"},
	{ResponsivenessResponse, "HA_GS_RESPONSIVENESS_RESPONSE"},
	{DeactivateUnsuccessful, "HA_GS_DEACTIVATE_UNSUCCESSFUL"},
	{DeactivateTimeLimitExceeded, "HA_GS_DEACTIVATE_TIME_LIMIT_EXCEEDED"},
	{GroupDissolved, "HA_GS_GROUP_DISSOLVED"},
}

// String joins the flag names with "|" ("0" for none).
func (c SummaryCode) String() string {
	if c == 0 {
		return "0"
	}
	var parts []string
	for _, s := range summaryNames {
		if c&s.c != 0 {
			parts = append(parts, s.n)
			c &^= s.c
		}
	}
	if c != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(c)))
	}
	return strings.Join(parts, "|")
}

// VoteValue is ha_gs_vote_value_t (spec §5.4).
type VoteValue int

// The vote values. NullVote is only a default-vote value.
const (
	NullVote     VoteValue = 0
	VoteApprove  VoteValue = 1
	VoteContinue VoteValue = 2
	VoteReject   VoteValue = 3
)

func (v VoteValue) String() string {
	switch v {
	case NullVote:
		return "HA_GS_NULL_VOTE"
	case VoteApprove:
		return "HA_GS_VOTE_APPROVE"
	case VoteContinue:
		return "HA_GS_VOTE_CONTINUE"
	case VoteReject:
		return "HA_GS_VOTE_REJECT"
	}
	return "VoteValue(" + strconv.Itoa(int(v)) + ")"
}

// NumPhases is ha_gs_num_phases_t. The zero value is read as OnePhase so a
// caller that does not care gets the cheapest protocol.
type NumPhases int

// The protocol styles.
const (
	OnePhase NumPhases = 1 // HA_GS_1_PHASE: not voted on, always approved
	NPhase   NumPhases = 2 // HA_GS_N_PHASE: voted on, phases decided by the votes
)

func (n NumPhases) String() string {
	switch n {
	case 0, OnePhase:
		return "HA_GS_1_PHASE"
	case NPhase:
		return "HA_GS_N_PHASE"
	}
	return "NumPhases(" + strconv.Itoa(int(n)) + ")"
}

func (n NumPhases) norm() NumPhases {
	if n == 0 {
		return OnePhase
	}
	return n
}

func (n NumPhases) valid() bool { return n == 0 || n == OnePhase || n == NPhase }

// BatchControl is the batch-control group attribute (spec §5.7, U-8).
type BatchControl int

// The batch controls. "Leaves" are the departures the system queues:
// failure leaves and cast-outs.
const (
	NoBatching              BatchControl = 0
	BatchJoins              BatchControl = 1
	BatchLeaves             BatchControl = 2
	BatchBothJoinsAndLeaves BatchControl = 3
)

// MergeControl is the merge-control group attribute (spec §5.8, U-13).
type MergeControl int

// The merge controls.
const (
	DissolveMerge MergeControl = 0
	DontMerge     MergeControl = 1
)

// LeaveReason is gs_leave_reason of a leave-info entry (spec §2.5, §5.9).
type LeaveReason int

// The leave reasons.
const (
	ProviderLeft        LeaveReason = 1
	ProviderFailedLeave LeaveReason = 2
	ProviderExpelled    LeaveReason = 3
	ProviderSaidGoodbye LeaveReason = 4
	ProviderCastOut     LeaveReason = 5
	ProviderQuit        LeaveReason = 6
)

func (r LeaveReason) String() string {
	switch r {
	case ProviderLeft:
		return "HA_GS_PROVIDER_LEFT"
	case ProviderFailedLeave:
		return "HA_GS_PROVIDER_FAILED_LEAVE"
	case ProviderExpelled:
		return "HA_GS_PROVIDER_EXPELLED"
	case ProviderSaidGoodbye:
		return "HA_GS_PROVIDER_SAID_GOODBYE"
	case ProviderCastOut:
		return "HA_GS_PROVIDER_CAST_OUT"
	case ProviderQuit:
		return "HA_GS_PROVIDER_QUIT"
	}
	return "LeaveReason(" + strconv.Itoa(int(r)) + ")"
}

// LeaveInfo is one gs_leave_info entry, parallel to the changing membership.
type LeaveInfo struct {
	Reason LeaveReason `json:"r"`
	Code   uint32      `json:"c,omitempty"`
}

// SubscriptionControl is ha_gs_subscription_ctrl_t (spec §5.6).
type SubscriptionControl uint32

// The subscription control flags.
const (
	SubscribeState       SubscriptionControl = 0x01
	SubscribeDeltaJoins  SubscriptionControl = 0x02
	SubscribeDeltaLeaves SubscriptionControl = 0x04
	SubscribeDeltasOnly  SubscriptionControl = 0x08
	SubscribeMembership                      = SubscribeDeltaJoins | SubscribeDeltaLeaves
	SubscribeAll                             = SubscribeState | SubscribeMembership
)

// SubscriptionType is ha_gs_subscription_type_t (spec §5.6).
type SubscriptionType uint32

// The subscription notification flags.
const (
	SubscriptionState       SubscriptionType = 0x01
	SubscriptionDeltaJoin   SubscriptionType = 0x02
	SubscriptionDeltaLeave  SubscriptionType = 0x04
	SubscriptionDissolved   SubscriptionType = 0x08
	SubscriptionInitial     SubscriptionType = 0x10
	SubscriptionSpecialData SubscriptionType = 0x80000000
)

// Changed is gs_whats_changed of a proposal: what the protocol changes.
type Changed uint32

// The whats-changed flags.
const (
	ChangedMembership  Changed = 0x01
	ChangedState       Changed = 0x02
	ChangedMessage     Changed = 0x04
	ChangedAttributes  Changed = 0x08
	ChangedSourceState Changed = 0x10
)

// Limits (spec U-5, U-6, U-22). The state and message limits are defaults
// of Config.
const (
	MaxGroupName       = 32
	MaxLocalName       = 64
	MaxTimeLimit       = 86400 // seconds
	DefaultMaxState    = 64 << 10
	DefaultMaxMessage  = 64 << 10
	ClientVersionLevel = 2 // the level of this engine's protocols; 0 in a join means this level
)

// HostGroupName is the host-membership system group (spec U-19): one
// pseudo-provider (node, instance 0) per member of the installed view.
// Read-only: joining it is HA_GS_INVALID_GROUP.
const HostGroupName = "ha_gs_host_membership"

// AdapterGroupPrefix begins the names of the adapter-membership system
// groups (spec U-19): AdapterGroupName(L) = AdapterGroupPrefix + "link" + L
// has one pseudo-provider (node, instance L) per member of the installed
// view whose link L is up as that node itself reports it. Read-only like
// the host group; every name with this prefix is reserved.
const AdapterGroupPrefix = "ha_gs_adapter_membership."

// Attributes is ha_gs_group_attributes_t (spec §2.3). Joiners must present
// attributes equal to the group's in every field except Version and
// ClientVersion.
type Attributes struct {
	Version       int16 `json:"v,omitempty"`
	ClientVersion int16 `json:"cv,omitempty"` // client protocol level; 0 = ClientVersionLevel
	// BatchControl: whether queued joins / failure leaves and cast-outs
	// run as one protocol.
	BatchControl BatchControl `json:"bc,omitempty"`
	// NumPhases: style of join and failure-leave protocols.
	NumPhases NumPhases `json:"np,omitempty"`
	// SourceReflectionNumPhases: style of cast-out and reflection protocols.
	SourceReflectionNumPhases NumPhases `json:"snp,omitempty"`
	// DefaultVote: APPROVE or REJECT; NullVote reads as APPROVE (U-7).
	DefaultVote  VoteValue    `json:"dv,omitempty"`
	MergeControl MergeControl `json:"mc,omitempty"`
	// TimeLimit: seconds per voting phase of join and failure leave; 0 =
	// no limit (spec §9: never invent a default time-out).
	TimeLimit uint32 `json:"tl,omitempty"`
	// SourceProtocolTimeLimit: seconds per phase of cast-out/reflection.
	SourceProtocolTimeLimit uint32 `json:"stl,omitempty"`
	GroupName               string `json:"g"`
	// SourceGroupName: non-empty makes this a target group (§1.8).
	SourceGroupName string `json:"sg,omitempty"`
}

// norm fills the documented zero-value defaults so equal meanings compare
// equal.
func (a Attributes) norm() Attributes {
	a.NumPhases = a.NumPhases.norm()
	a.SourceReflectionNumPhases = a.SourceReflectionNumPhases.norm()
	if a.DefaultVote == NullVote {
		a.DefaultVote = VoteApprove
	}
	if a.ClientVersion == 0 {
		a.ClientVersion = ClientVersionLevel
	}
	return a
}

// sameAs is the joiner rule of §2.3: all fields but the versions match.
func (a Attributes) sameAs(b Attributes) bool {
	a, b = a.norm(), b.norm()
	a.Version, b.Version = 0, 0
	a.ClientVersion, b.ClientVersion = 0, 0
	return a == b
}

// validName is U-5: 1–32 bytes of [A-Za-z0-9_.-].
func validName(n string) error {
	if n == "" {
		return ErrInvalidGroup
	}
	if len(n) > MaxGroupName {
		return ErrNameTooLong
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return ErrInvalidGroup
		}
	}
	return nil
}

// reservedName: system groups and the "_" prefix U-5 reserves for them.
func reservedName(n string) bool {
	return n == HostGroupName || strings.HasPrefix(n, AdapterGroupPrefix) || strings.HasPrefix(n, "_")
}

// validate is U-3.
func (a Attributes) validate() error {
	if err := validName(a.GroupName); err != nil {
		return err
	}
	if a.SourceGroupName != "" {
		if err := validName(a.SourceGroupName); err != nil {
			return ErrBadGroupAttributes
		}
		if a.SourceGroupName == a.GroupName {
			return ErrInvalidSourceGroup
		}
	}
	if !a.NumPhases.valid() || !a.SourceReflectionNumPhases.valid() ||
		a.TimeLimit > MaxTimeLimit || a.SourceProtocolTimeLimit > MaxTimeLimit ||
		(a.DefaultVote != NullVote && a.DefaultVote != VoteApprove && a.DefaultVote != VoteReject) ||
		a.BatchControl < NoBatching || a.BatchControl > BatchBothJoinsAndLeaves ||
		(a.MergeControl != DissolveMerge && a.MergeControl != DontMerge) || a.ClientVersion < 0 {
		return ErrBadGroupAttributes
	}
	return nil
}

// PhaseInfo is ha_gs_phase_info_t.
type PhaseInfo struct {
	// Number: the current phase (n-phase notification) or the number of
	// phases run (approved/rejected; 1 for one-phase protocols).
	Number    int
	NumPhases NumPhases
	TimeLimit uint32 // seconds, 0 = none
}

// Proposal is ha_gs_proposal_t (spec §2.5, U-2). Byte slices are copies
// owned by the receiver. The Has* flags separate "no value" (a NULL pointer
// in C) from an empty value.
type Proposal struct {
	WhatsChanged Changed
	Phase        PhaseInfo
	CurrentState []byte
	// ProposedState: the value the protocol would set; for an approved
	// notification, the value it did set.
	ProposedState    []byte
	HasProposedState bool
	Message          []byte
	HasMessage       bool
	// CurrentMembership is the membership before the protocol, in join
	// order; ChangingMembership the joiners or leavers; ProposedMembership
	// the membership if the protocol is approved.
	CurrentMembership  []ProviderID
	ChangingMembership []ProviderID
	ProposedMembership []ProviderID
	LeaveInfo          []LeaveInfo // parallel to ChangingMembership; nil for joins
	SourceState        []byte
	HasSourceState     bool
	CurrentAttributes  Attributes
	ProposedAttributes *Attributes
}

// Request is a copy of a failing request (gs_failing_request of a delayed
// error). Exactly the field matching Protocol is set.
type Request struct {
	Protocol  ProtocolType
	Join      *JoinArgs
	Leave     *LeaveArgs
	Expel     *ExpelArgs
	State     *StateChangeArgs
	Message   *MessageArgs
	Attrs     *AttributesArgs
	Subscribe *SubscribeArgs
	// BacklevelProviders is gs_backlevel_providers of a failing attribute
	// change (HA_GS_BACKLEVEL_PROVIDERS).
	BacklevelProviders []ProviderID
}

// Notification is one callback for one local client. Type says which of the
// spec's notification blocks it is and which fields are meaningful:
//
//   - NotifyNPhase, NotifyApproved, NotifyRejected: Token (provider),
//     Protocol, Summary, Proposal.
//   - NotifyAnnouncement: Token, Summary, Announcement.
//   - NotifyMerge: Token, Summary (GroupDissolved when this instance lost),
//     Merging (the other instance's providers), MergeState (this instance's
//     state value: never silently lost) and WinnerState.
//   - NotifyDelayedError: Token (the request's token), Protocol, Err,
//     FailingRequest.
//   - NotifySubscription: Token (subscriber), SubscriptionType, State,
//     FullMembership, ChangingMembership.
type Notification struct {
	Client ClientID
	Token  Token
	Type   NotificationType
	Group  string
	// Ring is the installed view the notification was produced in, so a
	// reader can tell which view an answer belongs to.
	Ring     RingID
	Protocol ProtocolType
	Summary  SummaryCode
	Proposal *Proposal

	Announcement []ProviderID

	Merging     []ProviderID
	MergeState  []byte
	WinnerState []byte

	Err            Error
	FailingRequest *Request

	SubscriptionType   SubscriptionType
	State              []byte
	FullMembership     []ProviderID
	ChangingMembership []ProviderID
}

// DeactivationID names one deactivate-script run: the expel protocol and
// the expelled provider.
type DeactivationID struct {
	Group    string
	Seq      uint64
	Provider ProviderID
}

// Deactivation asks the agent to run a provider's deactivate script (spec
// U-9): argv = Script, Group, Instance, the client's pid, ExpelCode and, if
// non-empty, Argument; as the client's uid; killed after TimeLimit (0 = no
// limit). The agent reports the outcome with DeactivateDone.
type Deactivation struct {
	ID        DeactivationID
	Client    ClientID
	Token     Token
	Script    string
	ExpelCode uint32
	Argument  string
	TimeLimit time.Duration
}

// DeactivateStatus is the outcome of a deactivate script.
type DeactivateStatus int

// The script outcomes.
const (
	DeactivateOK        DeactivateStatus = 1 // exit 0, or no script registered
	DeactivateFailed    DeactivateStatus = 2 // any other exit
	DeactivateTimedOut  DeactivateStatus = 3 // killed at its time limit
	deactivatePending   DeactivateStatus = 0
	deactivateNotNeeded DeactivateStatus = -1
)

// Ready is what the engine has for the agent since the last call.
// Notifications are in the order the clients must see them (per group, the
// order of the replicated stream). Deactivations must be started by the
// agent; each ends with exactly one DeactivateDone.
type Ready struct {
	Notifications []Notification
	Deactivations []Deactivation
	// Trace lists the steps of the groups traced with Engine.Trace, in the
	// replicated order: empty unless someone asked.
	Trace []TraceEvent
}

// TraceKind says what a TraceEvent records.
type TraceKind int

// The trace event kinds.
const (
	// TraceNotify: a notification to one provider of the group, on any
	// node (Provider is the recipient, Notification the block it gets,
	// or would get if it ran here).
	TraceNotify TraceKind = 1
	// TraceVote: a vote applied to the running protocol (Provider voted).
	TraceVote TraceKind = 2
	// TraceTimeout: the phase time limit closed phase Phase of protocol
	// Seq.
	TraceTimeout TraceKind = 3
	// TraceDeactivate: a deactivate script's outcome applied (Provider is
	// the expelled provider).
	TraceDeactivate TraceKind = 4
)

// TraceEvent is one step of a traced group as this replica applied it: the
// operator's live protocol trace (`conclave groups watch`). Every replica
// produces the same trace, whether or not the group has a local client.
type TraceEvent struct {
	Kind  TraceKind
	Group string
	Ring  RingID
	// Seq and Phase name the protocol step (vote, time-out, deactivate).
	Seq      uint64
	Phase    int
	Provider ProviderID
	// Notification is set for TraceNotify; Client and Token are zero.
	Notification *Notification
	// Vote, Default, HasState and HasMessage describe a TraceVote.
	Vote       VoteValue
	Default    VoteValue
	HasState   bool
	HasMessage bool
	// Deactivate is a TraceDeactivate's outcome.
	Deactivate DeactivateStatus
}

// JoinArgs is the join request block (ha_gs_join_request_t) plus the
// client's Init-time deactivate script (run if the provider is expelled).
type JoinArgs struct {
	Attributes       Attributes
	Instance         int16
	LocalName        string
	DeactivateScript string
}

// LeaveArgs is ha_gs_leave_request_t.
type LeaveArgs struct {
	NumPhases NumPhases
	TimeLimit uint32 // seconds per phase, 0 = none
	LeaveCode uint32
}

// ExpelArgs is the expel request block (spec §2.2, [P] layout).
type ExpelArgs struct {
	NumPhases NumPhases
	TimeLimit uint32
	List      []ProviderID
	ExpelCode uint32
	// DeactivatePhase: the phase at whose start the scripts run; 0 = none;
	// one-phase expels allow 0 or 1.
	DeactivatePhase int
	// DeactivateTimeLimit: seconds for the script; 0 = TimeLimit.
	DeactivateTimeLimit uint32
	DeactivateArgument  string
}

// StateChangeArgs is ha_gs_state_change_request_t.
type StateChangeArgs struct {
	NumPhases NumPhases
	TimeLimit uint32
	NewState  []byte
}

// MessageArgs is ha_gs_message_request_t.
type MessageArgs struct {
	NumPhases NumPhases
	TimeLimit uint32
	Message   []byte
}

// AttributesArgs is ha_gs_change_attributes_t.
type AttributesArgs struct {
	NumPhases  NumPhases
	TimeLimit  uint32
	Attributes Attributes
}

// SubscribeArgs is ha_gs_subscribe_request_t.
type SubscribeArgs struct {
	Control SubscriptionControl
	Group   string
}

// VoteArgs is the argument list of ha_gs_vote. HasState/HasMessage stand
// for the non-NULL pointers.
type VoteArgs struct {
	Value      VoteValue
	State      []byte
	HasState   bool
	Message    []byte
	HasMessage bool
	Default    VoteValue
}
