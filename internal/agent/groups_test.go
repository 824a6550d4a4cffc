package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/gs"
	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/ipc"
)

// gsProbe is a GS client in a test: it records what its callbacks see and
// votes as told.
type gsProbe struct {
	t    *testing.T
	c    *gs.Client
	mu   sync.Mutex
	seen []string
	vote gs.VoteValue // answer to n-phase notifications; 0 = do not vote
	errs []*gs.DelayedErrorNotification
	ann  []*gs.AnnouncementNotification
}

func (p *gsProbe) add(s string) {
	p.mu.Lock()
	p.seen = append(p.seen, s)
	p.mu.Unlock()
}

func (p *gsProbe) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func (p *gsProbe) callbacks() gs.ProviderCallbacks {
	return gs.ProviderCallbacks{
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			p.add(fmt.Sprintf("nphase %s %d", n.Protocol, n.Proposal.Phase.Number))
			p.mu.Lock()
			v := p.vote
			p.mu.Unlock()
			if v != 0 {
				if err := c.Vote(n.Token, v, nil, nil, gs.NullVote); err != nil {
					p.t.Errorf("vote: %v", err)
				}
			}
		},
		Approved: func(c *gs.Client, n *gs.ApprovedNotification) {
			l := fmt.Sprintf("approved %s %v state=%q %s", n.Protocol, n.Proposal.ProposedMembership, n.Proposal.ProposedState, n.Summary)
			for _, li := range n.Proposal.LeaveInfo {
				l += fmt.Sprintf(" %s/%d", li.Reason, li.Code)
			}
			p.add(l)
		},
		Rejected: func(c *gs.Client, n *gs.RejectedNotification) {
			p.add(fmt.Sprintf("rejected %s %s", n.Protocol, n.Summary))
		},
		Announcement: func(c *gs.Client, n *gs.AnnouncementNotification) {
			p.mu.Lock()
			p.ann = append(p.ann, n)
			p.mu.Unlock()
			p.add(fmt.Sprintf("announcement %s %v", n.Summary, n.Announcement))
		},
	}
}

func newProbe(t *testing.T, sock string, opts ...gs.Option) *gsProbe {
	t.Helper()
	p := &gsProbe{t: t}
	cb := gs.Callbacks{DelayedError: func(c *gs.Client, n *gs.DelayedErrorNotification) {
		p.mu.Lock()
		p.errs = append(p.errs, n)
		p.mu.Unlock()
		p.add(fmt.Sprintf("delayed %s %v", n.Protocol, n.ReturnCode))
	}, Responsiveness: func(*gs.Client, *gs.ResponsivenessNotification) gs.CallbackRC { return gs.CallbackOK }}
	c, err := gs.Init(cb, append([]gs.Option{gs.WithSocket(sock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; c.Quit() })
	return p
}

// waitFor polls cond with a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (p *gsProbe) has(s string) bool {
	return slices.ContainsFunc(p.lines(), func(l string) bool { return strings.HasPrefix(l, s) })
}

func showGroup(t *testing.T, sock, name string) (*clientpb.GSGroup, error) {
	t.Helper()
	conn, err := ipc.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return clientpb.NewGroupServicesClient(conn).ShowGroup(context.Background(), &clientpb.GSShowRequest{Name: name})
}

// TestGroupsSession runs the GSAPI through the agent: an n-phase join
// voted by both providers, a state change, the operators' calls and the
// trace, and malformed requests that must change nothing.
func TestGroupsSession(t *testing.T) {
	agents := startAgents(t, 50, 2, nil)
	waitInstalled(t, agents, 2)

	// A watcher on node 2 before the group exists.
	conn, err := ipc.Dial(context.Background(), agents[1].sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watch, err := clientpb.NewGroupServicesClient(conn).WatchGroup(wctx, &clientpb.GSWatchRequest{Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := watch.Recv(); err != nil || tr.Kind != clientpb.GSTrace_SNAPSHOT || tr.Group != nil {
		t.Fatalf("first trace: %v, %v", tr, err)
	}

	a := newProbe(t, agents[0].sock)
	b := newProbe(t, agents[1].sock)
	a.vote, b.vote = gs.VoteApprove, gs.VoteApprove
	attrs := gs.Attributes{GroupName: "g", NumPhases: gs.NPhase, TimeLimit: 30, DefaultVote: gs.VoteReject}
	ta, err := a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, LocalName: "a", Callbacks: a.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's join", func() bool { return a.has("approved HA_GS_JOIN") })
	_, err = b.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, LocalName: "b", Callbacks: b.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's join", func() bool { return b.has("approved HA_GS_JOIN") && len(a.lines()) >= 4 })
	if got := a.lines(); !slices.Equal(got, []string{
		"nphase HA_GS_JOIN 1", `approved HA_GS_JOIN [1/1] state="" HA_GS_EXPLICIT_APPROVE`,
		"nphase HA_GS_JOIN 1", `approved HA_GS_JOIN [1/1 2/1] state="" HA_GS_EXPLICIT_APPROVE`}) {
		t.Errorf("a saw %q", got)
	}
	if err := a.c.ChangeStateValue(ta, gs.StateChangeRequest{NumPhases: gs.OnePhase, NewState: []byte("up")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the state change", func() bool { return b.has(`approved HA_GS_STATE_VALUE_CHANGE [1/1 2/1] state="up"`) })

	g, err := showGroup(t, agents[1].sock, "g")
	if err != nil || string(g.State) != "up" || len(g.Providers) != 2 || g.Providers[0].LocalName != "a" || g.Protocol != nil {
		t.Errorf("show g on node 2: %v, %v", g, err)
	}
	if _, err := showGroup(t, agents[1].sock, "nope"); err == nil {
		t.Error("show of a missing group succeeded")
	}

	// Malformed requests get their codes and change nothing.
	other := newProbe(t, agents[0].sock)
	to, err := other.c.Subscribe(gs.SubscribeRequest{Control: gs.SubscribeAll, Group: "g", Callback: func(*gs.Client, *gs.SubscriptionNotification) {}})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		err  error
		want gs.Error
	}{
		{"oversized state", a.c.ChangeStateValue(ta, gs.StateChangeRequest{NewState: make([]byte, gs.MaxStateValue+1)}), gs.ErrBadParameter},
		{"unknown token", a.c.ChangeStateValue(999, gs.StateChangeRequest{NewState: []byte("x")}), gs.ErrBadMemberToken},
		{"another client's token", a.c.ChangeStateValue(to, gs.StateChangeRequest{NewState: []byte("x")}), gs.ErrBadMemberToken},
		{"subscriber token", other.c.ChangeStateValue(to, gs.StateChangeRequest{NewState: []byte("x")}), gs.ErrNotAMember},
		{"bad vote value", a.c.Vote(ta, 7, nil, nil, gs.NullVote), gs.ErrBadParameter},
		{"bad default vote", a.c.Vote(ta, gs.VoteApprove, nil, nil, gs.VoteContinue), gs.ErrBadParameter},
		{"vote with no protocol", a.c.Vote(ta, gs.VoteApprove, nil, nil, gs.NullVote), gs.ErrVoteNotExpected},
		{"bad phases", a.c.ChangeStateValue(ta, gs.StateChangeRequest{NumPhases: 9, NewState: []byte("x")}), gs.ErrBadParameter},
		{"second join", func() error {
			_, err := a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 2, Callbacks: a.callbacks()})
			return err
		}(), gs.ErrAlreadyAMember},
		{"bad attributes", func() error {
			_, err := other.c.Join(gs.JoinRequest{Attributes: gs.Attributes{GroupName: "g"}, Instance: 3, Callbacks: a.callbacks()})
			return err
		}(), gs.ErrBadGroupAttributes},
		{"reserved name", func() error {
			_, err := a.c.Join(gs.JoinRequest{Attributes: gs.Attributes{GroupName: gs.HostGroupName}, Callbacks: a.callbacks()})
			return err
		}(), gs.ErrInvalidGroup},
		{"expel unknown", a.c.Expel(ta, gs.ExpelRequest{ExpelList: []gs.ProviderID{{Node: 9, Instance: 9}}}), gs.ErrUnknownProvider},
		{"unsubscribe provider token", a.c.Unsubscribe(ta), gs.ErrBadMemberToken},
	}
	for _, c := range bad {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	g2, _ := showGroup(t, agents[0].sock, "g")
	if string(g2.State) != "up" || len(g2.Providers) != 2 || g2.Protocol != nil || g2.Queued != 0 {
		t.Errorf("malformed requests changed the group: %v", g2)
	}

	// A client that quits: its provider leaves with reason QUIT; one whose
	// connection drops: FAILED_LEAVE.
	q := newProbe(t, agents[0].sock)
	q.vote = gs.VoteApprove
	if _, err := q.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 5, Callbacks: q.callbacks()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "q's join", func() bool { return a.has("approved HA_GS_JOIN [1/1 2/1 1/5]") })
	q.c.Quit()
	waitFor(t, "q's quit", func() bool {
		return a.has(`approved HA_GS_FAILURE_LEAVE [1/1 2/1] state="" HA_GS_EXPLICIT_APPROVE HA_GS_PROVIDER_QUIT/0`)
	})
	if err := q.c.Leave(1, gs.LeaveRequest{}); !errors.Is(err, gs.ErrNoInit) {
		t.Errorf("leave after quit: %v", err)
	}

	// The trace on node 2 saw the joins, votes and the state change.
	var kinds []string
	for len(kinds) < 12 {
		tr, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		k := tr.Kind.String()
		if tr.Notification != nil {
			k += " " + groups.NotificationType(tr.Notification.Type).String()
		}
		kinds = append(kinds, fmt.Sprintf("%s %d", k, len(tr.Providers)))
		if tr.Notification != nil && tr.Notification.Protocol == int32(groups.ProtoStateValueChange) {
			break
		}
	}
	want := []string{
		"NOTIFY HA_GS_N_PHASE_NOTIFICATION 1", "VOTE 1", "NOTIFY HA_GS_APPROVED_NOTIFICATION 1",
		"NOTIFY HA_GS_N_PHASE_NOTIFICATION 2", "VOTE 1", "VOTE 1", "NOTIFY HA_GS_APPROVED_NOTIFICATION 2",
		"NOTIFY HA_GS_APPROVED_NOTIFICATION 2",
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("trace %q\nwant  %q", kinds, want)
	}
}

// TestGroupsSlowClient: a client that stops reading its stream is cut off
// without holding the agent, and its provider fails out of the group.
func TestGroupsSlowClient(t *testing.T) {
	agents := startAgents(t, 53, 1, nil)
	waitInstalled(t, agents, 1)
	a := newProbe(t, agents[0].sock)
	attrs := gs.Attributes{GroupName: "s"}
	ta, err := a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, Callbacks: a.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's join", func() bool { return a.has("approved HA_GS_JOIN") })

	// A raw client that joins and then never reads.
	conn, err := ipc.Dial(context.Background(), agents[0].sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := clientpb.NewGroupServicesClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&clientpb.GSRequest{Id: 1, Body: &clientpb.GSRequest_Init{Init: &clientpb.GSInit{}}})
	st.Send(&clientpb.GSRequest{Id: 2, Body: &clientpb.GSRequest_Join{Join: &clientpb.GSJoin{
		Attributes: &clientpb.GSAttributes{GroupName: "s"}, Instance: 2}}})
	waitFor(t, "the silent client's join", func() bool {
		g, err := showGroup(t, agents[0].sock, "s")
		return err == nil && len(g.Providers) == 2
	})
	// Flood the group with messages: every one is a notification to the
	// silent client too.
	big := make([]byte, gs.MaxMessageLength)
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, err := showGroup(t, agents[0].sock, "s")
		if err == nil && len(g.Providers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent client was never cut off")
		}
		if err := a.c.SendMessage(ta, gs.MessageRequest{Message: big}); err != nil && !errors.Is(err, gs.ErrCollide) {
			t.Fatal(err)
		}
	}
	waitFor(t, "the failure leave", func() bool { return a.has("approved HA_GS_FAILURE_LEAVE") })
}

// TestGroupsDeactivateScript: an expel runs the expelled provider's
// script with the spec's argv, and its exit status and time-out reach the
// summary code.
func TestGroupsDeactivateScript(t *testing.T) {
	agents := startAgents(t, 55, 1, nil)
	waitInstalled(t, agents, 1)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "deact.sh")
	body := "#!/bin/sh\necho \"$@ $HA_GS_GROUP_NAME $(id -u)\" >> " + out + "\ncase \"$5\" in fail) exit 3;; hang) sleep 30;; esac\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Init(gs.Callbacks{DelayedError: func(*gs.Client, *gs.DelayedErrorNotification) {}},
		gs.WithSocket(agents[0].sock), gs.WithDeactivateScript("relative.sh")); !errors.Is(err, gs.ErrBadParameter) {
		t.Errorf("relative script: %v", err)
	}
	a := newProbe(t, agents[0].sock)
	attrs := gs.Attributes{GroupName: "x"}
	ta, err := a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, Callbacks: a.callbacks()})
	if err != nil {
		t.Fatal(err)
	}
	for i, arg := range []string{"ok", "fail", "hang"} {
		v := newProbe(t, agents[0].sock, gs.WithDeactivateScript(script))
		inst := int16(10 + i)
		if _, err := v.c.Join(gs.JoinRequest{Attributes: attrs, Instance: inst, Callbacks: v.callbacks()}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the victim's join", func() bool { return v.has("approved HA_GS_JOIN") })
		if err := a.c.Expel(ta, gs.ExpelRequest{ExpelList: []gs.ProviderID{{Node: 1, Instance: inst}}, ExpelCode: 7,
			DeactivatePhase: 1, DeactivateTimeLimit: 1, DeactivateArgument: arg}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the expel", func() bool { return a.has(fmt.Sprintf("approved HA_GS_EXPEL [1/1]")) && len(a.lines()) >= 2*(i+1)+1 })
	}
	var sums []string
	for _, l := range a.lines() {
		if strings.HasPrefix(l, "approved HA_GS_EXPEL") {
			sums = append(sums, l)
		}
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	uid := fmt.Sprint(os.Getuid())
	pid := fmt.Sprint(os.Getpid())
	if len(lines) != 3 || lines[0] != "x 10 "+pid+" 7 ok x "+uid || lines[1] != "x 11 "+pid+" 7 fail x "+uid {
		t.Errorf("script runs: %q", lines)
	}
	want := []string{
		`approved HA_GS_EXPEL [1/1] state="" 0 HA_GS_PROVIDER_EXPELLED/7`,
		`approved HA_GS_EXPEL [1/1] state="" HA_GS_DEACTIVATE_UNSUCCESSFUL HA_GS_PROVIDER_EXPELLED/7`,
		`approved HA_GS_EXPEL [1/1] state="" HA_GS_DEACTIVATE_TIME_LIMIT_EXCEEDED HA_GS_PROVIDER_EXPELLED/7`,
	}
	if !slices.Equal(sums, want) {
		t.Errorf("expels: %q", sums)
	}
}

// TestGroupsResponsiveness: a client that stops dispatching is announced
// as not responding, and as responding again when it resumes.
func TestGroupsResponsiveness(t *testing.T) {
	agents := startAgents(t, 57, 1, nil)
	waitInstalled(t, agents, 1)
	a := newProbe(t, agents[0].sock)
	attrs := gs.Attributes{GroupName: "r"}
	if _, err := a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, Callbacks: a.callbacks()}); err != nil {
		t.Fatal(err)
	}
	var counter atomic.Uint64
	z, err := gs.Init(gs.Callbacks{DelayedError: func(*gs.Client, *gs.DelayedErrorNotification) {}},
		gs.WithSocket(agents[0].sock), gs.WithResponsiveness(gs.Responsiveness{Type: gs.CounterResponsiveness,
			Interval: 100 * time.Millisecond, Counter: &counter}))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Quit()
	zp := &gsProbe{t: t}
	if _, err := z.Join(gs.JoinRequest{Attributes: attrs, Instance: 2, Callbacks: zp.callbacks()}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				counter.Add(1)
				z.Dispatch(gs.NonBlocking)
			}
		}
	}()
	waitFor(t, "z's join", func() bool { return a.has(`approved HA_GS_JOIN [1/1 1/2]`) })
	close(stop) // z stops counting
	waitFor(t, "the no-response announcement", func() bool { return a.has("announcement HA_GS_RESPONSIVENESS_NO_RESPONSE [1/2]") })
	counter.Add(1)
	waitFor(t, "the response announcement", func() bool { return a.has("announcement HA_GS_RESPONSIVENESS_RESPONSE [1/2]") })
	// A PING client answers from Dispatch: while it does not dispatch, it
	// does not respond.
	var pinged atomic.Int32
	y, err := gs.Init(gs.Callbacks{DelayedError: func(*gs.Client, *gs.DelayedErrorNotification) {},
		Responsiveness: func(_ *gs.Client, n *gs.ResponsivenessNotification) gs.CallbackRC {
			if n.Information.Type != gs.PingResponsiveness {
				t.Errorf("responsiveness notification: %+v", n)
			}
			pinged.Add(1)
			return gs.CallbackOK
		}},
		gs.WithSocket(agents[0].sock), gs.WithResponsiveness(gs.Responsiveness{Type: gs.PingResponsiveness,
			Interval: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer y.Quit()
	if _, err := y.Join(gs.JoinRequest{Attributes: attrs, Instance: 3, Callbacks: zp.callbacks()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "y's no-response announcement", func() bool { return a.has("announcement HA_GS_RESPONSIVENESS_NO_RESPONSE [1/3]") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go y.Run(ctx)
	waitFor(t, "y's response announcement", func() bool { return a.has("announcement HA_GS_RESPONSIVENESS_RESPONSE [1/3]") })
	if pinged.Load() == 0 {
		t.Error("the responsiveness callback never ran")
	}
	// Still members: nobody is removed for not responding.
	if g, err := showGroup(t, agents[0].sock, "r"); err != nil || len(g.Providers) != 3 {
		t.Errorf("group r: %v, %v", g, err)
	}
}

// TestGroupsConvert checks the engine-to-wire conversions field by field.
func TestGroupsConvert(t *testing.T) {
	ids := []groups.ProviderID{{Node: 1, Instance: 2}, {Node: 3, Instance: 0}}
	at := groups.Attributes{Version: 1, ClientVersion: 2, BatchControl: groups.BatchLeaves, NumPhases: groups.NPhase,
		SourceReflectionNumPhases: groups.OnePhase, DefaultVote: groups.VoteReject, MergeControl: groups.DontMerge,
		TimeLimit: 3, SourceProtocolTimeLimit: 4, GroupName: "t", SourceGroupName: "s"}
	back, err := attrsFromPB(attrsPB(at))
	if err != nil || back != at {
		t.Errorf("attributes round trip: %+v, %v", back, err)
	}
	if _, err := attrsFromPB(nil); !errors.Is(err, groups.ErrBadParameter) {
		t.Errorf("nil attributes: %v", err)
	}
	if _, err := attrsFromPB(&clientpb.GSAttributes{Version: 1 << 20}); !errors.Is(err, groups.ErrBadGroupAttributes) {
		t.Errorf("version out of range: %v", err)
	}
	if got, err := idsFromPB(idsPB(ids)); err != nil || !slices.Equal(got, ids) {
		t.Errorf("ids round trip: %v, %v", got, err)
	}
	if _, err := idsFromPB([]*clientpb.GSProviderID{{Node: 1, Instance: 1 << 16}}); !errors.Is(err, groups.ErrBadParameter) {
		t.Errorf("instance out of range: %v", err)
	}
	n := &groups.Notification{Client: 9, Token: 4, Type: groups.NotifyRejected, Group: "t", Ring: groups.RingID{Rep: 2, Seq: 7},
		Protocol: groups.ProtoExpel, Summary: groups.ExplicitReject | groups.DeactivateUnsuccessful,
		Proposal: &groups.Proposal{WhatsChanged: groups.ChangedMembership, Phase: groups.PhaseInfo{Number: 2, NumPhases: groups.NPhase, TimeLimit: 5},
			CurrentState: []byte("s"), Message: []byte{}, HasMessage: true, CurrentMembership: ids, ChangingMembership: ids[1:],
			ProposedMembership: ids[:1], LeaveInfo: []groups.LeaveInfo{{Reason: groups.ProviderExpelled, Code: 6}},
			SourceState: []byte("src"), HasSourceState: true, CurrentAttributes: at, ProposedAttributes: &at},
		Err: groups.ErrCollide, FailingRequest: &groups.Request{Protocol: groups.ProtoExpel,
			Expel: &groups.ExpelArgs{List: ids, ExpelCode: 6, DeactivatePhase: 1}}}
	p := notificationPB(n, time.Unix(0, 42))
	pr := p.Proposal
	if p.Type != 3 || p.Token != 4 || p.Group != "t" || p.RingId.Rep != 2 || p.RingId.Seq != 7 || p.Protocol != 4 ||
		p.Summary != 0x102 || p.Error != int32(groups.ErrCollide) || p.UnixNano != 42 ||
		pr.Phase.Number != 2 || pr.Phase.NumPhases != 2 || pr.Phase.TimeLimit != 5 || string(pr.CurrentState) != "s" ||
		!pr.HasMessage || pr.HasProposedState || len(pr.CurrentMembership) != 2 || pr.ChangingMembership[0].Node != 3 ||
		pr.LeaveInfo[0].Reason != int32(groups.ProviderExpelled) || pr.LeaveInfo[0].Code != 6 || string(pr.SourceState) != "src" ||
		!pr.HasSourceState || pr.ProposedAttributes.GroupName != "t" || pr.CurrentAttributes.TimeLimit != 3 ||
		p.FailingRequest.Expel.ExpelCode != 6 || len(p.FailingRequest.Expel.List) != 2 || p.FailingRequest.Join != nil {
		t.Errorf("notification: %v", p)
	}
	if q := notificationPB(n, time.Time{}); q.UnixNano != 0 {
		t.Errorf("unstamped notification: %d", q.UnixNano)
	}
	gi := groups.GroupInfo{Name: "t", Attributes: at, Providers: []groups.ProviderInfo{{ID: ids[0], LocalName: "x"}}, State: []byte("abc"),
		Protocol: &groups.ProtocolInfo{Type: groups.ProtoJoin, Seq: 3, Phase: 1, NumPhases: groups.NPhase, Changing: ids[1:], Voters: ids, Voted: ids[:1]},
		Queued:   2, Subscribers: 1}
	g := groupPB(gi)
	if g.Name != "t" || g.StateSize != 3 || g.Providers[0].LocalName != "x" || g.Protocol.Seq != 3 || len(g.Protocol.Voters) != 2 ||
		len(g.Protocol.Voted) != 1 || g.Queued != 2 || g.Subscribers != 1 {
		t.Errorf("group: %v", g)
	}
	tr := tracePB(&groups.TraceEvent{Kind: groups.TraceVote, Group: "t", Seq: 3, Phase: 1, Provider: ids[0], Vote: groups.VoteContinue,
		Default: groups.VoteReject, HasState: true}, time.Unix(0, 1))
	if tr.Kind != clientpb.GSTrace_VOTE || tr.Vote != 2 || tr.DefaultVote != 3 || !tr.HasState || tr.HasMessage || len(tr.Providers) != 1 {
		t.Errorf("trace: %v", tr)
	}
}

func TestScriptCredential(t *testing.T) {
	client := ipc.Cred{PID: 10, UID: 1000, GID: 100, Gids: []uint32{100, 20}}
	if c, err := scriptCredential(0, client); err != nil || c.Uid != 1000 || c.Gid != 100 || !slices.Equal(c.Groups, []uint32{100, 20}) {
		t.Errorf("root agent: %+v, %v", c, err)
	}
	if c, err := scriptCredential(0, ipc.Cred{}); err != nil || c.Uid != 0 {
		t.Errorf("root agent, root client: %+v, %v", c, err)
	}
	if c, err := scriptCredential(1000, client); err != nil || c != nil {
		t.Errorf("agent of the client's uid: %+v, %v", c, err)
	}
	if _, err := scriptCredential(1001, client); err == nil {
		t.Error("an unprivileged agent would run another user's script")
	}
	cmd := scriptCommand(scriptRun{d: groups.Deactivation{ID: groups.DeactivationID{Group: "g", Provider: groups.ProviderID{Node: 1, Instance: 3}},
		Script: "/bin/true", ExpelCode: 9, Argument: "arg"}, cred: client, domain: "lab"})
	if !slices.Equal(cmd.Args, []string{"/bin/true", "g", "3", "10", "9", "arg"}) || cmd.Dir != "/" ||
		!slices.Contains(cmd.Env, "HA_DOMAIN_NAME=lab") || !slices.Contains(cmd.Env, "HA_GS_PROVIDER_PID=10") ||
		!cmd.SysProcAttr.Setpgid {
		t.Errorf("script command: %v %v", cmd.Args, cmd.Env)
	}
	tb := &tailBuffer{max: 4}
	tb.Write([]byte("abc"))
	tb.Write([]byte("def"))
	if tb.String() != "cdef" {
		t.Errorf("tail buffer: %q", tb.String())
	}
}
