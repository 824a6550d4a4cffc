package gs

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Token is an ha_gs_token_t: it names one provider (from Join) or one
// subscription (from Subscribe) of this client, and comes back in every
// notification about it. Tokens are opaque, non-zero and die with the
// membership they name (an approved leave, a rejected join, a dissolved
// subscription) or with the client.
type Token uint64

// ProviderID is ha_gs_provider_t: a provider is the node its client runs
// on and the instance number the client chose at Join. The node number is
// the Conclave node id (a uint32, not the C short).
type ProviderID struct {
	Node     uint32
	Instance int16
}

// String prints "node/instance", as the CLI does.
func (p ProviderID) String() string {
	return strconv.FormatUint(uint64(p.Node), 10) + "/" + strconv.Itoa(int(p.Instance))
}

// ProtocolType is ha_gs_request_t: what a protocol changes (spec §5.1).
type ProtocolType int

// The protocol types. Subscription appears only in delayed errors of
// Subscribe, Merge only in merge notifications.
const (
	ProtoJoin                  ProtocolType = 1  // HA_GS_JOIN
	ProtoFailureLeave          ProtocolType = 2  // HA_GS_FAILURE_LEAVE
	ProtoLeave                 ProtocolType = 3  // HA_GS_LEAVE
	ProtoExpel                 ProtocolType = 4  // HA_GS_EXPEL
	ProtoStateValueChange      ProtocolType = 5  // HA_GS_STATE_VALUE_CHANGE
	ProtoProviderMessage       ProtocolType = 6  // HA_GS_PROVIDER_MESSAGE
	ProtoCastOut               ProtocolType = 7  // HA_GS_CAST_OUT
	ProtoSourceStateReflection ProtocolType = 8  // HA_GS_SOURCE_STATE_REFLECTION
	ProtoGroupAttributeChange  ProtocolType = 9  // HA_GS_GROUP_ATTRIBUTE_CHANGE
	ProtoSubscription          ProtocolType = 10 // HA_GS_SUBSCRIPTION
	ProtoMerge                 ProtocolType = 11 // HA_GS_MERGE
)

var protocolNames = map[ProtocolType]string{
	ProtoJoin: "HA_GS_JOIN", ProtoFailureLeave: "HA_GS_FAILURE_LEAVE", ProtoLeave: "HA_GS_LEAVE",
	ProtoExpel: "HA_GS_EXPEL", ProtoStateValueChange: "HA_GS_STATE_VALUE_CHANGE",
	ProtoProviderMessage: "HA_GS_PROVIDER_MESSAGE", ProtoCastOut: "HA_GS_CAST_OUT",
	ProtoSourceStateReflection: "HA_GS_SOURCE_STATE_REFLECTION",
	ProtoGroupAttributeChange:  "HA_GS_GROUP_ATTRIBUTE_CHANGE",
	ProtoSubscription:          "HA_GS_SUBSCRIPTION", ProtoMerge: "HA_GS_MERGE",
}

// String returns the C name.
func (t ProtocolType) String() string {
	if n, ok := protocolNames[t]; ok {
		return n
	}
	return "ProtocolType(" + strconv.Itoa(int(t)) + ")"
}

// NotificationType is ha_gs_notification_type_t: which notification block
// a callback receives (spec §5.2).
type NotificationType int

// The notification types.
const (
	NPhaseNotificationType         NotificationType = 1 // HA_GS_N_PHASE_NOTIFICATION
	ApprovedNotificationType       NotificationType = 2 // HA_GS_APPROVED_NOTIFICATION
	RejectedNotificationType       NotificationType = 3 // HA_GS_REJECTED_NOTIFICATION
	AnnouncementNotificationType   NotificationType = 4 // HA_GS_ANNOUNCEMENT_NOTIFICATION
	DelayedErrorNotificationType   NotificationType = 5 // HA_GS_DELAYED_ERROR_NOTIFICATION
	ResponsivenessNotificationType NotificationType = 6 // HA_GS_RESPONSIVENESS_NOTIFICATION
	SubscriptionNotificationType   NotificationType = 7 // HA_GS_SUBSCRIPTION_NOTIFICATION
	MergeNotificationType          NotificationType = 8 // HA_GS_MERGE_NOTIFICATION
)

var notificationNames = map[NotificationType]string{
	NPhaseNotificationType: "HA_GS_N_PHASE_NOTIFICATION", ApprovedNotificationType: "HA_GS_APPROVED_NOTIFICATION",
	RejectedNotificationType: "HA_GS_REJECTED_NOTIFICATION", AnnouncementNotificationType: "HA_GS_ANNOUNCEMENT_NOTIFICATION",
	DelayedErrorNotificationType: "HA_GS_DELAYED_ERROR_NOTIFICATION", ResponsivenessNotificationType: "HA_GS_RESPONSIVENESS_NOTIFICATION",
	SubscriptionNotificationType: "HA_GS_SUBSCRIPTION_NOTIFICATION", MergeNotificationType: "HA_GS_MERGE_NOTIFICATION",
}

// String returns the C name.
func (t NotificationType) String() string {
	if n, ok := notificationNames[t]; ok {
		return n
	}
	return "NotificationType(" + strconv.Itoa(int(t)) + ")"
}

// SummaryCode is ha_gs_summary_code_t: bit flags that say how a protocol
// went (spec §5.3). In n-phase, approved and rejected notifications they
// accumulate over the phases of one protocol; in announcements and merge
// notifications they say what is announced.
type SummaryCode uint32

// The summary flags.
const (
	ExplicitApprove             SummaryCode = 0x0001 // HA_GS_EXPLICIT_APPROVE: every final-phase vote was an explicit APPROVE
	ExplicitReject              SummaryCode = 0x0002 // HA_GS_EXPLICIT_REJECT
	DefaultApprove              SummaryCode = 0x0004 // HA_GS_DEFAULT_APPROVE: a default APPROVE was recorded
	DefaultReject               SummaryCode = 0x0008 // HA_GS_DEFAULT_REJECT: a default REJECT was recorded
	TimeLimitExceeded           SummaryCode = 0x0010 // HA_GS_TIME_LIMIT_EXCEEDED: a provider did not vote in time
	ProviderFailed              SummaryCode = 0x0020 // HA_GS_PROVIDER_FAILED: a provider failed during the protocol
	ResponsivenessNoResponse    SummaryCode = 0x0040 // HA_GS_RESPONSIVENESS_NO_RESPONSE (announcement)
	ResponsivenessResponse      SummaryCode = 0x0080 // HA_GS_RESPONSIVENESS_RESPONSE (announcement)
	DeactivateUnsuccessful      SummaryCode = 0x0100 // HA_GS_DEACTIVATE_UNSUCCESSFUL
	DeactivateTimeLimitExceeded SummaryCode = 0x0200 // HA_GS_DEACTIVATE_TIME_LIMIT_EXCEEDED
	GroupDissolved              SummaryCode = 0x0400 // HA_GS_GROUP_DISSOLVED (merge)
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

// String joins the C names of the flags set with "|", "0" for none, and
// shows unknown bits in hex.
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

// The vote values. VoteApprove, VoteContinue and VoteReject are votes;
// NullVote, VoteApprove and VoteReject are default votes (NullVote keeps
// the default as it was).
const (
	NullVote     VoteValue = 0 // HA_GS_NULL_VOTE
	VoteApprove  VoteValue = 1 // HA_GS_VOTE_APPROVE
	VoteContinue VoteValue = 2 // HA_GS_VOTE_CONTINUE
	VoteReject   VoteValue = 3 // HA_GS_VOTE_REJECT
)

// String returns the C name.
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

// NumPhases is ha_gs_num_phases_t: whether a protocol is voted on. The
// zero value reads as OnePhase.
type NumPhases int

// The protocol styles.
const (
	OnePhase NumPhases = 1 // HA_GS_1_PHASE: not voted on, always approved
	NPhase   NumPhases = 2 // HA_GS_N_PHASE: voted on; the votes decide how many phases run
)

// String returns the C name.
func (n NumPhases) String() string {
	switch n {
	case 0, OnePhase:
		return "HA_GS_1_PHASE"
	case NPhase:
		return "HA_GS_N_PHASE"
	}
	return "NumPhases(" + strconv.Itoa(int(n)) + ")"
}

// BatchControl is the batch-control group attribute (spec §5.7): whether
// queued joins, and queued failure leaves and cast-outs, run as one
// protocol or one at a time.
type BatchControl int

// The batch controls.
const (
	NoBatching              BatchControl = 0 // HA_GS_NO_BATCHING
	BatchJoins              BatchControl = 1 // HA_GS_BATCH_JOINS
	BatchLeaves             BatchControl = 2 // HA_GS_BATCH_LEAVES
	BatchBothJoinsAndLeaves BatchControl = 3 // HA_GS_BATCH_BOTH_JOINS_AND_LEAVES
)

// String returns the C name.
func (b BatchControl) String() string {
	switch b {
	case NoBatching:
		return "HA_GS_NO_BATCHING"
	case BatchJoins:
		return "HA_GS_BATCH_JOINS"
	case BatchLeaves:
		return "HA_GS_BATCH_LEAVES"
	case BatchBothJoinsAndLeaves:
		return "HA_GS_BATCH_BOTH_JOINS_AND_LEAVES"
	}
	return "BatchControl(" + strconv.Itoa(int(b)) + ")"
}

// MergeControl is the merge-control group attribute (spec §5.8): what
// happens to a group that ran in two partitions when they meet again.
type MergeControl int

// The merge controls.
const (
	// DissolveMerge (the default): the instance with fewer providers is
	// dissolved; its providers get a merge notification and must re-join.
	DissolveMerge MergeControl = 0 // HA_GS_DISSOLVE_MERGE
	// DontMerge: both sides are told about the other. (Conclave still
	// dissolves the losing instance; see the engine's departures.)
	DontMerge MergeControl = 1 // HA_GS_DONT_MERGE
)

// String returns the C name.
func (m MergeControl) String() string {
	switch m {
	case DissolveMerge:
		return "HA_GS_DISSOLVE_MERGE"
	case DontMerge:
		return "HA_GS_DONT_MERGE"
	}
	return "MergeControl(" + strconv.Itoa(int(m)) + ")"
}

// LeaveReason is gs_leave_reason of a leave-info entry: why a provider
// leaves (spec §2.5, §5.9).
type LeaveReason int

// The leave reasons.
const (
	ProviderLeft        LeaveReason = 1 // HA_GS_PROVIDER_LEFT: Leave
	ProviderFailedLeave LeaveReason = 2 // HA_GS_PROVIDER_FAILED_LEAVE: process, connection or node failed
	ProviderExpelled    LeaveReason = 3 // HA_GS_PROVIDER_EXPELLED: Expel
	ProviderSaidGoodbye LeaveReason = 4 // HA_GS_PROVIDER_SAID_GOODBYE: Goodbye
	ProviderCastOut     LeaveReason = 5 // HA_GS_PROVIDER_CAST_OUT: its source-group provider left
	ProviderQuit        LeaveReason = 6 // HA_GS_PROVIDER_QUIT: Quit or a clean exit
)

// String returns the C name.
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

// LeaveInfo is one gs_leave_info entry: the reason, and the application's
// code (LeaveRequest.LeaveCode, ExpelRequest.ExpelCode).
type LeaveInfo struct {
	Reason LeaveReason
	Code   uint32
}

// SubscriptionControl is ha_gs_subscription_ctrl_t: what a subscriber
// wants to hear about (spec §5.6). Flags may be OR-ed.
type SubscriptionControl uint32

// The subscription control flags.
const (
	SubscribeState       SubscriptionControl = 0x01                                       // HA_GS_SUBSCRIBE_STATE
	SubscribeDeltaJoins  SubscriptionControl = 0x02                                       // HA_GS_SUBSCRIBE_DELTA_JOINS
	SubscribeDeltaLeaves SubscriptionControl = 0x04                                       // HA_GS_SUBSCRIBE_DELTA_LEAVES
	SubscribeDeltasOnly  SubscriptionControl = 0x08                                       // HA_GS_SUBSCRIBE_DELTAS_ONLY: no full membership
	SubscribeMembership                      = SubscribeDeltaJoins | SubscribeDeltaLeaves // HA_GS_SUBSCRIBE_MEMBERSHIP
	SubscribeAll                             = SubscribeState | SubscribeMembership       // HA_GS_SUBSCRIBE_ALL
)

// SubscriptionType is ha_gs_subscription_type_t: what a subscription
// notification carries (spec §5.6). Flags may be OR-ed.
type SubscriptionType uint32

// The subscription notification flags.
const (
	SubscriptionState       SubscriptionType = 0x01       // HA_GS_SUBSCRIPTION_STATE: StateValue is set
	SubscriptionDeltaJoin   SubscriptionType = 0x02       // HA_GS_SUBSCRIPTION_DELTA_JOIN: ChangingMembership joined
	SubscriptionDeltaLeave  SubscriptionType = 0x04       // HA_GS_SUBSCRIPTION_DELTA_LEAVE: ChangingMembership left
	SubscriptionDissolved   SubscriptionType = 0x08       // HA_GS_SUBSCRIPTION_DISSOLVED: the group is gone, so is the subscription
	SubscriptionInitial     SubscriptionType = 0x10       // HA_GS_SUBSCRIPTION_INITIAL: the first snapshot
	SubscriptionSpecialData SubscriptionType = 0x80000000 // HA_GS_SUBSCRIPTION_SPECIAL_DATA (never set: no adapter groups)
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

// Limits the agent enforces (spec U-5, U-6, U-22). The client checks the
// byte limits itself too, so that an oversized value never reaches the
// socket.
const (
	MaxGroupName     = 32       // bytes of [A-Za-z0-9_.-]; a leading "_" is reserved
	MaxLocalName     = 64       // bytes
	MaxTimeLimit     = 86400    // seconds; 0 means no limit
	MaxStateValue    = 64 << 10 // bytes of a state value
	MaxMessageLength = 64 << 10 // bytes of a provider message
	// ClientVersionLevel is the protocol level of this library. A provider
	// whose Attributes.ClientVersion is below it is back-level.
	ClientVersionLevel = 2
)

// HostGroupName is the host-membership system group: one provider
// (node, instance 0) per member of the installed view, state value = the
// ring id. Subscribe to it; joining it is ErrInvalidGroup.
const HostGroupName = "ha_gs_host_membership"

// AdapterGroupPrefix begins the names of the adapter-membership system
// groups, one per link: AdapterGroupPrefix + "link" + the link number (as
// AdapterInfo reports it), e.g. "ha_gs_adapter_membership.link0". Such a
// group has one provider (node, instance = link number) per member of the
// installed view whose link is up as that node sees it: it can reach at
// least one peer over the link (a link no other node configures counts as
// up). The state value is empty. Subscribe to it; joining any name with
// this prefix is ErrInvalidGroup. Subscribing while no node has the link up
// fails with ErrUnknownGroup; a subscription made earlier survives the
// group going empty and reports the adapters coming back.
const AdapterGroupPrefix = "ha_gs_adapter_membership."

// Attributes is ha_gs_group_attributes_t (spec §2.3). A joiner's
// attributes must equal the group's in every field but Version and
// ClientVersion, else ErrBadGroupAttributes. Zero values read as: one
// phase, default vote APPROVE, this library's client version.
type Attributes struct {
	Version       int16 // gs_version: free for the application
	ClientVersion int16 // gs_client_version; 0 = ClientVersionLevel
	// BatchControl: whether queued joins / failure leaves run as one
	// protocol (gs_batch_control).
	BatchControl BatchControl
	// NumPhases: style of join and failure-leave protocols.
	NumPhases NumPhases
	// SourceReflectionNumPhases: style of cast-out and source-state
	// reflection protocols.
	SourceReflectionNumPhases NumPhases
	// DefaultVote: the vote recorded for a provider that does not vote in
	// time or fails (VoteApprove or VoteReject; NullVote reads as APPROVE).
	DefaultVote  VoteValue
	MergeControl MergeControl
	// TimeLimit: seconds per voting phase of joins and failure leaves; 0 =
	// no limit.
	TimeLimit uint32
	// SourceProtocolTimeLimit: seconds per phase of cast-outs and
	// reflections; 0 = no limit.
	SourceProtocolTimeLimit uint32
	GroupName               string // 1–32 bytes of [A-Za-z0-9_.-]
	// SourceGroupName makes this a target group of that source group
	// (fixed when the group is created).
	SourceGroupName string
}

// PhaseInfo is ha_gs_phase_info_t.
type PhaseInfo struct {
	// Number is the current phase (n-phase notification), or the number of
	// phases run (approved, rejected; 1 for one-phase protocols).
	Number    int
	NumPhases NumPhases
	TimeLimit uint32 // seconds for this phase, 0 = no limit
}

// Proposal is ha_gs_proposal_t: what a protocol proposes, as of the
// notification carrying it (spec §2.5). Byte slices belong to the callee.
// The Has* flags separate "no value" (a NULL pointer in C) from an empty
// value.
type Proposal struct {
	WhatsChanged Changed
	Phase        PhaseInfo
	// CurrentState is the state value before the protocol.
	CurrentState []byte
	// ProposedState is the value the protocol would set (n-phase), or has
	// set (approved).
	ProposedState    []byte
	HasProposedState bool
	// Message is the provider message of a PROVIDER_MESSAGE protocol, or
	// one attached to a vote (shown once, in the next notification).
	Message    []byte
	HasMessage bool
	// CurrentMembership is the membership before the protocol, in join
	// order; ChangingMembership the joiners or leavers; ProposedMembership
	// (a Conclave addition) the membership if the protocol is approved.
	CurrentMembership  []ProviderID
	ChangingMembership []ProviderID
	ProposedMembership []ProviderID
	// LeaveInfo is parallel to ChangingMembership; nil for joins.
	LeaveInfo []LeaveInfo
	// SourceState is gs_source_state_value: the source group's state
	// (cast-out, source-state reflection).
	SourceState    []byte
	HasSourceState bool
	// CurrentAttributes are the group's; ProposedAttributes the new ones of
	// an attribute change (nil otherwise).
	CurrentAttributes  Attributes
	ProposedAttributes *Attributes
}

// RingID names the installed view a notification was produced in: the
// representative node and the ring sequence. It prints as Corosync does,
// "1.1c".
type RingID struct {
	Rep uint32
	Seq uint64
}

// String prints "<rep hex>.<seq hex>".
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.Rep, r.Seq) }

// Notification is implemented by every notification block: each starts
// with its type (gs_notification_type), so one routine may serve several
// callbacks, as in C.
type Notification interface {
	NotificationType() NotificationType
}

// ProtocolNotification is the block of the n-phase, approved and rejected
// callbacks: ha_gs_n_phase_notification_t, ha_gs_approved_notification_t
// and ha_gs_rejected_notification_t have the same fields (spec §4.1–4.3).
type ProtocolNotification struct {
	Type     NotificationType // NPhaseNotificationType, ApprovedNotificationType or RejectedNotificationType
	Token    Token            // gs_provider_token
	Group    string           // the group's name (a Conclave addition)
	Ring     RingID           // the view it was produced in (a Conclave addition)
	Protocol ProtocolType     // gs_protocol_type
	Summary  SummaryCode      // gs_summary_code
	Proposal *Proposal        // gs_proposal
}

// NPhaseNotification is ha_gs_n_phase_notification_t: a voting phase has
// begun; answer with Vote within the phase's time limit.
type NPhaseNotification = ProtocolNotification

// ApprovedNotification is ha_gs_approved_notification_t (alias
// ha_gs_protocol_approved_notification_t).
type ApprovedNotification = ProtocolNotification

// RejectedNotification is ha_gs_rejected_notification_t.
type RejectedNotification = ProtocolNotification

// NotificationType implements Notification.
func (n *ProtocolNotification) NotificationType() NotificationType { return n.Type }

// AnnouncementNotification is ha_gs_announcement_notification_t: an
// abnormal condition that changes nothing — providers that did not vote in
// time (TimeLimitExceeded) or failed a responsiveness check
// (ResponsivenessNoResponse, then ResponsivenessResponse when they answer
// again).
type AnnouncementNotification struct {
	Type         NotificationType // AnnouncementNotificationType
	Token        Token            // gs_provider_token
	Group        string
	Ring         RingID
	Summary      SummaryCode  // gs_summary_code
	Announcement []ProviderID // gs_announcement: the providers concerned
}

// NotificationType implements Notification.
func (n *AnnouncementNotification) NotificationType() NotificationType { return n.Type }

// MergeNotification is ha_gs_merge_notification_t: two partitions that
// both ran the group met again. With Summary GroupDissolved this
// provider's instance lost: its membership is over (the token is dead) and
// it may join again. MergeState keeps the lost instance's state value, so
// it is never silently lost.
type MergeNotification struct {
	Type             NotificationType // MergeNotificationType
	Token            Token            // gs_provider_token
	Group            string
	Ring             RingID
	Summary          SummaryCode  // GroupDissolved, or 0 for the surviving side of a DontMerge group
	MergingProviders []ProviderID // gs_merging_providers: the other instance's providers
	MergeState       []byte       // this instance's state value
	WinnerState      []byte       // the surviving instance's state value
}

// NotificationType implements Notification.
func (n *MergeNotification) NotificationType() NotificationType { return n.Type }

// DelayedErrorNotification is ha_gs_delayed_error_notification_t: a request
// that was accepted failed later (a collision decided in the total order,
// an unknown group, attributes that do not match).
type DelayedErrorNotification struct {
	Type           NotificationType // DelayedErrorNotificationType
	RequestToken   Token            // gs_request_token
	Group          string
	Ring           RingID
	Protocol       ProtocolType // gs_protocol_type of the failing request
	ReturnCode     Error        // gs_delayed_return_code; errors.Is works on it
	FailingRequest *Request     // gs_failing_request: a copy of the request
}

// NotificationType implements Notification.
func (n *DelayedErrorNotification) NotificationType() NotificationType { return n.Type }

// ResponsivenessNotification is ha_gs_responsiveness_notification_t: a
// responsiveness check. The callback answers it by returning CallbackOK.
type ResponsivenessNotification struct {
	Type        NotificationType // ResponsivenessNotificationType
	Information Responsiveness   // gs_responsiveness_information: as given to Init
}

// NotificationType implements Notification.
func (n *ResponsivenessNotification) NotificationType() NotificationType { return n.Type }

// SubscriptionNotification is ha_gs_subscription_notification_t: an
// approved change of a subscribed group (spec §4.8, U-18). The first one
// (SubscriptionInitial) is a snapshot.
type SubscriptionNotification struct {
	Type             NotificationType // SubscriptionNotificationType
	Token            Token            // gs_subscriber_token
	Group            string
	Ring             RingID
	SubscriptionType SubscriptionType // gs_subscription_type
	// StateValue is set when SubscriptionType has SubscriptionState.
	StateValue []byte
	// FullMembership: the providers after the change (membership
	// subscribed, not SubscribeDeltasOnly; always in the initial snapshot).
	FullMembership []ProviderID
	// ChangingMembership: the joiners (SubscriptionDeltaJoin) and leavers
	// (SubscriptionDeltaLeave).
	ChangingMembership []ProviderID
}

// NotificationType implements Notification.
func (n *SubscriptionNotification) NotificationType() NotificationType { return n.Type }

// ResponsivenessType selects the responsiveness check (spec §2.6, U-15).
type ResponsivenessType int

// The responsiveness checks.
const (
	// NoResponsiveness: no checks (the default).
	NoResponsiveness ResponsivenessType = 0 // HA_GS_NO_RESPONSIVENESS
	// PingResponsiveness: every Interval the agent sends a check, which
	// Dispatch hands to the responsiveness callback; a client that does not
	// answer within ResponseTimeLimit (because it does not dispatch, or its
	// callback returns CallbackNotOK) is announced to its groups as not
	// responding.
	PingResponsiveness ResponsivenessType = 1 // HA_GS_PING_RESPONSIVENESS
	// CounterResponsiveness: the client increments Counter; at every check
	// the library, on its own goroutine, answers whether it moved since the
	// last check. The callback is not called.
	CounterResponsiveness ResponsivenessType = 2 // HA_GS_COUNTER_RESPONSIVENESS
)

// Responsiveness is ha_gs_responsiveness_t. Durations replace the C
// seconds; the agent enforces at least 100 ms.
type Responsiveness struct {
	Type ResponsivenessType
	// Interval between checks (gs_responsiveness_interval).
	Interval time.Duration
	// ResponseTimeLimit to answer one (gs_responsiveness_response_time_limit);
	// 0 = Interval.
	ResponseTimeLimit time.Duration
	// Counter is gs_counter_location, for CounterResponsiveness.
	Counter *atomic.Uint64
}

// CallbackRC is ha_gs_callback_rc_t, the responsiveness callback's answer.
type CallbackRC int

// The responsiveness answers.
const (
	CallbackOK    CallbackRC = 0 // HA_GS_CALLBACK_OK
	CallbackNotOK CallbackRC = 1 // HA_GS_CALLBACK_NOT_OK: counts as a missed check
)

// Request is gs_failing_request: a copy of a failed request, in a delayed
// error. The field matching Protocol is set (Subscribe for
// ProtoSubscription); callbacks are not copied.
type Request struct {
	Protocol         ProtocolType
	Join             *JoinRequest
	Leave            *LeaveRequest
	Expel            *ExpelRequest
	StateChange      *StateChangeRequest
	Message          *MessageRequest
	ChangeAttributes *ChangeAttributesRequest
	Subscribe        *SubscribeRequest
	// BacklevelProviders is gs_backlevel_providers of a failed attribute
	// change (ErrBacklevelProviders).
	BacklevelProviders []ProviderID
}

// ProviderCallbacks are the callbacks of a join request. NPhase, Approved
// and Rejected are required (ErrBadParameter otherwise); a nil
// Announcement or Merge drops those notifications. They run inside
// Dispatch; the notifications of one group never run concurrently.
type ProviderCallbacks struct {
	NPhase       func(c *Client, n *NPhaseNotification)       // gs_n_phase_protocol_callback
	Approved     func(c *Client, n *ApprovedNotification)     // gs_protocol_approved_callback
	Rejected     func(c *Client, n *RejectedNotification)     // gs_protocol_rejected_callback
	Announcement func(c *Client, n *AnnouncementNotification) // gs_announcement_callback
	Merge        func(c *Client, n *MergeNotification)        // gs_merge_callback
}

// JoinRequest is ha_gs_join_request_t: join Attributes.GroupName as
// provider Instance of this node, creating the group if it does not exist.
type JoinRequest struct {
	Attributes Attributes // gs_group_attributes
	Instance   int16      // gs_provider_instance: ≥ 0, unique per group and node
	LocalName  string     // gs_provider_local_name: up to MaxLocalName bytes
	Callbacks  ProviderCallbacks
}

// LeaveRequest is ha_gs_leave_request_t.
type LeaveRequest struct {
	NumPhases NumPhases // gs_num_phases
	TimeLimit uint32    // gs_time_limit: seconds per phase, 0 = none
	LeaveCode uint32    // gs_leave_code: passed to the group in LeaveInfo
}

// ExpelRequest is the expel request block (spec §2.2).
type ExpelRequest struct {
	NumPhases NumPhases
	TimeLimit uint32
	ExpelList []ProviderID // gs_expel_list: members, no duplicates
	ExpelCode uint32       // gs_expel_code: passed in LeaveInfo and to the scripts
	// DeactivatePhase is the phase at whose start the expelled providers'
	// deactivate scripts run; 0 = none; one-phase expels allow 0 or 1.
	DeactivatePhase int
	// DeactivateTimeLimit is seconds for each script; 0 = TimeLimit.
	DeactivateTimeLimit uint32
	// DeactivateArgument is the scripts' last argument, if not empty.
	DeactivateArgument string
}

// StateChangeRequest is ha_gs_state_change_request_t.
type StateChangeRequest struct {
	NumPhases NumPhases
	TimeLimit uint32
	NewState  []byte // gs_new_state: non-nil, up to MaxStateValue bytes
}

// MessageRequest is ha_gs_message_request_t.
type MessageRequest struct {
	NumPhases NumPhases
	TimeLimit uint32
	Message   []byte // gs_message: non-nil, up to MaxMessageLength bytes
}

// ChangeAttributesRequest is ha_gs_change_attributes_t. GroupName and
// SourceGroupName cannot change (an empty GroupName means the group's).
type ChangeAttributesRequest struct {
	NumPhases  NumPhases
	TimeLimit  uint32
	Attributes Attributes
}

// SubscribeRequest is ha_gs_subscribe_request_t.
type SubscribeRequest struct {
	Control  SubscriptionControl                          // gs_subscription_control
	Group    string                                       // gs_subscription_group
	Callback func(c *Client, n *SubscriptionNotification) // gs_subscription_callback: required
}

// Adapter is ha_gs_adapter_info: what AdapterInfo finds for an address.
type Adapter struct {
	// NodeNumber is the node whose configured link has the address.
	NodeNumber uint32
	// InterfaceName is the operating system's interface holding the
	// address when it is on this host, else "link<N>".
	InterfaceName string
	// Link is the Conclave link number (ringN_addr) of the address.
	Link int
	// Up says whether this node sees that link up (always true for its own).
	Up bool
}
