package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conclave/conclave/gs"
	"github.com/conclave/conclave/internal/lab"
)

// gsMember is a GS client of the smoke test: a provider that votes APPROVE
// in every phase and writes down what its callbacks see.
type gsMember struct {
	c   *gs.Client
	tok gs.Token
	mu  sync.Mutex
	log []string
}

func (m *gsMember) add(s string) {
	m.mu.Lock()
	m.log = append(m.log, s)
	m.mu.Unlock()
}

func (m *gsMember) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

func newGSMember(t *testing.T, socket string) *gsMember {
	t.Helper()
	m := &gsMember{}
	c, err := gs.Init(gs.Callbacks{DelayedError: func(_ *gs.Client, n *gs.DelayedErrorNotification) {
		m.add(fmt.Sprintf("delayed error %s %v", n.Protocol, n.ReturnCode))
	}}, gs.WithSocket(socket))
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; c.Quit() })
	return m
}

func (m *gsMember) callbacks(t *testing.T) gs.ProviderCallbacks {
	return gs.ProviderCallbacks{
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			m.add(fmt.Sprintf("n-phase %s phase %d changing %v", n.Protocol, n.Proposal.Phase.Number, n.Proposal.ChangingMembership))
			if err := c.Vote(n.Token, gs.VoteApprove, nil, nil, gs.NullVote); err != nil {
				t.Errorf("vote: %v", err)
			}
		},
		Approved: func(_ *gs.Client, n *gs.ApprovedNotification) {
			m.add(fmt.Sprintf("approved %s %s membership %v state %q", n.Protocol, n.Summary, n.Proposal.ProposedMembership, n.Proposal.ProposedState))
		},
		Rejected: func(_ *gs.Client, n *gs.RejectedNotification) {
			m.add(fmt.Sprintf("rejected %s %s", n.Protocol, n.Summary))
		},
	}
}

func (m *gsMember) wait(t *testing.T, line string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !slices.Contains(m.lines(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q; callbacks saw:\n%s", line, strings.Join(m.lines(), "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGroupsSmoke: two providers on two of three agents join an n-phase
// group (the second join is voted APPROVE by both), change its state, and
// `conclave groups show` on the third node, which has no client, shows it.
func TestGroupsSmoke(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3})
	waitView(t, c, ids(3), ids(3))

	// A live trace on node 3, which has no client, from before the group
	// exists.
	watch := startWatch(t, c.Node(3).Socket, "smoke")
	watch.wait(t, "smoke: no such group (yet)")

	attrs := gs.Attributes{GroupName: "smoke", NumPhases: gs.NPhase, TimeLimit: 30, DefaultVote: gs.VoteReject}
	a := newGSMember(t, c.Node(1).Socket)
	b := newGSMember(t, c.Node(2).Socket)
	if n, err := b.c.NodeNumber(); err != nil || n != 2 {
		t.Errorf("node number on node 2: %d, %v", n, err)
	}
	var err error
	if a.tok, err = a.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 1, LocalName: "alpha", Callbacks: a.callbacks(t)}); err != nil {
		t.Fatal(err)
	}
	a.wait(t, `approved HA_GS_JOIN HA_GS_EXPLICIT_APPROVE membership [1/1] state ""`)
	if b.tok, err = b.c.Join(gs.JoinRequest{Attributes: attrs, Instance: 7, LocalName: "beta", Callbacks: b.callbacks(t)}); err != nil {
		t.Fatal(err)
	}
	joined := `approved HA_GS_JOIN HA_GS_EXPLICIT_APPROVE membership [1/1 2/7] state ""`
	a.wait(t, joined)
	b.wait(t, joined)
	for _, m := range []*gsMember{a, b} {
		if !slices.Contains(m.lines(), "n-phase HA_GS_JOIN phase 1 changing [2/7]") {
			t.Errorf("no n-phase notification for the second join: %q", m.lines())
		}
	}

	// A one-phase state change, then an n-phase one voted by both.
	if err := a.c.ChangeStateValue(a.tok, gs.StateChangeRequest{NumPhases: gs.OnePhase, NewState: []byte("ready")}); err != nil {
		t.Fatal(err)
	}
	b.wait(t, `approved HA_GS_STATE_VALUE_CHANGE 0 membership [1/1 2/7] state "ready"`)
	if err := b.c.ChangeStateValue(b.tok, gs.StateChangeRequest{NumPhases: gs.NPhase, TimeLimit: 30, NewState: []byte("steady")}); err != nil {
		t.Fatal(err)
	}
	steady := `approved HA_GS_STATE_VALUE_CHANGE HA_GS_EXPLICIT_APPROVE membership [1/1 2/7] state "steady"`
	a.wait(t, steady)
	b.wait(t, steady)

	for _, want := range []string{
		"smoke: N_PHASE HA_GS_JOIN phase 1 changing [2/7] → 1/1 2/7",
		"smoke: vote 2/7 HA_GS_VOTE_APPROVE phase 1 of #2",
		"smoke: APPROVED HA_GS_JOIN phases 1 changing [2/7] membership [1/1 2/7] summary HA_GS_EXPLICIT_APPROVE → 1/1 2/7",
		`smoke: APPROVED HA_GS_STATE_VALUE_CHANGE phases 1 state "steady" membership [1/1 2/7] summary HA_GS_EXPLICIT_APPROVE → 1/1 2/7`,
	} {
		watch.wait(t, want)
	}

	// The operator's view from node 3, which has no client.
	env := []string{"CONCLAVE_SOCKET=" + c.Node(3).Socket}
	out, errOut, code := runCLI(t, env, "groups", "show", "smoke")
	if code != 0 {
		t.Fatalf("groups show: exit %d: %s", code, errOut)
	}
	t.Logf("conclave groups show smoke:\n%s", out)
	for _, want := range []string{"Group:            smoke", "HA_GS_N_PHASE, time limit 30 s", "HA_GS_VOTE_REJECT",
		`State value:      "steady" (6 bytes)`, "Protocol:         idle", "Subscribers:      0 on this node"} {
		if !strings.Contains(out, want) {
			t.Errorf("groups show lacks %q:\n%s", want, out)
		}
	}
	provs := out[strings.Index(out, "Providers"):]
	if i, j := strings.Index(provs, "alpha"), strings.Index(provs, "beta"); i < 0 || j < 0 || i > j {
		t.Errorf("providers not in join order:\n%s", out)
	}
	out, errOut, code = runCLI(t, env, "groups", "show", "smoke", "--json")
	if code != 0 {
		t.Fatalf("groups show --json: exit %d: %s", code, errOut)
	}
	var g struct {
		Name      string `json:"name"`
		Providers []struct {
			Node      uint32 `json:"node"`
			Instance  int32  `json:"instance"`
			LocalName string `json:"local_name"`
		} `json:"providers"`
		State struct {
			Text *string `json:"text"`
			Hex  string  `json:"hex"`
		} `json:"state"`
		Protocol *json.RawMessage `json:"protocol"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("groups show --json: %v\n%s", err, out)
	}
	if g.Name != "smoke" || len(g.Providers) != 2 || g.Providers[0].Node != 1 || g.Providers[1].Instance != 7 ||
		g.State.Text == nil || *g.State.Text != "steady" || g.State.Hex != "737465616479" || g.Protocol != nil {
		t.Errorf("groups show --json: %s", out)
	}
	out, _, code = runCLI(t, env, "groups", "list")
	if code != 0 || !strings.Contains(out, "smoke") {
		t.Errorf("groups list: exit %d:\n%s", code, out)
	}
	if _, _, code := runCLI(t, env, "groups", "show", "nosuch"); code != 2 {
		t.Errorf("groups show of a missing group: exit %d, want 2", code)
	}
}

// cliWatch is a running `conclave groups watch`.
type cliWatch struct {
	mu  sync.Mutex
	out strings.Builder
}

func (w *cliWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func (w *cliWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// wait waits for a line ending in suffix (lines start with a time and a
// ring id).
func (w *cliWatch) wait(t *testing.T, suffix string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, l := range strings.Split(w.text(), "\n") {
			if strings.HasSuffix(l, suffix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups watch printed no line ending in %q:\n%s", suffix, w.text())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startWatch(t *testing.T, socket, group string) *cliWatch {
	t.Helper()
	w := &cliWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "groups", "watch", group, "--socket", socket)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		t.Logf("conclave groups watch %s:\n%s", group, w.text())
	})
	return w
}
