package gs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/groups"
)

// The client and the agent's engine must agree on every number: the wire
// carries them as plain integers.
func TestValuesMatchEngine(t *testing.T) {
	for e := OK; e <= ErrGroupDissolved+1; e++ {
		if e.Error() != groups.Error(e).Error() && e <= ErrGroupDissolved {
			t.Errorf("error %d: %s here, %s in the engine", e, e, groups.Error(e))
		}
	}
	if _, ok := errorNames[ErrGroupDissolved+1]; ok {
		t.Error("more error codes than the engine")
	}
	pairs := []struct {
		name      string
		got, want any
	}{
		{"ProtoJoin", int(ProtoJoin), int(groups.ProtoJoin)},
		{"ProtoFailureLeave", int(ProtoFailureLeave), int(groups.ProtoFailureLeave)},
		{"ProtoLeave", int(ProtoLeave), int(groups.ProtoLeave)},
		{"ProtoExpel", int(ProtoExpel), int(groups.ProtoExpel)},
		{"ProtoStateValueChange", int(ProtoStateValueChange), int(groups.ProtoStateValueChange)},
		{"ProtoProviderMessage", int(ProtoProviderMessage), int(groups.ProtoProviderMessage)},
		{"ProtoCastOut", int(ProtoCastOut), int(groups.ProtoCastOut)},
		{"ProtoSourceStateReflection", int(ProtoSourceStateReflection), int(groups.ProtoSourceStateReflection)},
		{"ProtoGroupAttributeChange", int(ProtoGroupAttributeChange), int(groups.ProtoGroupAttributeChange)},
		{"ProtoSubscription", int(ProtoSubscription), int(groups.ProtoSubscription)},
		{"ProtoMerge", int(ProtoMerge), int(groups.ProtoMerge)},
		{"NPhaseNotificationType", int(NPhaseNotificationType), int(groups.NotifyNPhase)},
		{"ApprovedNotificationType", int(ApprovedNotificationType), int(groups.NotifyApproved)},
		{"RejectedNotificationType", int(RejectedNotificationType), int(groups.NotifyRejected)},
		{"AnnouncementNotificationType", int(AnnouncementNotificationType), int(groups.NotifyAnnouncement)},
		{"DelayedErrorNotificationType", int(DelayedErrorNotificationType), int(groups.NotifyDelayedError)},
		{"ResponsivenessNotificationType", int(ResponsivenessNotificationType), int(groups.NotifyResponsiveness)},
		{"SubscriptionNotificationType", int(SubscriptionNotificationType), int(groups.NotifySubscription)},
		{"MergeNotificationType", int(MergeNotificationType), int(groups.NotifyMerge)},
		{"NullVote", int(NullVote), int(groups.NullVote)},
		{"VoteApprove", int(VoteApprove), int(groups.VoteApprove)},
		{"VoteContinue", int(VoteContinue), int(groups.VoteContinue)},
		{"VoteReject", int(VoteReject), int(groups.VoteReject)},
		{"OnePhase", int(OnePhase), int(groups.OnePhase)},
		{"NPhase", int(NPhase), int(groups.NPhase)},
		{"NoBatching", int(NoBatching), int(groups.NoBatching)},
		{"BatchJoins", int(BatchJoins), int(groups.BatchJoins)},
		{"BatchLeaves", int(BatchLeaves), int(groups.BatchLeaves)},
		{"BatchBothJoinsAndLeaves", int(BatchBothJoinsAndLeaves), int(groups.BatchBothJoinsAndLeaves)},
		{"DissolveMerge", int(DissolveMerge), int(groups.DissolveMerge)},
		{"DontMerge", int(DontMerge), int(groups.DontMerge)},
		{"ProviderLeft", int(ProviderLeft), int(groups.ProviderLeft)},
		{"ProviderFailedLeave", int(ProviderFailedLeave), int(groups.ProviderFailedLeave)},
		{"ProviderExpelled", int(ProviderExpelled), int(groups.ProviderExpelled)},
		{"ProviderSaidGoodbye", int(ProviderSaidGoodbye), int(groups.ProviderSaidGoodbye)},
		{"ProviderCastOut", int(ProviderCastOut), int(groups.ProviderCastOut)},
		{"ProviderQuit", int(ProviderQuit), int(groups.ProviderQuit)},
		{"SubscribeState", uint32(SubscribeState), uint32(groups.SubscribeState)},
		{"SubscribeDeltaJoins", uint32(SubscribeDeltaJoins), uint32(groups.SubscribeDeltaJoins)},
		{"SubscribeDeltaLeaves", uint32(SubscribeDeltaLeaves), uint32(groups.SubscribeDeltaLeaves)},
		{"SubscribeDeltasOnly", uint32(SubscribeDeltasOnly), uint32(groups.SubscribeDeltasOnly)},
		{"SubscribeMembership", uint32(SubscribeMembership), uint32(groups.SubscribeMembership)},
		{"SubscribeAll", uint32(SubscribeAll), uint32(groups.SubscribeAll)},
		{"SubscriptionState", uint32(SubscriptionState), uint32(groups.SubscriptionState)},
		{"SubscriptionDeltaJoin", uint32(SubscriptionDeltaJoin), uint32(groups.SubscriptionDeltaJoin)},
		{"SubscriptionDeltaLeave", uint32(SubscriptionDeltaLeave), uint32(groups.SubscriptionDeltaLeave)},
		{"SubscriptionDissolved", uint32(SubscriptionDissolved), uint32(groups.SubscriptionDissolved)},
		{"SubscriptionInitial", uint32(SubscriptionInitial), uint32(groups.SubscriptionInitial)},
		{"SubscriptionSpecialData", uint32(SubscriptionSpecialData), uint32(groups.SubscriptionSpecialData)},
		{"ChangedMembership", uint32(ChangedMembership), uint32(groups.ChangedMembership)},
		{"ChangedState", uint32(ChangedState), uint32(groups.ChangedState)},
		{"ChangedMessage", uint32(ChangedMessage), uint32(groups.ChangedMessage)},
		{"ChangedAttributes", uint32(ChangedAttributes), uint32(groups.ChangedAttributes)},
		{"ChangedSourceState", uint32(ChangedSourceState), uint32(groups.ChangedSourceState)},
		{"MaxGroupName", MaxGroupName, groups.MaxGroupName},
		{"MaxLocalName", MaxLocalName, groups.MaxLocalName},
		{"MaxTimeLimit", MaxTimeLimit, groups.MaxTimeLimit},
		{"MaxStateValue", MaxStateValue, groups.DefaultMaxState},
		{"MaxMessageLength", MaxMessageLength, groups.DefaultMaxMessage},
		{"ClientVersionLevel", ClientVersionLevel, groups.ClientVersionLevel},
		{"HostGroupName", HostGroupName, groups.HostGroupName},
		{"AdapterGroupPrefix", AdapterGroupPrefix, groups.AdapterGroupPrefix},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %v, the engine says %v", p.name, p.got, p.want)
		}
	}
	for bit := SummaryCode(1); bit != 0; bit <<= 1 {
		if got, want := bit.String(), groups.SummaryCode(bit).String(); got != want {
			t.Errorf("summary %#x: %s, the engine says %s", uint32(bit), got, want)
		}
	}
	if got := (ExplicitReject | DefaultReject | TimeLimitExceeded).String(); got != "HA_GS_EXPLICIT_REJECT|HA_GS_DEFAULT_REJECT|HA_GS_TIME_LIMIT_EXCEEDED" {
		t.Errorf("summary string %s", got)
	}
	for i := 0; i <= 12; i++ {
		if got, want := ProtocolType(i).String(), groups.ProtocolType(i).String(); got != want {
			t.Errorf("protocol %d: %s vs %s", i, got, want)
		}
		if got, want := NotificationType(i).String(), groups.NotificationType(i).String(); got != want {
			t.Errorf("notification %d: %s vs %s", i, got, want)
		}
		if got, want := VoteValue(i).String(), groups.VoteValue(i).String(); got != want {
			t.Errorf("vote %d: %s vs %s", i, got, want)
		}
		if got, want := LeaveReason(i).String(), groups.LeaveReason(i).String(); got != want {
			t.Errorf("leave reason %d: %s vs %s", i, got, want)
		}
		if got, want := NumPhases(i).String(), groups.NumPhases(i).String(); got != want {
			t.Errorf("num phases %d: %s vs %s", i, got, want)
		}
	}
}

// The public structs carry every field of the engine's blocks.
func TestStructsMatchEngine(t *testing.T) {
	for _, c := range []struct{ ours, engine any }{
		{Attributes{}, groups.Attributes{}},
		{Proposal{}, groups.Proposal{}},
		{PhaseInfo{}, groups.PhaseInfo{}},
		{LeaveInfo{}, groups.LeaveInfo{}},
		{ProviderID{}, groups.ProviderID{}},
	} {
		o, e := reflect.TypeOf(c.ours), reflect.TypeOf(c.engine)
		for i := range e.NumField() {
			if _, ok := o.FieldByName(e.Field(i).Name); !ok {
				t.Errorf("%s lacks the engine's field %s", o.Name(), e.Field(i).Name)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	wrapped := fmt.Errorf("%w: lost", ErrNotOK)
	if !errors.Is(wrapped, ErrNotOK) || errors.Is(wrapped, ErrCollide) {
		t.Error("errors.Is on a wrapped Error")
	}
	if Code(nil) != OK || Code(wrapped) != ErrNotOK || Code(ErrCollide) != ErrCollide || Code(errors.New("x")) != ErrNotOK {
		t.Error("Code")
	}
	if fromCode(0) != nil || fromCode(7) != ErrCollide {
		t.Error("fromCode")
	}
	if ErrCollide.Error() != "HA_GS_COLLIDE" || Error(99).Error() != "gs.Error(99)" || fmt.Sprintf("%#v", ErrNoInit) != "HA_GS_NO_INIT" {
		t.Error("error strings")
	}
}

func TestConvert(t *testing.T) {
	at := Attributes{Version: 3, ClientVersion: 2, BatchControl: BatchJoins, NumPhases: NPhase, SourceReflectionNumPhases: OnePhase,
		DefaultVote: VoteReject, MergeControl: DontMerge, TimeLimit: 30, SourceProtocolTimeLimit: 5, GroupName: "t", SourceGroupName: "s"}
	if got := attrsFromPB(attrsToPB(at)); got != at {
		t.Errorf("attributes round trip: %+v", got)
	}
	ids := []ProviderID{{1, 2}, {3, 0}}
	if got := idsFromPB(idsToPB(ids)); !reflect.DeepEqual(got, ids) || idsFromPB(nil) != nil {
		t.Errorf("ids round trip: %v", got)
	}
	pa := attrsToPB(at)
	n := &clientpb.GSNotification{Type: int32(ApprovedNotificationType), Token: 4, Group: "t", RingId: &clientpb.RingID{Rep: 1, Seq: 0x1c},
		Protocol: int32(ProtoLeave), Summary: uint32(ExplicitApprove),
		Proposal: &clientpb.GSProposal{WhatsChanged: uint32(ChangedMembership | ChangedState), Phase: &clientpb.GSPhaseInfo{Number: 2, NumPhases: 2, TimeLimit: 9},
			CurrentState: nil, HasProposedState: true, ProposedState: nil, CurrentMembership: idsToPB(ids),
			ChangingMembership: idsToPB(ids[1:]), ProposedMembership: idsToPB(ids[:1]),
			LeaveInfo: []*clientpb.GSLeaveInfo{{Reason: int32(ProviderLeft), Code: 8}}, CurrentAttributes: pa, ProposedAttributes: pa}}
	got, ok := notificationFromPB(n).(*ProtocolNotification)
	if !ok {
		t.Fatalf("approved notification converted to %T", notificationFromPB(n))
	}
	want := &ProtocolNotification{Type: ApprovedNotificationType, Token: 4, Group: "t", Ring: RingID{1, 0x1c}, Protocol: ProtoLeave,
		Summary: ExplicitApprove, Proposal: &Proposal{WhatsChanged: ChangedMembership | ChangedState, Phase: PhaseInfo{2, NPhase, 9},
			CurrentState: []byte{}, ProposedState: []byte{}, HasProposedState: true, CurrentMembership: ids,
			ChangingMembership: ids[1:], ProposedMembership: ids[:1], LeaveInfo: []LeaveInfo{{ProviderLeft, 8}},
			CurrentAttributes: at, ProposedAttributes: &at}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("approved:\n got %+v %+v\nwant %+v %+v", got, got.Proposal, want, want.Proposal)
	}
	if got.Ring.String() != "1.1c" || got.Proposal.Message != nil || got.Proposal.HasMessage {
		t.Errorf("ring %s, message %v", got.Ring, got.Proposal.Message)
	}
	de := notificationFromPB(&clientpb.GSNotification{Type: int32(DelayedErrorNotificationType), Token: 5, Protocol: int32(ProtoSubscription),
		Error: int32(ErrUnknownGroup), FailingRequest: &clientpb.GSFailingRequest{Protocol: int32(ProtoSubscription),
			Subscribe: &clientpb.GSSubscribe{Control: uint32(SubscribeAll), Group: "nope"}}}).(*DelayedErrorNotification)
	if !errors.Is(de.ReturnCode, ErrUnknownGroup) || de.RequestToken != 5 || de.FailingRequest.Subscribe.Group != "nope" ||
		de.FailingRequest.Subscribe.Control != SubscribeAll || de.FailingRequest.Join != nil {
		t.Errorf("delayed error: %+v %+v", de, de.FailingRequest)
	}
	sub := notificationFromPB(&clientpb.GSNotification{Type: int32(SubscriptionNotificationType), Token: 6,
		SubscriptionType: uint32(SubscriptionState | SubscriptionInitial), FullMembership: idsToPB(ids)}).(*SubscriptionNotification)
	if sub.StateValue == nil || len(sub.StateValue) != 0 || !reflect.DeepEqual(sub.FullMembership, ids) || sub.ChangingMembership != nil {
		t.Errorf("subscription: %+v", sub)
	}
	m := notificationFromPB(&clientpb.GSNotification{Type: int32(MergeNotificationType), Summary: uint32(GroupDissolved),
		Merging: idsToPB(ids), MergeState: []byte("old")}).(*MergeNotification)
	if string(m.MergeState) != "old" || m.WinnerState == nil || len(m.MergingProviders) != 2 {
		t.Errorf("merge: %+v", m)
	}
	an := notificationFromPB(&clientpb.GSNotification{Type: int32(AnnouncementNotificationType), Summary: uint32(TimeLimitExceeded),
		Announcement: idsToPB(ids[:1])}).(*AnnouncementNotification)
	if an.NotificationType() != AnnouncementNotificationType || an.Summary != TimeLimitExceeded || len(an.Announcement) != 1 {
		t.Errorf("announcement: %+v", an)
	}
	if notificationFromPB(&clientpb.GSNotification{Type: 99}) != nil {
		t.Error("an unknown notification type converted")
	}
	r := responsivenessToPB(Responsiveness{Type: PingResponsiveness, Interval: 1500 * 1e6, ResponseTimeLimit: -1})
	if r.Type != 1 || r.IntervalMs != 1500 || r.ResponseTimeLimitMs != 0 {
		t.Errorf("responsiveness: %v", r)
	}
}

func TestAdapterFor(t *testing.T) {
	st := &clientpb.StatusReply{NodeId: 1, Nodes: []*clientpb.Node{
		{NodeId: 1, Addrs: []string{"10.0.0.1:5405", ""}},
		{NodeId: 2, Addrs: []string{"10.0.0.2:5405", "[fd00::2]:5405"}},
	}, Links: []*clientpb.Link{{Node: 2, Link: 0, Up: true}, {Node: 2, Link: 1, Up: false}}}
	local := func(netip.Addr) string { return "eth0" }
	for _, c := range []struct {
		ip   string
		want Adapter
		err  error
	}{
		{"10.0.0.1", Adapter{NodeNumber: 1, InterfaceName: "eth0", Link: 0, Up: true}, nil},
		{"10.0.0.2", Adapter{NodeNumber: 2, InterfaceName: "link0", Link: 0, Up: true}, nil},
		{"fd00::2", Adapter{NodeNumber: 2, InterfaceName: "link1", Link: 1, Up: false}, nil},
		{"10.9.9.9", Adapter{}, ErrBadParameter},
	} {
		got, err := adapterFor(st, netip.MustParseAddr(c.ip), local)
		if got != c.want || !errors.Is(err, c.err) && err != c.err {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.ip, got, err, c.want, c.err)
		}
	}
}

// newLocalClient is a Client with no agent behind it, to test the
// dispatch queue.
func newLocalClient(t *testing.T, cb Callbacks) *Client {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	return &Client{cb: cb, busy: map[string]bool{}, changed: make(chan struct{}), providers: map[Token]*provider{},
		subs: map[Token]func(*Client, *SubscriptionNotification){}, pr: pr, pw: pw, cancel: func() {}}
}

func TestDispatchQueue(t *testing.T) {
	var seen []string
	c := newLocalClient(t, Callbacks{DelayedError: func(_ *Client, n *DelayedErrorNotification) {
		seen = append(seen, "error "+n.ReturnCode.Error())
	}})
	me := ProviderID{Node: 1, Instance: 1}
	c.providers[1] = &provider{id: me, cb: ProviderCallbacks{
		NPhase:   func(_ *Client, n *NPhaseNotification) { seen = append(seen, "nphase") },
		Approved: func(_ *Client, n *ApprovedNotification) { seen = append(seen, "approved "+n.Protocol.String()) },
		Rejected: func(_ *Client, n *RejectedNotification) { seen = append(seen, "rejected") },
	}}
	fd, err := c.Fd()
	if err != nil {
		t.Fatal(err)
	}
	readable := func() bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(p, 0)
		return n == 1
	}
	if readable() {
		t.Fatal("Fd readable with nothing queued")
	}
	if err := c.Dispatch(cs.DispatchOneNonblocking); !errors.Is(err, cs.ErrTryAgain) {
		t.Errorf("one-nonblocking with nothing queued: %v", err)
	}
	if err := c.Dispatch(9); !errors.Is(err, ErrBadParameter) {
		t.Errorf("dispatch 9: %v", err)
	}
	leave := &clientpb.GSProposal{ChangingMembership: idsToPB([]ProviderID{me})}
	c.enqueue(item{group: "g", n: &clientpb.GSNotification{Type: int32(NPhaseNotificationType), Token: 1, Group: "g", Protocol: int32(ProtoLeave), Proposal: leave}})
	c.enqueue(item{group: "g", n: &clientpb.GSNotification{Type: int32(ApprovedNotificationType), Token: 1, Group: "g", Protocol: int32(ProtoLeave), Proposal: leave}})
	c.enqueue(item{group: "g", n: &clientpb.GSNotification{Type: int32(ApprovedNotificationType), Token: 1, Group: "g", Protocol: int32(ProtoLeave), Proposal: leave}})
	c.enqueue(item{group: "h", n: &clientpb.GSNotification{Type: int32(DelayedErrorNotificationType), Token: 2, Group: "h", Protocol: int32(ProtoJoin), Error: int32(ErrBadGroupAttributes)}})
	if !readable() {
		t.Fatal("Fd not readable with notifications queued")
	}
	if err := c.Dispatch(cs.DispatchOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Dispatch(NonBlocking); err != nil {
		t.Fatal(err)
	}
	// The second approved is for a token the leave killed: dropped.
	want := []string{"nphase", "approved HA_GS_LEAVE", "error HA_GS_BAD_GROUP_ATTRIBUTES"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("dispatched %q, want %q", seen, want)
	}
	if readable() {
		t.Error("Fd readable after everything was dispatched")
	}
	// A lost agent: ErrNotOK once the queue is drained.
	c.mu.Lock()
	c.err = errors.New("gone")
	c.mu.Unlock()
	if err := c.Dispatch(Blocking); !errors.Is(err, ErrNotOK) {
		t.Errorf("blocking dispatch on a lost connection: %v", err)
	}
}

func TestInitChecks(t *testing.T) {
	dir := t.TempDir()
	sock := WithSocket(dir + "/none.sock")
	if _, err := Init(Callbacks{}, sock); !errors.Is(err, ErrBadParameter) {
		t.Errorf("no delayed-error callback: %v", err)
	}
	de := func(*Client, *DelayedErrorNotification) {}
	if _, err := Init(Callbacks{DelayedError: de}, sock, WithResponsiveness(Responsiveness{Type: PingResponsiveness, Interval: 1e9})); !errors.Is(err, ErrBadParameter) {
		t.Errorf("ping without a callback: %v", err)
	}
	if _, err := Init(Callbacks{DelayedError: de}, sock, WithResponsiveness(Responsiveness{Type: CounterResponsiveness, Interval: 1e9})); !errors.Is(err, ErrBadParameter) {
		t.Errorf("counter without a counter: %v", err)
	}
	if _, err := Init(Callbacks{DelayedError: de}, sock); !errors.Is(err, ErrNotOK) {
		t.Errorf("no agent: %v", err)
	}
	var c *Client
	if _, err := c.Join(JoinRequest{Callbacks: ProviderCallbacks{NPhase: func(*Client, *NPhaseNotification) {},
		Approved: func(*Client, *ApprovedNotification) {}, Rejected: func(*Client, *RejectedNotification) {}}}); !errors.Is(err, ErrNoInit) {
		t.Errorf("join on a nil client: %v", err)
	}
	if err := c.Dispatch(NonBlocking); !errors.Is(err, ErrNoInit) {
		t.Errorf("dispatch on a nil client: %v", err)
	}
}
