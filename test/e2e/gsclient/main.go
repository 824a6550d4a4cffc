// Command gsclient is the group-services client of the end-to-end tests: a
// real, separate process that uses package gs against a real agent, so
// that the tests can kill it, stop it, or let it exit in the middle of a
// vote.
//
// It initialises one client, then either joins one group as a provider or
// subscribes to one, and prints every notification its callbacks see, and
// the outcome of everything it does, as one JSON object per line on stdout
// (see event). It votes by the rules of -votes; it takes commands, one per
// line, on stdin, and prints a "result" event for each; it quits when stdin
// ends.
//
//	gsclient -socket S -group g -instance 1 -phases n -time-limit 30 -default-vote reject \
//	    -votes 'join+3/9=reject,state_value_change#1=continue'
//
// Vote rules are tried in order against each n-phase notification; the
// first that matches decides, and none matching means approve. A rule is
// MATCH=ACTION, where MATCH is a protocol (the C name in lower case without
// HA_GS_, e.g. join, state_value_change, provider_message, or * for any),
// optionally followed by #PHASE (only that phase) and +NODE/INSTANCE (only
// when that provider is in the changing membership). ACTION is approve,
// continue or reject (vote it), wait (do not vote: the test votes with the
// vote command), exit (exit at once with status 3, without voting or
// quitting) or hang (never return from the callback: the client stops
// dispatching the group).
//
// Commands:
//
//	state 1|n LIMIT VALUE       ChangeStateValue
//	msg 1|n LIMIT TEXT          SendMessage
//	vote ACTION [STATE]         Vote in the last n-phase protocol seen
//	leave 1|n LIMIT CODE        Leave
//	goodbye                     Goodbye
//	join                        Join again, with the same attributes
//	unsubscribe                 Unsubscribe
//	stop                        stop dispatching (notifications pile up in the library)
//	dispatch                    dispatch again
//	flood COUNT BYTES           COUNT one-phase messages of BYTES bytes, one at a time
//	                            (each waits for its approval), retrying collisions,
//	                            until a failure leave is approved
//	quit                        Quit and exit 0
//	exit CODE                   exit with CODE without quitting
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conclave/conclave/gs"
)

// event is one line of output. The test package decodes the same fields.
type event struct {
	Ev  string `json:"ev"`  // init, joined, subscribed, nphase, approved, rejected, announcement, merge, subscription, delayed_error, vote, result, run_end
	Seq int    `json:"seq"` // line number, from 1

	Node  uint32 `json:"node,omitempty"`
	Token uint64 `json:"token,omitempty"`
	Group string `json:"group,omitempty"`
	Ring  string `json:"ring,omitempty"`

	// Protocol notifications.
	Protocol      string   `json:"protocol,omitempty"`
	Summary       string   `json:"summary,omitempty"`
	Phase         int      `json:"phase,omitempty"`
	TimeLimit     uint32   `json:"time_limit,omitempty"`
	Current       []string `json:"current,omitempty"`
	Changing      []string `json:"changing,omitempty"`
	Proposed      []string `json:"proposed,omitempty"`
	LeaveInfo     []string `json:"leave_info,omitempty"` // REASON:CODE
	CurrentState  *string  `json:"current_state,omitempty"`
	ProposedState *string  `json:"proposed_state,omitempty"`
	Message       *string  `json:"message,omitempty"`

	// Announcements and merges.
	Announcement []string `json:"announcement,omitempty"`
	Merging      []string `json:"merging,omitempty"`
	MergeState   *string  `json:"merge_state,omitempty"`
	WinnerState  *string  `json:"winner_state,omitempty"`

	// Subscriptions.
	SubType string   `json:"sub_type,omitempty"`
	State   *string  `json:"state,omitempty"`
	Full    []string `json:"full,omitempty"`

	// Votes, command results, delayed errors.
	Vote string `json:"vote,omitempty"`
	N    int    `json:"n,omitempty"`
	Cmd  string `json:"cmd,omitempty"`
	Err  string `json:"err,omitempty"`
	Info string `json:"info,omitempty"`
}

var (
	outMu sync.Mutex
	seq   int
	enc   = json.NewEncoder(os.Stdout)
)

func emit(e event) {
	outMu.Lock()
	defer outMu.Unlock()
	seq++
	e.Seq = seq
	if err := enc.Encode(e); err != nil {
		os.Exit(4)
	}
}

func errName(err error) string {
	if err == nil {
		return ""
	}
	var e gs.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

func ids(l []gs.ProviderID) []string {
	out := make([]string, 0, len(l))
	for _, id := range l {
		out = append(out, id.String())
	}
	return out
}

// str shows a state value or message; long ones (the flood's) only by
// their size, to keep lines short.
func str(b []byte, ok bool) *string {
	if !ok {
		return nil
	}
	s := string(b)
	if len(b) > maxShown {
		s = fmt.Sprintf("<%d bytes>", len(b))
	}
	return &s
}

const maxShown = 256

type rule struct {
	proto  string // "" = any
	phase  int    // 0 = any
	member string // "" = any
	action string
}

func parseRules(s string) ([]rule, error) {
	var rules []rule
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		match, action, ok := strings.Cut(r, "=")
		if !ok {
			return nil, fmt.Errorf("vote rule %q: no =", r)
		}
		switch action {
		case "approve", "continue", "reject", "wait", "exit", "hang":
		default:
			return nil, fmt.Errorf("vote rule %q: unknown action", r)
		}
		var ru rule
		ru.action = action
		if m, member, ok := strings.Cut(match, "+"); ok {
			match, ru.member = m, member
		}
		if m, phase, ok := strings.Cut(match, "#"); ok {
			p, err := strconv.Atoi(phase)
			if err != nil {
				return nil, fmt.Errorf("vote rule %q: %v", r, err)
			}
			match, ru.phase = m, p
		}
		if match != "*" {
			ru.proto = match
		}
		rules = append(rules, ru)
	}
	return rules, nil
}

func protoName(p gs.ProtocolType) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "HA_GS_"))
}

func (r rule) matches(n *gs.NPhaseNotification) bool {
	if r.proto != "" && r.proto != protoName(n.Protocol) {
		return false
	}
	if r.phase != 0 && r.phase != n.Proposal.Phase.Number {
		return false
	}
	if r.member != "" {
		found := false
		for _, id := range n.Proposal.ChangingMembership {
			found = found || id.String() == r.member
		}
		return found
	}
	return true
}

func voteValue(s string) (gs.VoteValue, bool) {
	switch s {
	case "approve":
		return gs.VoteApprove, true
	case "continue":
		return gs.VoteContinue, true
	case "reject":
		return gs.VoteReject, true
	}
	return 0, false
}

func phases(s string) gs.NumPhases {
	if s == "n" {
		return gs.NPhase
	}
	return gs.OnePhase
}

// client is the process's one GS client and its one provider or
// subscription.
type client struct {
	c     *gs.Client
	rules []rule
	join  gs.JoinRequest

	mu     sync.Mutex
	cond   *sync.Cond // on mu: signalled by the callbacks a flood waits for
	tok    gs.Token   // the provider's or the subscription's
	last   gs.Token   // token of the last n-phase notification
	failed bool       // a failure leave was approved (ends a flood)
	// approvedMsgs and failedMsgs count approved provider messages and
	// delayed errors of message requests (a flood's progress).
	approvedMsgs, failedMsgs int

	info string // the last command's remark

	stopRun context.CancelFunc
	runDone chan struct{}
}

func (cl *client) token() gs.Token {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.tok
}

func protocolEvent(kind string, n *gs.ProtocolNotification) event {
	e := event{Ev: kind, Token: uint64(n.Token), Group: n.Group, Ring: n.Ring.String(),
		Protocol: n.Protocol.String(), Summary: n.Summary.String()}
	if p := n.Proposal; p != nil {
		e.Phase, e.TimeLimit = p.Phase.Number, p.Phase.TimeLimit
		e.Current, e.Changing, e.Proposed = ids(p.CurrentMembership), ids(p.ChangingMembership), ids(p.ProposedMembership)
		for _, li := range p.LeaveInfo {
			e.LeaveInfo = append(e.LeaveInfo, fmt.Sprintf("%s:%d", li.Reason, li.Code))
		}
		e.CurrentState = str(p.CurrentState, true)
		e.ProposedState = str(p.ProposedState, p.HasProposedState)
		e.Message = str(p.Message, p.HasMessage)
	}
	return e
}

func (cl *client) callbacks() gs.ProviderCallbacks {
	return gs.ProviderCallbacks{
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			emit(protocolEvent("nphase", n))
			cl.mu.Lock()
			cl.last = n.Token
			cl.mu.Unlock()
			action := "approve"
			for _, r := range cl.rules {
				if r.matches(n) {
					action = r.action
					break
				}
			}
			switch action {
			case "wait":
				emit(event{Ev: "vote", Vote: action, Protocol: n.Protocol.String(), Phase: n.Proposal.Phase.Number})
				return
			case "exit":
				emit(event{Ev: "vote", Vote: action, Protocol: n.Protocol.String(), Phase: n.Proposal.Phase.Number})
				os.Exit(3)
			case "hang":
				emit(event{Ev: "vote", Vote: action, Protocol: n.Protocol.String(), Phase: n.Proposal.Phase.Number})
				select {}
			}
			v, _ := voteValue(action)
			err := c.Vote(n.Token, v, nil, nil, gs.NullVote)
			emit(event{Ev: "vote", Vote: action, Protocol: n.Protocol.String(), Phase: n.Proposal.Phase.Number, Err: errName(err)})
		},
		Approved: func(_ *gs.Client, n *gs.ApprovedNotification) {
			emit(protocolEvent("approved", n))
			cl.mu.Lock()
			switch n.Protocol {
			case gs.ProtoFailureLeave:
				cl.failed = true
			case gs.ProtoProviderMessage:
				cl.approvedMsgs++
			}
			cl.cond.Broadcast()
			cl.mu.Unlock()
		},
		Rejected: func(_ *gs.Client, n *gs.RejectedNotification) { emit(protocolEvent("rejected", n)) },
		Announcement: func(_ *gs.Client, n *gs.AnnouncementNotification) {
			emit(event{Ev: "announcement", Token: uint64(n.Token), Group: n.Group, Ring: n.Ring.String(),
				Summary: n.Summary.String(), Announcement: ids(n.Announcement)})
		},
		Merge: func(_ *gs.Client, n *gs.MergeNotification) {
			emit(event{Ev: "merge", Token: uint64(n.Token), Group: n.Group, Ring: n.Ring.String(), Summary: n.Summary.String(),
				Merging: ids(n.MergingProviders), MergeState: str(n.MergeState, true), WinnerState: str(n.WinnerState, true)})
		},
	}
}

var subTypeNames = []struct {
	t gs.SubscriptionType
	n string
}{
	{gs.SubscriptionInitial, "INITIAL"}, {gs.SubscriptionState, "STATE"}, {gs.SubscriptionDeltaJoin, "DELTA_JOIN"},
	{gs.SubscriptionDeltaLeave, "DELTA_LEAVE"}, {gs.SubscriptionDissolved, "DISSOLVED"}, {gs.SubscriptionSpecialData, "SPECIAL_DATA"},
}

func subType(t gs.SubscriptionType) string {
	var parts []string
	for _, s := range subTypeNames {
		if t&s.t != 0 {
			parts = append(parts, s.n)
			t &^= s.t
		}
	}
	if t != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(t)))
	}
	return strings.Join(parts, "|")
}

func subscriptionControl(s string) (gs.SubscriptionControl, error) {
	var c gs.SubscriptionControl
	for _, f := range strings.Split(s, ",") {
		switch f {
		case "state":
			c |= gs.SubscribeState
		case "joins":
			c |= gs.SubscribeDeltaJoins
		case "leaves":
			c |= gs.SubscribeDeltaLeaves
		case "membership":
			c |= gs.SubscribeMembership
		case "deltas-only":
			c |= gs.SubscribeDeltasOnly
		case "all":
			c |= gs.SubscribeAll
		default:
			return 0, fmt.Errorf("subscription flag %q", f)
		}
	}
	return c, nil
}

func (cl *client) subscription(_ *gs.Client, n *gs.SubscriptionNotification) {
	e := event{Ev: "subscription", Token: uint64(n.Token), Group: n.Group, Ring: n.Ring.String(),
		SubType: subType(n.SubscriptionType), Full: ids(n.FullMembership), Changing: ids(n.ChangingMembership)}
	if n.SubscriptionType&gs.SubscriptionState != 0 {
		e.State = str(n.StateValue, true)
	}
	emit(e)
}

// dispatch starts dispatching on its own goroutine.
func (cl *client) dispatch() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cl.stopRun, cl.runDone = cancel, done
	go func() {
		defer close(done)
		if err := cl.c.Run(ctx); err != nil {
			emit(event{Ev: "run_end", Err: errName(err), Info: err.Error()})
		}
	}()
}

// stop stops dispatching, once the callback that runs (if any) returns.
func (cl *client) stop() {
	if cl.stopRun != nil {
		cl.stopRun()
		<-cl.runDone
		cl.stopRun, cl.runDone = nil, nil
	}
}

func (cl *client) doJoin() error {
	tok, err := cl.c.Join(cl.join)
	cl.mu.Lock()
	if err == nil {
		cl.tok = tok
	}
	cl.mu.Unlock()
	emit(event{Ev: "joined", Token: uint64(tok), Group: cl.join.Attributes.GroupName, Err: errName(err)})
	return err
}

// badCommand is a malformed command (the test's mistake, not the agent's).
type badCommand struct{ error }

// command runs one stdin command and returns the call's error; it may
// leave a remark in cl.info.
func (cl *client) command(f []string) error {
	var bad error
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	num := func(i int) uint32 {
		v, e := strconv.ParseUint(arg(i), 10, 32)
		if e != nil && bad == nil {
			bad = fmt.Errorf("argument %d: %v", i, e)
		}
		return uint32(v)
	}
	rest := func(i int) []byte {
		if i >= len(f) {
			return []byte{}
		}
		return []byte(strings.Join(f[i:], " "))
	}
	switch arg(0) {
	case "state":
		req := gs.StateChangeRequest{NumPhases: phases(arg(1)), TimeLimit: num(2), NewState: rest(3)}
		if bad != nil {
			return badCommand{bad}
		}
		return cl.c.ChangeStateValue(cl.token(), req)
	case "msg":
		req := gs.MessageRequest{NumPhases: phases(arg(1)), TimeLimit: num(2), Message: rest(3)}
		if bad != nil {
			return badCommand{bad}
		}
		return cl.c.SendMessage(cl.token(), req)
	case "vote":
		v, ok := voteValue(arg(1))
		if !ok {
			return badCommand{fmt.Errorf("vote %q", arg(1))}
		}
		var state []byte
		if len(f) > 2 {
			state = rest(2)
		}
		cl.mu.Lock()
		tok := cl.last
		cl.mu.Unlock()
		return cl.c.Vote(tok, v, state, nil, gs.NullVote)
	case "leave":
		req := gs.LeaveRequest{NumPhases: phases(arg(1)), TimeLimit: num(2), LeaveCode: num(3)}
		if bad != nil {
			return badCommand{bad}
		}
		return cl.c.Leave(cl.token(), req)
	case "goodbye":
		return cl.c.Goodbye(cl.token())
	case "join":
		return cl.doJoin()
	case "unsubscribe":
		return cl.c.Unsubscribe(cl.token())
	case "stop":
		cl.stop()
		return nil
	case "dispatch":
		if cl.stopRun == nil {
			cl.dispatch()
		}
		return nil
	case "flood":
		count, size := num(1), num(2)
		if bad != nil {
			return badCommand{bad}
		}
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = 'a' + byte(i%26)
		}
		// One message at a time: each waits for its approval (or its
		// delayed error), so that this client reads its own notifications
		// as fast as it makes them and only a client that does not read
		// falls behind.
		cl.mu.Lock()
		cl.failed = false
		sent := 0
		defer func() { cl.info = fmt.Sprintf("%d messages sent", sent) }()
		for uint32(sent) < count && !cl.failed {
			approved, failed := cl.approvedMsgs, cl.failedMsgs
			cl.mu.Unlock()
			err := cl.c.SendMessage(cl.token(), gs.MessageRequest{NumPhases: gs.OnePhase, Message: msg})
			cl.mu.Lock()
			if errors.Is(err, gs.ErrCollide) {
				cl.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				cl.mu.Lock()
				continue
			}
			if err != nil {
				cl.mu.Unlock()
				return err
			}
			for cl.approvedMsgs == approved && cl.failedMsgs == failed && !cl.failed {
				cl.cond.Wait()
			}
			if cl.approvedMsgs > approved {
				sent++
			}
		}
		cl.mu.Unlock()
		return nil
	case "quit":
		cl.c.Quit()
		return nil
	case "exit":
		code := num(1)
		if bad != nil {
			return badCommand{bad}
		}
		os.Exit(int(code))
	}
	return badCommand{fmt.Errorf("unknown command %q", arg(0))}
}

func main() {
	socket := flag.String("socket", "", "agent socket")
	group := flag.String("group", "g", "group name")
	instance := flag.Int("instance", 1, "provider instance")
	name := flag.String("name", "", "provider local name (default gsclient[pid])")
	subscribe := flag.String("subscribe", "", "subscribe with these flags (state,joins,leaves,membership,deltas-only,all) instead of joining")
	numPhases := flag.String("phases", "1", "group attribute: 1 or n")
	timeLimit := flag.Uint("time-limit", 0, "group attribute: seconds per voting phase of joins and failure leaves")
	defaultVote := flag.String("default-vote", "approve", "group attribute: approve or reject")
	merge := flag.String("merge", "dissolve", "group attribute: dissolve or dont")
	votes := flag.String("votes", "", "vote rules")
	dispatch := flag.Bool("dispatch", true, "dispatch notifications from the start")
	flag.Parse()

	rules, err := parseRules(*votes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gsclient:", err)
		os.Exit(2)
	}
	cl := &client{rules: rules}
	cl.cond = sync.NewCond(&cl.mu)
	c, err := gs.Init(gs.Callbacks{DelayedError: func(_ *gs.Client, n *gs.DelayedErrorNotification) {
		emit(event{Ev: "delayed_error", Token: uint64(n.RequestToken), Group: n.Group, Ring: n.Ring.String(),
			Protocol: n.Protocol.String(), Err: errName(n.ReturnCode)})
		if n.Protocol == gs.ProtoProviderMessage {
			cl.mu.Lock()
			cl.failedMsgs++
			cl.cond.Broadcast()
			cl.mu.Unlock()
		}
	}}, gs.WithSocket(*socket))
	if err != nil {
		emit(event{Ev: "init", Err: errName(err), Info: err.Error()})
		os.Exit(1)
	}
	cl.c = c
	node, _ := c.NodeNumber()
	emit(event{Ev: "init", Node: node})

	if *subscribe != "" {
		ctl, err := subscriptionControl(*subscribe)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gsclient:", err)
			os.Exit(2)
		}
		tok, err := c.Subscribe(gs.SubscribeRequest{Control: ctl, Group: *group, Callback: cl.subscription})
		cl.tok = tok
		emit(event{Ev: "subscribed", Token: uint64(tok), Group: *group, Err: errName(err)})
	} else {
		dv := gs.VoteApprove
		if *defaultVote == "reject" {
			dv = gs.VoteReject
		}
		mc := gs.DissolveMerge
		if *merge == "dont" {
			mc = gs.DontMerge
		}
		local := *name
		if local == "" {
			local = fmt.Sprintf("gsclient[%d]", os.Getpid())
		}
		cl.join = gs.JoinRequest{
			Attributes: gs.Attributes{GroupName: *group, NumPhases: phases(*numPhases), TimeLimit: uint32(*timeLimit),
				DefaultVote: dv, MergeControl: mc},
			Instance: int16(*instance), LocalName: local, Callbacks: cl.callbacks(),
		}
		cl.doJoin() // a failure is in the joined event
	}
	if *dispatch {
		cl.dispatch()
	}

	in := bufio.NewScanner(os.Stdin)
	n := 0
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		n++
		f := strings.Fields(line)
		cl.info = ""
		err := cl.command(f)
		e := event{Ev: "result", N: n, Cmd: line, Err: errName(err), Info: cl.info}
		var bad badCommand
		if errors.As(err, &bad) {
			e.Err, e.Info = "BAD_COMMAND", bad.Error()
		}
		emit(e)
		if f[0] == "quit" {
			os.Exit(0)
		}
	}
	c.Quit()
}
