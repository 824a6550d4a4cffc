package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/lab"
)

// The group services end to end: real agents, and real client processes
// (test/e2e/gsclient, on package gs) that join groups, vote by script, and
// print every notification they get as a JSON line. Scenario numbers are
// those of spec/groupservices.md §8.

// gsToken is the token timeout of the group tests. They need one view
// from start to end: a view change fails providers out of their groups and
// merges the copies afterwards, which is right but not what they test. On
// a loaded machine the agents are not always scheduled for a few hundred
// milliseconds, so the token (and the heartbeat, token/8) get room. Node
// failures are still seen at once (a killed agent's connections drop).
const gsToken = 2 * time.Second

// gsEvent is one line of gsclient's output (its event type).
type gsEvent struct {
	Ev  string `json:"ev"`
	Seq int    `json:"seq"`

	Node  uint32 `json:"node,omitempty"`
	Token uint64 `json:"token,omitempty"`
	Group string `json:"group,omitempty"`
	Ring  string `json:"ring,omitempty"`

	Protocol      string   `json:"protocol,omitempty"`
	Summary       string   `json:"summary,omitempty"`
	Phase         int      `json:"phase,omitempty"`
	TimeLimit     uint32   `json:"time_limit,omitempty"`
	Current       []string `json:"current,omitempty"`
	Changing      []string `json:"changing,omitempty"`
	Proposed      []string `json:"proposed,omitempty"`
	LeaveInfo     []string `json:"leave_info,omitempty"`
	CurrentState  *string  `json:"current_state,omitempty"`
	ProposedState *string  `json:"proposed_state,omitempty"`
	Message       *string  `json:"message,omitempty"`

	Announcement []string `json:"announcement,omitempty"`
	Merging      []string `json:"merging,omitempty"`
	MergeState   *string  `json:"merge_state,omitempty"`
	WinnerState  *string  `json:"winner_state,omitempty"`

	SubType string   `json:"sub_type,omitempty"`
	State   *string  `json:"state,omitempty"`
	Full    []string `json:"full,omitempty"`

	Vote string `json:"vote,omitempty"`
	N    int    `json:"n,omitempty"`
	Cmd  string `json:"cmd,omitempty"`
	Err  string `json:"err,omitempty"`
	Info string `json:"info,omitempty"`
}

func (e gsEvent) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// val reads an optional string field: "<nil>" when absent.
func val(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

var gsclientBuild struct {
	once sync.Once
	path string
	err  error
}

// gsclientBinary builds test/e2e/gsclient once per test binary, next to
// the conclave binary (TestMain's directory, removed at the end), or uses
// $CONCLAVE_E2E_GSCLIENT.
func gsclientBinary(t *testing.T) string {
	t.Helper()
	b := &gsclientBuild
	b.once.Do(func() {
		if p := os.Getenv("CONCLAVE_E2E_GSCLIENT"); p != "" {
			b.path = p
			return
		}
		dir := filepath.Dir(binary)
		if os.Getenv("CONCLAVE_E2E_BINARY") != "" {
			if dir, b.err = os.MkdirTemp("", "conclave-e2e-gsclient-"); b.err != nil {
				return
			}
		}
		b.path = filepath.Join(dir, "gsclient")
		// go test runs the test binary in the package's directory.
		out, err := exec.Command("go", "build", "-o", b.path, "./gsclient").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("building gsclient: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// gsProc is one running gsclient.
type gsProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	ncmd int

	mu      sync.Mutex
	evs     []gsEvent
	stderr  strings.Builder
	changed chan struct{} // closed and replaced on every new event and at exit
	exited  bool
	exitErr error
	done    chan struct{} // closed when the process has exited
}

// gsStderr collects a gsclient's stderr (and stdout lines that are not
// events).
type gsStderr struct{ p *gsProc }

func (w gsStderr) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.stderr.Write(b)
	return len(b), nil
}

// startGS starts a gsclient on an agent's socket. name is for the test's
// messages. The process is quit (stdin closed) or killed when the test
// ends, and on failure its events are logged.
func startGS(t *testing.T, name, socket string, args ...string) *gsProc {
	t.Helper()
	p := &gsProc{t: t, name: name, changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(gsclientBinary(t), append([]string{"-socket", socket}, args...)...)
	p.cmd.Stderr = gsStderr{p}
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(out)
	t.Cleanup(func() {
		p.in.Close()
		p.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		// CONCLAVE_E2E_GS_EVENTS=1 logs them when the test passes too.
		if t.Failed() || os.Getenv("CONCLAVE_E2E_GS_EVENTS") != "" {
			t.Logf("%s (%s): events:\n%s", p.name, strings.Join(args, " "), p.dump())
		}
	})
	return p
}

func (p *gsProc) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e gsEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			gsStderr{p}.Write([]byte("stdout: " + sc.Text() + "\n"))
			continue
		}
		p.mu.Lock()
		p.evs = append(p.evs, e)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited, p.exitErr = true, err
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	close(p.done)
}

func (p *gsProc) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, e := range p.evs {
		b.WriteString("  " + e.String() + "\n")
	}
	if p.exited {
		fmt.Fprintf(&b, "  exited: %v\n", p.exitErr)
	}
	if p.stderr.Len() > 0 {
		b.WriteString("  stderr: " + p.stderr.String() + "\n")
	}
	return b.String()
}

func (p *gsProc) events() []gsEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.evs)
}

// find returns the events that match.
func (p *gsProc) find(match func(gsEvent) bool) []gsEvent {
	var out []gsEvent
	for _, e := range p.events() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits up to waitTimeout for the first event that matches.
func (p *gsProc) waitFor(what string, match func(gsEvent) bool) gsEvent {
	p.t.Helper()
	return p.waitWithin(waitTimeout, what, match)
}

// waitWithin waits up to d for the first event that matches.
func (p *gsProc) waitWithin(d time.Duration, what string, match func(gsEvent) bool) gsEvent {
	p.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for _, e := range p.evs {
			if match(e) {
				p.mu.Unlock()
				return e
			}
		}
		ch, exited := p.changed, p.exited
		p.mu.Unlock()
		if exited {
			p.t.Fatalf("%s exited without %s; events:\n%s", p.name, what, p.dump())
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no %s within %v; events:\n%s", p.name, what, d, p.dump())
		}
	}
}

// waitExit waits for the process to end and returns its exit status.
func (p *gsProc) waitExit() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Fatalf("%s did not exit; events:\n%s", p.name, p.dump())
	}
	return p.cmd.ProcessState.ExitCode()
}

// send sends one command and returns its number, for waitResult.
func (p *gsProc) send(line string) int {
	p.t.Helper()
	p.ncmd++
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		p.t.Fatalf("%s: sending %q: %v", p.name, line, err)
	}
	return p.ncmd
}

// waitResult waits up to d for the result of command n.
func (p *gsProc) waitResult(n int, d time.Duration) gsEvent {
	p.t.Helper()
	return p.waitWithin(d, fmt.Sprintf("the result of command %d", n), func(e gsEvent) bool { return e.Ev == "result" && e.N == n })
}

// do sends one command and waits for its result.
func (p *gsProc) do(line string) gsEvent {
	p.t.Helper()
	return p.waitResult(p.send(line), waitTimeout)
}

// doOK sends a command that must succeed.
func (p *gsProc) doOK(line string) {
	p.t.Helper()
	if r := p.do(line); r.Err != "" {
		p.t.Fatalf("%s: %q failed: %s %s", p.name, line, r.Err, r.Info)
	}
}

// doErr sends a command that must fail with want.
func (p *gsProc) doErr(line, want string) {
	p.t.Helper()
	if r := p.do(line); r.Err != want {
		p.t.Errorf("%s: %q returned %q, want %s", p.name, line, r.Err, want)
	}
}

func (p *gsProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: %v: %v", p.name, sig, err)
	}
}

// procState is the state letter of /proc/PID/stat (R, S, T, ...).
func (p *gsProc) procState() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	// pid (comm) state ...
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return string(b[i+2])
	}
	return "?"
}

// stop SIGSTOPs the process and waits until the kernel reports it stopped.
func (p *gsProc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
	deadline := time.Now().Add(waitTimeout)
	for p.procState() != "T" {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not stopped by SIGSTOP: state %s", p.name, p.procState())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *gsProc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	p.waitExit()
}

// notif matches a notification event of a kind (nphase, approved,
// rejected) and protocol, and, if given, changing membership.
func notif(kind, protocol string, changing ...string) func(gsEvent) bool {
	return func(e gsEvent) bool {
		return e.Ev == kind && e.Protocol == protocol && (changing == nil || slices.Equal(e.Changing, changing))
	}
}

// and combines matches.
func and(ms ...func(gsEvent) bool) func(gsEvent) bool {
	return func(e gsEvent) bool {
		for _, m := range ms {
			if !m(e) {
				return false
			}
		}
		return true
	}
}

func withPhase(n int) func(gsEvent) bool { return func(e gsEvent) bool { return e.Phase == n } }

func withProposedState(s string) func(gsEvent) bool {
	return func(e gsEvent) bool { return e.ProposedState != nil && *e.ProposedState == s }
}

func withMessage(s string) func(gsEvent) bool {
	return func(e gsEvent) bool { return e.Message != nil && *e.Message == s }
}

func isEv(kind string) func(gsEvent) bool { return func(e gsEvent) bool { return e.Ev == kind } }

// expect reports a field that differs.
func expect[T comparable](t *testing.T, who, field string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %s = %v, want %v", who, field, got, want)
	}
}

func expectList(t *testing.T, who, field string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: %s = %v, want %v", who, field, got, want)
	}
}

// joinGS starts a provider of a group on a node and waits until it and
// the members already there have the join approved. attrs are the group
// flags every provider of the group passes.
func joinGS(t *testing.T, c *lab.Cluster, name string, node uint32, instance int, attrs []string, extra []string, members ...*gsProc) *gsProc {
	t.Helper()
	args := append(append([]string{"-instance", fmt.Sprint(instance), "-name", name}, attrs...), extra...)
	p := startGS(t, name, c.Node(node).Socket, args...)
	if j := p.waitFor("joined", isEv("joined")); j.Err != "" {
		t.Fatalf("%s: join: %s", name, j.Err)
	}
	id := fmt.Sprintf("%d/%d", node, instance)
	for _, m := range append(members, p) {
		m.waitFor("approved join of "+id, notif("approved", "HA_GS_JOIN", id))
	}
	return p
}

// gsShow asks one agent for its replica of a group (nil if it has none).
func gsShow(ctx context.Context, c *lab.Cluster, node uint32, group string) (*clientpb.GSGroup, error) {
	conn, err := ipc.Dial(ctx, c.Node(node).Socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	g, err := clientpb.NewGroupServicesClient(conn).ShowGroup(ctx, &clientpb.GSShowRequest{Name: group})
	if err != nil && strings.Contains(err.Error(), "NotFound") {
		return nil, nil
	}
	return g, err
}

func gsIDs(l []*clientpb.GSProviderID) []string {
	out := []string{}
	for _, id := range l {
		out = append(out, fmt.Sprintf("%d/%d", id.GetNode(), id.GetInstance()))
	}
	return out
}

// sameSet compares provider lists whose order is not specified (votes, in
// arrival order).
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func gsProviders(g *clientpb.GSGroup) []string {
	out := []string{}
	for _, p := range g.GetProviders() {
		out = append(out, fmt.Sprintf("%d/%d", p.Id.GetNode(), p.Id.GetInstance()))
	}
	return out
}

func describeGroup(g *clientpb.GSGroup) string {
	if g == nil {
		return "no such group"
	}
	s := fmt.Sprintf("providers %v state %q queued %d", gsProviders(g), g.State, g.Queued)
	if p := g.Protocol; p != nil {
		s += fmt.Sprintf(" protocol type %d phase %d voters %v voted %v", p.Type, p.Phase, gsIDs(p.Voters), gsIDs(p.Voted))
	}
	return s
}

// waitGroup waits until every node's replica of a group satisfies cond.
func waitGroup(t *testing.T, c *lab.Cluster, nodes []uint32, group, what string, cond func(*clientpb.GSGroup) bool) {
	t.Helper()
	ctx := ctxFor(t, waitTimeout)
	for _, n := range nodes {
		var last string
		for {
			g, err := gsShow(ctx, c, n, group)
			if err == nil && cond(g) {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = describeGroup(g)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %d: group %s never had %s; last: %s", n, group, what, last)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// waitGroupIs waits until every node's replica of a group is idle with
// exactly these providers (join order) and this state value: the replicas
// agree.
func waitGroupIs(t *testing.T, c *lab.Cluster, nodes []uint32, group string, providers []string, state string) {
	t.Helper()
	waitGroup(t, c, nodes, group, fmt.Sprintf("providers %v, state %q, idle", providers, state), func(g *clientpb.GSGroup) bool {
		return g != nil && g.Protocol == nil && g.Queued == 0 && slices.Equal(gsProviders(g), providers) && string(g.State) == state
	})
}

// TestGroupsJoinReject (S-05): A, B, C on three agents are providers of an
// n-phase group with default vote REJECT; D asks to join and B votes
// REJECT. Every provider, and D, sees the join voted in phase 1 and then
// rejected with EXPLICIT_REJECT alone; the membership stays A, B, C on
// every node; D's token is dead; the group goes on without D.
func TestGroupsJoinReject(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))
	attrs := []string{"-group", "jr", "-phases", "n", "-time-limit", "30", "-default-vote", "reject"}
	a := joinGS(t, c, "A", 1, 1, attrs, nil)
	b := joinGS(t, c, "B", 2, 2, attrs, []string{"-votes", "join+3/9=reject"}, a)
	cc := joinGS(t, c, "C", 3, 3, attrs, nil, a, b)
	members := []string{"1/1", "2/2", "3/3"}
	waitGroupIs(t, c, ids(3), "jr", members, "")

	d := startGS(t, "D", c.Node(3).Socket, append([]string{"-instance", "9", "-name", "D"}, attrs...)...)
	if j := d.waitFor("joined", isEv("joined")); j.Err != "" {
		t.Fatalf("D: join: %s", j.Err)
	}
	for _, p := range []*gsProc{a, b, cc, d} {
		n := p.waitFor("n-phase join of 3/9", notif("nphase", "HA_GS_JOIN", "3/9"))
		expect(t, p.name, "n-phase phase", n.Phase, 1)
		expectList(t, p.name, "n-phase current membership", n.Current, members)
		r := p.waitFor("rejected join of 3/9", notif("rejected", "HA_GS_JOIN", "3/9"))
		expect(t, p.name, "rejected summary", r.Summary, "HA_GS_EXPLICIT_REJECT")
		expect(t, p.name, "rejected phases run", r.Phase, 1)
		expectList(t, p.name, "rejected current membership", r.Current, members)
		if r.Seq < n.Seq {
			t.Errorf("%s: rejected before its n-phase notification", p.name)
		}
		if got := p.find(notif("approved", "HA_GS_JOIN", "3/9")); len(got) > 0 {
			t.Errorf("%s: D's join approved too: %v", p.name, got)
		}
	}
	if v := b.waitFor("B's vote on D", and(isEv("vote"), func(e gsEvent) bool { return e.Vote == "reject" })); v.Err != "" {
		t.Errorf("B's REJECT vote failed: %s", v.Err)
	}
	waitGroupIs(t, c, ids(3), "jr", members, "")
	d.doErr("state 1 0 x", "HA_GS_BAD_MEMBER_TOKEN")

	// The group goes on without D.
	a.doOK("state n 30 after")
	for _, p := range []*gsProc{a, b, cc} {
		e := p.waitFor(`approved state "after"`, and(notif("approved", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("after")))
		expect(t, p.name, "summary", e.Summary, "HA_GS_EXPLICIT_APPROVE")
		expectList(t, p.name, "membership", e.Current, members)
	}
	waitGroupIs(t, c, ids(3), "jr", members, "after")
}

// TestGroupsBarrier (S-06, the 2-phase commit of examples/gs-barrier): A,
// B, C on three agents vote CONTINUE in phase 1 of a state change and
// APPROVE in phase 2. C holds its phase-1 vote: with A's and B's votes
// applied on every replica the protocol is still in phase 1 and nobody
// has a phase-2 notification (the barrier); once C votes, all three get
// phase 2 and then the approval, 2 phases run, and the state is set on
// every node. A second round that C answers with REJECT in phase 1 is
// aborted everywhere: no phase 2, the state is unchanged.
func TestGroupsBarrier(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))
	attrs := []string{"-group", "barrier", "-phases", "n", "-time-limit", "30", "-default-vote", "reject"}
	a := joinGS(t, c, "A", 1, 1, attrs, []string{"-votes", "state_value_change#1=continue"})
	b := joinGS(t, c, "B", 2, 1, attrs, []string{"-votes", "state_value_change#1=continue"}, a)
	cc := joinGS(t, c, "C", 3, 1, attrs, []string{"-votes", "state_value_change#1=wait"}, a, b)
	all := []*gsProc{a, b, cc}
	members := []string{"1/1", "2/1", "3/1"}
	waitGroupIs(t, c, ids(3), "barrier", members, "")

	phase := func(n int, value string) func(gsEvent) bool {
		return and(notif("nphase", "HA_GS_STATE_VALUE_CHANGE"), withPhase(n), withProposedState(value))
	}
	a.doOK("state n 30 round-1")
	for _, p := range all {
		e := p.waitFor("phase 1 of round-1", phase(1, "round-1"))
		expect(t, p.name, "phase 1 current state", val(e.CurrentState), "")
		expect(t, p.name, "phase 1 time limit", e.TimeLimit, 30)
		expectList(t, p.name, "phase 1 membership", e.Current, members)
	}
	for _, p := range []*gsProc{a, b} {
		if v := p.waitFor("its CONTINUE vote", and(isEv("vote"), withPhase(1), func(e gsEvent) bool { return e.Protocol == "HA_GS_STATE_VALUE_CHANGE" })); v.Err != "" || v.Vote != "continue" {
			t.Fatalf("%s: phase-1 vote: %v", p.name, v)
		}
	}
	// The barrier: with both votes applied on every replica the protocol
	// waits for C alone, and no phase 2 has begun anywhere.
	waitGroup(t, c, ids(3), "barrier", "A's and B's phase-1 votes", func(g *clientpb.GSGroup) bool {
		p := g.GetProtocol()
		return p != nil && p.Phase == 1 && slices.Contains(gsIDs(p.Voted), "1/1") && slices.Contains(gsIDs(p.Voted), "2/1")
	})
	for _, n := range ids(3) {
		g, err := gsShow(ctxFor(t, 10*time.Second), c, n, "barrier")
		if err != nil {
			t.Fatal(err)
		}
		p := g.GetProtocol()
		if p == nil || p.Phase != 1 || !sameSet(gsIDs(p.Voters), members) || !sameSet(gsIDs(p.Voted), []string{"1/1", "2/1"}) {
			t.Errorf("node %d: with C's vote held the protocol is %s, want phase 1 waiting for 3/1", n, describeGroup(g))
		}
	}
	for _, p := range all {
		if got := p.find(phase(2, "round-1")); len(got) > 0 {
			t.Errorf("%s: phase 2 began before C voted: %v", p.name, got)
		}
	}
	cc.doOK("vote continue")
	for _, p := range all {
		n2 := p.waitFor("phase 2 of round-1", phase(2, "round-1"))
		ok := p.waitFor("approved round-1", and(notif("approved", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("round-1")))
		expect(t, p.name, "phases run", ok.Phase, 2)
		expect(t, p.name, "summary", ok.Summary, "HA_GS_EXPLICIT_APPROVE")
		expect(t, p.name, "phase 2 summary", n2.Summary, "0")
		if n2.Seq > ok.Seq {
			t.Errorf("%s: approved before phase 2", p.name)
		}
	}
	waitGroupIs(t, c, ids(3), "barrier", members, "round-1")

	// Round 2: C votes REJECT in phase 1: the commit is aborted everywhere.
	a.doOK("state n 30 round-2")
	cc.waitFor("phase 1 of round-2", phase(1, "round-2"))
	cc.doOK("vote reject")
	for _, p := range all {
		r := p.waitFor("rejected round-2", and(notif("rejected", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("round-2")))
		expect(t, p.name, "rejected summary", r.Summary, "HA_GS_EXPLICIT_REJECT")
		expect(t, p.name, "rejected phases run", r.Phase, 1)
		expect(t, p.name, "rejected current state", val(r.CurrentState), "round-1")
		// Notifications reach each client in order: a phase 2 would
		// have come before the rejection.
		if got := p.find(phase(2, "round-2")); len(got) > 0 {
			t.Errorf("%s: a rejected phase 1 was followed by phase 2: %v", p.name, got)
		}
	}
	waitGroupIs(t, c, ids(3), "barrier", members, "round-1")
}

// TestGroupsProviderKilledMidVote (S-09, and S-18's n-phase variant with
// an exit for the goodbye): C's process is SIGKILLed in phase 1 of an
// n-phase state change, after A and B voted APPROVE. With default vote
// REJECT the change is rejected on A and B with DEFAULT_REJECT |
// PROVIDER_FAILED (no time-out: the group does not wait for the 60 s
// limit), then a failure leave removes C (leave reason FAILED_LEAVE) and
// the state is unchanged. In a second group with default vote APPROVE a
// provider that exits by itself on seeing the n-phase notification of a
// message makes it approved with DEFAULT_APPROVE | PROVIDER_FAILED, the
// message delivered, and is then removed the same way.
func TestGroupsProviderKilledMidVote(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))

	attrs := []string{"-group", "killed", "-phases", "n", "-time-limit", "60", "-default-vote", "reject"}
	a := joinGS(t, c, "A", 1, 1, attrs, nil)
	b := joinGS(t, c, "B", 2, 1, attrs, nil, a)
	victim := joinGS(t, c, "C", 3, 1, attrs, []string{"-votes", "state_value_change=wait"}, a, b)
	a.doOK("state 1 0 before")
	waitGroupIs(t, c, ids(3), "killed", []string{"1/1", "2/1", "3/1"}, "before")

	a.doOK("state n 60 doomed")
	victim.waitFor("phase 1 of the state change", notif("nphase", "HA_GS_STATE_VALUE_CHANGE"))
	waitGroup(t, c, ids(3), "killed", "A's and B's votes", func(g *clientpb.GSGroup) bool {
		p := g.GetProtocol()
		return p != nil && sameSet(gsIDs(p.Voted), []string{"1/1", "2/1"})
	})
	victim.kill()
	for _, p := range []*gsProc{a, b} {
		r := p.waitFor("rejected state change", and(notif("rejected", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("doomed")))
		expect(t, p.name, "rejected summary", r.Summary, "HA_GS_DEFAULT_REJECT|HA_GS_PROVIDER_FAILED")
		fl := p.waitFor("approved failure leave of 3/1", notif("approved", "HA_GS_FAILURE_LEAVE", "3/1"))
		expectList(t, p.name, "failure leave info", fl.LeaveInfo, []string{"HA_GS_PROVIDER_FAILED_LEAVE:0"})
		expectList(t, p.name, "membership after the failure leave", fl.Proposed, []string{"1/1", "2/1"})
		expect(t, p.name, "state after the failure leave", val(fl.CurrentState), "before")
		if fl.Seq < r.Seq {
			t.Errorf("%s: the failure leave came before the rejection it follows", p.name)
		}
	}
	waitGroupIs(t, c, ids(3), "killed", []string{"1/1", "2/1"}, "before")

	// A provider that exits in the middle of a vote, default APPROVE.
	attrs = []string{"-group", "exits", "-phases", "n", "-time-limit", "60", "-default-vote", "approve"}
	a2 := joinGS(t, c, "A2", 1, 2, attrs, nil)
	b2 := joinGS(t, c, "B2", 2, 2, attrs, nil, a2)
	x := joinGS(t, c, "X", 3, 2, attrs, []string{"-votes", "provider_message=exit"}, a2, b2)
	a2.doOK("msg n 60 hello")
	if code := x.waitExit(); code != 3 {
		t.Fatalf("X exited with status %d, want 3 (its exit-mid-vote rule); events:\n%s", code, x.dump())
	}
	for _, p := range []*gsProc{a2, b2} {
		e := p.waitFor("approved message", notif("approved", "HA_GS_PROVIDER_MESSAGE"))
		expect(t, p.name, "approved summary", e.Summary, "HA_GS_DEFAULT_APPROVE|HA_GS_PROVIDER_FAILED")
		expect(t, p.name, "message", val(e.Message), "hello")
		fl := p.waitFor("approved failure leave of 3/2", notif("approved", "HA_GS_FAILURE_LEAVE", "3/2"))
		expectList(t, p.name, "failure leave info", fl.LeaveInfo, []string{"HA_GS_PROVIDER_FAILED_LEAVE:0"})
	}
	waitGroupIs(t, c, ids(3), "exits", []string{"1/2", "2/2"}, "")
}

// phaseBound is how long a test waits for a protocol whose 1 s phase limit
// a provider lets expire: the limit, and a margin (far above the few
// milliseconds it takes) for a loaded machine. It is the bound of the
// acceptance point "a provider that stops dispatching cannot stall its
// group beyond the phase time limit".
const phaseBound = time.Second + 10*time.Second

// TestGroupsTimeLimit (S-07, S-08, and the acceptance point "a provider
// that stops dispatching cannot stall its group beyond the phase time
// limit"): C joins, then stops dispatching (its library still reads the
// agent, but no callback runs, so it never votes). A proposes an n-phase
// message with a 1 s phase limit. With default vote REJECT it is rejected
// on A and B with DEFAULT_REJECT | TIME_LIMIT_EXCEEDED no sooner than 1 s
// after the proposal (and not much later), then an announcement
// TIME_LIMIT_EXCEEDED lists C; with default APPROVE it is approved with
// DEFAULT_APPROVE | TIME_LIMIT_EXCEEDED and the message, and C is
// announced likewise. When C dispatches again it gets the stale n-phase
// notification (its vote is HA_GS_VOTE_NOT_EXPECTED), the outcome and the
// announcement naming itself; the group then runs the next protocol.
func TestGroupsTimeLimit(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))
	for _, tc := range []struct {
		group, dv, outcome, summary string
		instance                    int
	}{
		{"tardy-reject", "reject", "rejected", "HA_GS_DEFAULT_REJECT|HA_GS_TIME_LIMIT_EXCEEDED", 1},
		{"tardy-approve", "approve", "approved", "HA_GS_DEFAULT_APPROVE|HA_GS_TIME_LIMIT_EXCEEDED", 2},
	} {
		t.Run(tc.group, func(t *testing.T) {
			attrs := []string{"-group", tc.group, "-phases", "n", "-time-limit", "30", "-default-vote", tc.dv}
			a := joinGS(t, c, "A", 1, tc.instance, attrs, nil)
			b := joinGS(t, c, "B", 2, tc.instance, attrs, nil, a)
			tardy := joinGS(t, c, "C", 3, tc.instance, attrs, nil, a, b)
			tardyID := fmt.Sprintf("3/%d", tc.instance)
			tardy.doOK("stop")

			began := time.Now()
			a.doOK("msg n 1 ping")
			var outcome gsEvent
			for _, p := range []*gsProc{a, b} {
				n := p.waitFor("n-phase message", notif("nphase", "HA_GS_PROVIDER_MESSAGE"))
				expect(t, p.name, "phase time limit", n.TimeLimit, 1)
				outcome = p.waitWithin(phaseBound, "the message's outcome", notif(tc.outcome, "HA_GS_PROVIDER_MESSAGE"))
				expect(t, p.name, "summary", outcome.Summary, tc.summary)
				expect(t, p.name, "message", val(outcome.Message), "ping")
				an := p.waitFor("the tardy announcement", isEv("announcement"))
				expect(t, p.name, "announcement summary", an.Summary, "HA_GS_TIME_LIMIT_EXCEEDED")
				expectList(t, p.name, "announced", an.Announcement, []string{tardyID})
				if an.Seq < outcome.Seq {
					t.Errorf("%s: the announcement came before the outcome", p.name)
				}
			}
			took := time.Since(began)
			t.Logf("%s: %s %v after the proposal (phase limit 1 s)", tc.group, tc.outcome, took)
			if took < time.Second {
				t.Errorf("the phase closed after %v, before its 1 s limit", took)
			}
			if got := tardy.find(notif("nphase", "HA_GS_PROVIDER_MESSAGE")); len(got) > 0 {
				t.Fatalf("C dispatched while stopped: %v", got)
			}

			// C dispatches again and learns what happened without it. Its
			// vote is checked against its node's replica: once that has
			// closed the protocol too, it is refused.
			waitGroup(t, c, ids(3), tc.group, "the protocol closed", func(g *clientpb.GSGroup) bool { return g != nil && g.Protocol == nil })
			tardy.doOK("dispatch")
			tardy.waitFor("the stale n-phase notification", notif("nphase", "HA_GS_PROVIDER_MESSAGE"))
			if v := tardy.waitFor("its late vote", and(isEv("vote"), func(e gsEvent) bool { return e.Protocol == "HA_GS_PROVIDER_MESSAGE" })); v.Err != "HA_GS_VOTE_NOT_EXPECTED" {
				t.Errorf("C's late vote returned %q, want HA_GS_VOTE_NOT_EXPECTED", v.Err)
			}
			o := tardy.waitFor("the outcome", notif(tc.outcome, "HA_GS_PROVIDER_MESSAGE"))
			expect(t, "C", "summary", o.Summary, tc.summary)
			an := tardy.waitFor("the announcement", isEv("announcement"))
			expectList(t, "C", "announced", an.Announcement, []string{tardyID})

			// Nothing is left hanging: the next protocol runs.
			a.doOK("state 1 0 next")
			for _, p := range []*gsProc{a, b, tardy} {
				p.waitFor(`approved state "next"`, and(notif("approved", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("next")))
			}
			waitGroupIs(t, c, ids(3), tc.group, []string{"1/" + fmt.Sprint(tc.instance), "2/" + fmt.Sprint(tc.instance), tardyID}, "next")
		})
	}
}

// TestGroupsStalledClient: the acceptance point "a provider that stops
// dispatching cannot stall its group beyond the phase time limit, nor the
// agent at all", with a client that stops entirely (SIGSTOP: it does not
// even read its connection). While it is stopped its group's n-phase
// protocol ends at the 1 s limit (rejected, TIME_LIMIT_EXCEEDED), another
// group served by the same agent runs n-phase protocols, and the CLI gets
// answers. Then the group floods one-phase messages: the agent cuts the
// stopped client off rather than queue without bound, and the group sees
// it fail out (FAILURE_LEAVE, FAILED_LEAVE). Continued, the client finds
// its connection gone (HA_GS_NOT_OK).
func TestGroupsStalledClient(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 2, Token: gsToken})
	waitView(t, c, ids(2), ids(2))
	attrs := []string{"-group", "stall", "-phases", "n", "-time-limit", "1", "-default-vote", "reject"}
	a := joinGS(t, c, "A", 1, 1, attrs, nil)
	s := joinGS(t, c, "S", 2, 1, attrs, nil, a)
	other := []string{"-group", "other", "-phases", "n", "-time-limit", "30", "-default-vote", "reject"}
	p := joinGS(t, c, "P", 2, 1, other, nil)
	q := joinGS(t, c, "Q", 1, 1, other, nil, p)

	s.stop()
	began := time.Now()
	a.doOK("state n 1 while-stopped")
	r := a.waitWithin(phaseBound, "the state change's outcome", func(e gsEvent) bool {
		return (e.Ev == "rejected" || e.Ev == "approved") && e.Protocol == "HA_GS_STATE_VALUE_CHANGE"
	})
	if st := s.procState(); st != "T" {
		t.Fatalf("S is no longer stopped (state %s): the test is void", st)
	}
	expect(t, "A", "outcome", r.Ev, "rejected")
	expect(t, "A", "summary", r.Summary, "HA_GS_DEFAULT_REJECT|HA_GS_TIME_LIMIT_EXCEEDED")
	an := a.waitFor("the tardy announcement", isEv("announcement"))
	expectList(t, "A", "announced", an.Announcement, []string{"2/1"})
	t.Logf("rejected %v after the proposal, with S stopped", time.Since(began))
	if time.Since(began) < time.Second {
		t.Errorf("the phase closed before its 1 s limit")
	}

	// Node 2's agent serves its other clients and the operator meanwhile.
	p.doOK("state n 30 unaffected")
	for _, m := range []*gsProc{p, q} {
		e := m.waitFor("approved state", and(notif("approved", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("unaffected")))
		expect(t, m.name, "summary", e.Summary, "HA_GS_EXPLICIT_APPROVE")
	}
	out, errOut, code := runCLI(t, nil, "groups", "show", "stall", "--socket", c.Node(2).Socket)
	if code != 0 || !strings.Contains(out, "stall") {
		t.Errorf("groups show on node 2 with S stopped: exit %d: %s%s", code, out, errOut)
	}

	// A flood the stopped client cannot read: its agent cuts it off (its
	// queue holds at most 16 MiB), and it fails out of the group. The
	// flood stops when A sees that failure leave.
	began = time.Now()
	flood := a.send("flood 2000 65536")
	fl := a.waitWithin(2*waitTimeout, "S's failure leave", notif("approved", "HA_GS_FAILURE_LEAVE", "2/1"))
	expectList(t, "A", "leave info", fl.LeaveInfo, []string{"HA_GS_PROVIDER_FAILED_LEAVE:0"})
	expectList(t, "A", "membership after", fl.Proposed, []string{"1/1"})
	t.Logf("S cut off and failed out %v after the flood began", time.Since(began))
	if e := a.waitResult(flood, waitTimeout); e.Err != "" {
		t.Errorf("flood: %s %s", e.Err, e.Info)
	} else {
		t.Logf("flood: %s", e.Info)
	}
	waitGroupIs(t, c, ids(2), "stall", []string{"1/1"}, "")
	p.doOK("state n 30 still-served")
	for _, m := range []*gsProc{p, q} {
		m.waitFor("approved state", and(notif("approved", "HA_GS_STATE_VALUE_CHANGE"), withProposedState("still-served")))
	}

	s.signal(syscall.SIGCONT)
	if e := s.waitFor("the end of its connection", isEv("run_end")); e.Err != "HA_GS_NOT_OK" {
		t.Errorf("S's dispatch ended with %q, want HA_GS_NOT_OK", e.Err)
	}
	s.doErr("state 1 0 x", "HA_GS_NOT_OK")
}

// TestGroupsSubscribers (S-31, S-32, and the subscribers' side of S-05
// and S-10): subscribers on all three nodes, with no provider on theirs
// but one, follow a group from creation to dissolution. A subscription to
// a group that does not exist fails with a delayed UNKNOWN_GROUP. X (state
// only) sees its initial snapshot and the approved state changes, never
// membership; Y (membership only) sees joins and leaves with the full
// membership, never state; Z (all, deltas only) both, without full lists
// after the snapshot. Nobody hears of a rejected join or a rejected state
// change. When the last provider leaves, every subscription gets DISSOLVED
// and its token is dead. A subscriber of the host-membership group sees
// node 3 leave.
func TestGroupsSubscribers(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))

	none := startGS(t, "N", c.Node(3).Socket, "-group", "subs", "-subscribe", "all")
	if e := none.waitFor("subscribed", isEv("subscribed")); e.Err != "" {
		t.Fatalf("subscribe: %s", e.Err)
	}
	de := none.waitFor("delayed error", isEv("delayed_error"))
	expect(t, "N", "delayed error", de.Err, "HA_GS_UNKNOWN_GROUP")
	expect(t, "N", "delayed error protocol", de.Protocol, "HA_GS_SUBSCRIPTION")
	none.doErr("unsubscribe", "HA_GS_BAD_MEMBER_TOKEN")

	attrs := []string{"-group", "subs", "-phases", "n", "-time-limit", "30", "-default-vote", "reject"}
	// A votes by hand on state changes, and rejects D's join (3/5).
	a := joinGS(t, c, "A", 1, 1, attrs, []string{"-votes", "join+3/5=reject,state_value_change=wait"})
	a.doOK("state 1 0 v0")
	waitGroupIs(t, c, ids(3), "subs", []string{"1/1"}, "v0")

	x := startGS(t, "X", c.Node(3).Socket, "-group", "subs", "-subscribe", "state")
	y := startGS(t, "Y", c.Node(2).Socket, "-group", "subs", "-subscribe", "membership")
	z := startGS(t, "Z", c.Node(1).Socket, "-group", "subs", "-subscribe", "all,deltas-only")
	host := startGS(t, "H", c.Node(1).Socket, "-group", "ha_gs_host_membership", "-subscribe", "membership")
	subs := []*gsProc{x, y, z}
	for _, s := range append(subs, host) {
		if e := s.waitFor("subscribed", isEv("subscribed")); e.Err != "" {
			t.Fatalf("%s: subscribe: %s", s.name, e.Err)
		}
		s.waitFor("the initial snapshot", isEv("subscription"))
	}

	b := joinGS(t, c, "B", 2, 1, attrs, nil, a)
	stateChange := func(value, vote, outcome string) {
		t.Helper()
		b.doOK("state n 30 " + value)
		a.waitFor("phase 1 of "+value, and(notif("nphase", "HA_GS_STATE_VALUE_CHANGE"), withProposedState(value)))
		a.doOK("vote " + vote)
		for _, p := range []*gsProc{a, b} {
			p.waitFor(outcome+" "+value, and(notif(outcome, "HA_GS_STATE_VALUE_CHANGE"), withProposedState(value)))
		}
	}
	stateChange("v1", "approve", "approved")
	// A rejected join and a rejected state change: subscribers never
	// hear of them.
	d := startGS(t, "D", c.Node(3).Socket, append([]string{"-instance", "5", "-name", "D"}, attrs...)...)
	for _, p := range []*gsProc{a, b, d} {
		p.waitFor("rejected join of 3/5", notif("rejected", "HA_GS_JOIN", "3/5"))
	}
	stateChange("never", "reject", "rejected")
	b.kill()
	a.waitFor("B's failure leave", notif("approved", "HA_GS_FAILURE_LEAVE", "2/1"))
	a.doOK("leave 1 0 7")
	a.waitFor("its leave", notif("approved", "HA_GS_LEAVE", "1/1"))
	for _, s := range subs {
		s.waitFor("DISSOLVED", func(e gsEvent) bool { return e.Ev == "subscription" && strings.Contains(e.SubType, "DISSOLVED") })
	}

	type sub struct {
		typ, state     string
		full, changing []string
	}
	got := func(p *gsProc) []sub {
		var out []sub
		for _, e := range p.find(isEv("subscription")) {
			out = append(out, sub{e.SubType, val(e.State), e.Full, e.Changing})
		}
		return out
	}
	for _, tc := range []struct {
		p    *gsProc
		want []sub
	}{
		{x, []sub{
			{"INITIAL|STATE", "v0", nil, nil},
			{"STATE", "v1", nil, nil},
			{"DISSOLVED", "<nil>", nil, nil},
		}},
		{y, []sub{
			{"INITIAL", "<nil>", []string{"1/1"}, nil},
			{"DELTA_JOIN", "<nil>", []string{"1/1", "2/1"}, []string{"2/1"}},
			{"DELTA_LEAVE", "<nil>", []string{"1/1"}, []string{"2/1"}},
			{"DELTA_LEAVE", "<nil>", nil, []string{"1/1"}},
			{"DISSOLVED", "<nil>", nil, nil},
		}},
		{z, []sub{
			{"INITIAL|STATE", "v0", []string{"1/1"}, nil},
			{"DELTA_JOIN", "<nil>", nil, []string{"2/1"}},
			{"STATE", "v1", nil, nil},
			{"DELTA_LEAVE", "<nil>", nil, []string{"2/1"}},
			{"DELTA_LEAVE", "<nil>", nil, []string{"1/1"}},
			{"DISSOLVED", "<nil>", nil, nil},
		}},
	} {
		if g := got(tc.p); fmt.Sprint(g) != fmt.Sprint(tc.want) {
			t.Errorf("%s saw:\n  %v\nwant\n  %v", tc.p.name, g, tc.want)
		}
		tc.p.doErr("unsubscribe", "HA_GS_BAD_MEMBER_TOKEN")
	}
	if g, err := gsShow(ctxFor(t, 10*time.Second), c, 1, "subs"); err != nil || g != nil {
		t.Errorf("the dissolved group is still shown: %s, %v", describeGroup(g), err)
	}

	// The host-membership group: node 3 goes.
	hs := host.find(isEv("subscription"))
	expectList(t, "H", "initial host membership", hs[0].Full, []string{"1/0", "2/0", "3/0"})
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	e := host.waitFor("node 3's departure", func(e gsEvent) bool {
		return e.Ev == "subscription" && strings.Contains(e.SubType, "DELTA_LEAVE")
	})
	expectList(t, "H", "leaving", e.Changing, []string{"3/0"})
	expectList(t, "H", "host membership after", e.Full, []string{"1/0", "2/0"})
}

// TestGroupsPartitionMerge (S-38, U-13; network namespaces): A, B, C on
// three nodes in one group. Partitioned {1,2} | {3}, each side fails the
// other's providers out (one batched failure leave each) and goes on with
// its own copy: the sides set different state values. Healed, the copy
// with more providers wins on every node: C alone gets a merge
// notification GROUP_DISSOLVED naming A and B, carrying its lost state and
// the winner's, and its token is dead; a subscriber on node 3 gets
// DISSOLVED; A and B see nothing. C joins again and all three nodes agree
// on the group.
func TestGroupsPartitionMerge(t *testing.T) {
	needNetns(t)
	t.Parallel()
	c := startNetns(t, lab.Options{Nodes: 3, Token: gsToken})
	waitView(t, c, ids(3), ids(3))
	attrs := []string{"-group", "merge", "-phases", "1"}
	a := joinGS(t, c, "A", 1, 1, attrs, nil)
	b := joinGS(t, c, "B", 2, 1, attrs, nil, a)
	cc := joinGS(t, c, "C", 3, 1, attrs, nil, a, b)
	a.doOK("state 1 0 before")
	waitGroupIs(t, c, ids(3), "merge", []string{"1/1", "2/1", "3/1"}, "before")
	sub := startGS(t, "S3", c.Node(3).Socket, "-group", "merge", "-subscribe", "all")
	sub.waitFor("the initial snapshot", isEv("subscription"))

	if err := c.Partition([]uint32{1, 2}, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	waitView(t, c, []uint32{3}, []uint32{3})
	// The events that follow the partition, by process.
	parted := map[*gsProc]int{}
	for _, p := range []*gsProc{a, b} {
		fl := p.waitFor("C's failure leave", notif("approved", "HA_GS_FAILURE_LEAVE", "3/1"))
		expectList(t, p.name, "leave info", fl.LeaveInfo, []string{"HA_GS_PROVIDER_FAILED_LEAVE:0"})
		parted[p] = fl.Seq
	}
	fl := cc.waitFor("A's and B's failure leave", notif("approved", "HA_GS_FAILURE_LEAVE"))
	expectList(t, "C", "failing (one batch)", fl.Changing, []string{"1/1", "2/1"})
	expectList(t, "C", "leave info", fl.LeaveInfo, []string{"HA_GS_PROVIDER_FAILED_LEAVE:0", "HA_GS_PROVIDER_FAILED_LEAVE:0"})
	parted[cc] = fl.Seq
	a.doOK("state 1 0 side-a")
	cc.doOK("state 1 0 side-c")
	waitGroupIs(t, c, []uint32{1, 2}, "merge", []string{"1/1", "2/1"}, "side-a")
	waitGroupIs(t, c, []uint32{3}, "merge", []string{"3/1"}, "side-c")

	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, ids(3), ids(3))
	m := cc.waitFor("the merge notification", isEv("merge"))
	expect(t, "C", "merge summary", m.Summary, "HA_GS_GROUP_DISSOLVED")
	expectList(t, "C", "merging providers", m.Merging, []string{"1/1", "2/1"})
	expect(t, "C", "merge state (its lost value)", val(m.MergeState), "side-c")
	expect(t, "C", "winner state", val(m.WinnerState), "side-a")
	sub.waitFor("DISSOLVED", func(e gsEvent) bool { return e.Ev == "subscription" && strings.Contains(e.SubType, "DISSOLVED") })
	waitGroupIs(t, c, ids(3), "merge", []string{"1/1", "2/1"}, "side-a")
	cc.doErr("state 1 0 x", "HA_GS_BAD_MEMBER_TOKEN")

	cc.doOK("join")
	for _, p := range []*gsProc{a, b, cc} {
		// Not C's first join, before the partition.
		j := p.waitFor("C's new join", and(notif("approved", "HA_GS_JOIN", "3/1"), func(e gsEvent) bool { return e.Seq > parted[p] }))
		expectList(t, p.name, "membership", j.Proposed, []string{"1/1", "2/1", "3/1"})
		expect(t, p.name, "state", val(j.CurrentState), "side-a")
	}
	waitGroupIs(t, c, ids(3), "merge", []string{"1/1", "2/1", "3/1"}, "side-a")
	// The winners' notifications are ordered: a merge notification for
	// them would have come before C's join.
	for _, p := range []*gsProc{a, b} {
		if got := p.find(isEv("merge")); len(got) > 0 {
			t.Errorf("%s, of the winning instance, got a merge notification: %v", p.name, got)
		}
	}
}
