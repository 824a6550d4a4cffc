package e2e

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/lab"
)

// statusJSON is what a script reads from `conclave status --json`; the
// test decodes into maps to check the key names themselves.
type statusJSON struct {
	NodeID      uint32   `json:"node_id"`
	ClusterName string   `json:"cluster_name"`
	RingID      ringID   `json:"ring_id"`
	Members     []uint32 `json:"members"`
	State       string   `json:"state"`
	Links       []struct {
		Node uint32 `json:"node"`
		Link uint32 `json:"link"`
		Up   bool   `json:"up"`
	} `json:"links"`
}

func (r *ringID) UnmarshalJSON(b []byte) error {
	var v struct {
		Rep uint32 `json:"rep"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = ringID{v.Rep, v.Seq}
	return nil
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// cliStatus runs `conclave status --json --socket` for node id and checks
// the stable keys of its JSON shape.
func cliStatus(t *testing.T, c *lab.Cluster, id uint32) statusJSON {
	t.Helper()
	out, errOut, code := runCLI(t, nil, "status", "--json", "--socket", c.Node(id).Socket)
	if code != 0 {
		t.Fatalf("conclave status --json (node %d): exit status %d: %s", id, code, errOut)
	}
	checkStatusKeys(t, out)
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("node %d: status JSON: %v\n%s", id, err, out)
	}
	return s
}

func checkStatusKeys(t *testing.T, out string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"node_id", "cluster_name", "ring_id", "members", "state", "links"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status JSON has no key %q (keys: %v)", k, keys(m))
		}
	}
	if ring, ok := m["ring_id"].(map[string]any); !ok {
		t.Errorf("status JSON: ring_id is %T, want an object", m["ring_id"])
	} else if got := keys(ring); !slices.Equal(got, []string{"rep", "seq"}) {
		t.Errorf("status JSON: ring_id keys %v, want [rep seq]", got)
	}
	if _, ok := m["members"].([]any); !ok {
		t.Errorf("status JSON: members is %T, want an array", m["members"])
	}
	if _, ok := m["state"].(string); !ok {
		t.Errorf("status JSON: state is %T, want a string", m["state"])
	}
	links, ok := m["links"].([]any)
	if !ok {
		t.Fatalf("status JSON: links is %T, want an array", m["links"])
	}
	for _, l := range links {
		lm, ok := l.(map[string]any)
		if !ok {
			t.Fatalf("status JSON: a link is %T, want an object", l)
		}
		if got := keys(lm); !slices.Equal(got, []string{"link", "node", "up"}) {
			t.Errorf("status JSON: link keys %v, want [link node up]", got)
		}
	}
}

// checkCLIView runs the CLI on every node until all report the same
// operational view of members (a view change in between only retries), and
// checks what each says about itself and its links.
func checkCLIView(t *testing.T, c *lab.Cluster, nodes, members []uint32) ringID {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var all []statusJSON
		same := true
		for _, id := range nodes {
			s := cliStatus(t, c, id)
			all = append(all, s)
			if s.State != "operational" || !slices.Equal(s.Members, members) || s.RingID != all[0].RingID {
				same = false
			}
		}
		if same {
			for i, s := range all {
				id := nodes[i]
				if s.NodeID != id {
					t.Errorf("node %d: status says node_id %d", id, s.NodeID)
				}
				if s.ClusterName != c.Opts.ClusterName {
					t.Errorf("node %d: cluster_name %q, want %q", id, s.ClusterName, c.Opts.ClusterName)
				}
				// One link to every other member, up.
				up := map[uint32]bool{}
				for _, l := range s.Links {
					if l.Up {
						up[l.Node] = true
					}
				}
				for _, m := range members {
					if m != id && !up[m] {
						t.Errorf("node %d: no link up to member %d: %+v", id, m, s.Links)
					}
				}
			}
			return all[0].RingID
		}
		if time.Now().After(deadline) {
			t.Fatalf("conclave status on nodes %v never agreed on view %v: %+v", nodes, members, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThreeNodesFormOneView(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r := waitView(t, c, ids(3), ids(3))
	cli := checkCLIView(t, c, ids(3), ids(3))
	if cli.Seq < r.Seq {
		t.Errorf("the CLI shows ring %s, older than the API's %s", cli, r)
	}
}

func TestFiveNodesFormOneView(t *testing.T) {
	t.Parallel()
	// Encrypted, unlike most tests: the common production setup.
	c := start(t, lab.Options{Nodes: 5})
	waitView(t, c, ids(5), ids(5))
	checkCLIView(t, c, ids(5), ids(5))
	st, err := c.Status(ctxFor(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Encrypted {
		t.Error("node 1 says it runs in the clear, but the cluster has a key")
	}
}

// TestKillAndRestart: a node killed with SIGKILL (its peers learn it from
// the TCP tripwire or the token) leaves the view; restarted, it merges back,
// and every new view has a higher ring seq.
func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))

	// Node 1 watches from before the kill, so the test sees the events an
	// application would.
	events, err := c.Watch(ctxFor(t, 2*waitTimeout), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	r2 := waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	if r2.Seq <= r1.Seq {
		t.Errorf("view after the kill has ring %s, not above %s", r2, r1)
	}
	ev := waitEvent(t, events, func(ev *clientpb.Event) bool {
		return ev.Kind == clientpb.Event_INSTALLED && slices.Equal(ev.Members, []uint32{1, 2})
	})
	if ev.RingId.Seq != r2.Seq || ev.RingId.Rep != r2.Rep {
		t.Errorf("node 1 announced view [1 2] with ring %s, status says %s", ev.RingId.Text(), r2)
	}

	if err := c.StartNode(3); err != nil {
		t.Fatal(err)
	}
	r3 := waitView(t, c, ids(3), ids(3))
	if r3.Seq <= r2.Seq {
		t.Errorf("view after the restart has ring %s, not above %s", r3, r2)
	}
	ev = waitEvent(t, events, func(ev *clientpb.Event) bool {
		return ev.Kind == clientpb.Event_INSTALLED && slices.Equal(ev.Members, ids(3))
	})
	if !slices.Equal(ev.Joined, []uint32{3}) {
		t.Errorf("node 1's event for view [1 2 3] says joined %v, want [3]", ev.Joined)
	}
}

// waitEvent reads events until one matches.
func waitEvent(t *testing.T, events <-chan *clientpb.Event, match func(*clientpb.Event) bool) *clientpb.Event {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the watch stream ended")
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("no matching event")
		}
	}
}

// TestStopAndContinue: a node frozen longer than the token is dropped from
// the view (its process is alive, so only the token notices); when it runs
// again it rejoins.
func TestStopAndContinue(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))
	if err := c.Signal(2, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r2 := waitView(t, c, []uint32{1, 3}, []uint32{1, 3})
	if r2.Seq <= r1.Seq {
		t.Errorf("view without node 2 has ring %s, not above %s", r2, r1)
	}
	if err := c.Signal(2, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r3 := waitView(t, c, ids(3), ids(3))
	if r3.Seq <= r2.Seq {
		t.Errorf("view after SIGCONT has ring %s, not above %s", r3, r2)
	}
}

// TestGracefulStop: SIGTERM makes the agent leave; the others install a view
// without it and the agent exits with status 0.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))
	if err := c.Stop(ctxFor(t, waitTimeout), 3); err != nil {
		t.Fatal(err) // includes a non-zero exit status
	}
	r2 := waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	if r2.Seq <= r1.Seq {
		t.Errorf("view after the leave has ring %s, not above %s", r2, r1)
	}
	if _, err := os.Stat(c.Node(3).Socket); err == nil {
		t.Errorf("the stopped agent left its socket %s behind", c.Node(3).Socket)
	}
}

// TestWholeClusterRestart: ring seqs are persisted, so a cluster restarted
// as a whole (gracefully, then killed) never reuses a ring id.
func TestWholeClusterRestart(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))
	for _, id := range ids(3) {
		if err := c.Stop(ctxFor(t, waitTimeout), id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids(3) {
		if err := c.StartNode(id); err != nil {
			t.Fatal(err)
		}
	}
	r2 := waitView(t, c, ids(3), ids(3))
	if r2.Seq <= r1.Seq {
		t.Errorf("after a graceful restart of all nodes the ring is %s, not above %s", r2, r1)
	}
	for _, id := range ids(3) {
		if err := c.Kill(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids(3) {
		if err := c.StartNode(id); err != nil {
			t.Fatal(err)
		}
	}
	r3 := waitView(t, c, ids(3), ids(3))
	if r3.Seq <= r2.Seq {
		t.Errorf("after killing and restarting all nodes the ring is %s, not above %s", r3, r2)
	}
}

// TestCorosyncConf: a cluster configured by an unmodified-looking
// corosync.conf (as pcs writes it, encrypted, with a logging section)
// forms a view.
func TestCorosyncConf(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Format: "corosync", ClusterName: "pcscluster"})
	b, err := os.ReadFile(c.Node(1).ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, want := range []string{"totem {", "version: 2", "transport: knet", "crypto_cipher: aes256", "nodelist {", "ring0_addr: 127.0.0.1", "provider: corosync_votequorum", "logging {"} {
		if !strings.Contains(conf, want) {
			t.Errorf("the corosync.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "=") {
		t.Errorf("the corosync.conf contains TOML:\n%s", conf)
	}
	waitView(t, c, ids(3), ids(3))
	s := checkCLIView(t, c, ids(3), ids(3))
	if s.Seq == 0 {
		t.Error("ring seq 0")
	}
	st, err := c.Status(ctxFor(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.ClusterName != "pcscluster" || !st.Encrypted {
		t.Errorf("node 2: cluster %q encrypted %v, want pcscluster and encrypted", st.ClusterName, st.Encrypted)
	}
	// The rest of the acceptance flow, on the same unmodified corosync.conf:
	// SIGKILL one, the other two form a view with a higher seq; restart it,
	// all three merge with a higher seq still.
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	s2 := checkCLIView(t, c, []uint32{1, 2}, []uint32{1, 2})
	if s2.Seq <= s.Seq {
		t.Errorf("after SIGKILL: ring seq %d not above %d", s2.Seq, s.Seq)
	}
	if err := c.StartNode(3); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, ids(3), ids(3))
	s3 := checkCLIView(t, c, ids(3), ids(3))
	if s3.Seq <= s2.Seq {
		t.Errorf("after restart: ring seq %d not above %d", s3.Seq, s2.Seq)
	}
}

// TestDefaultToken: the one test that runs the agent's default timing
// (token 800 ms) rather than the short test token.
func TestDefaultToken(t *testing.T) {
	t.Parallel()
	c := startRaw(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	r2 := waitView(t, c, []uint32{2, 3}, []uint32{2, 3})
	if r2.Seq <= r1.Seq {
		t.Errorf("ring %s not above %s", r2, r1)
	}
}

// TestCoordinatorFails: when the lowest node (the coordinator of the view)
// fails, the survivors form their view together. None may install a view
// of only some of them: that splits a healthy group, a loss of quorum that
// no failure calls for. Which survivor hears of the failure first varies,
// so the failure is repeated (three times: a fourth removal within a
// minute would hold node 1 out as flapping).
func TestCoordinatorFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fail    func(c *lab.Cluster) error
		recover func(c *lab.Cluster) error
	}{
		{"SIGKILL", func(c *lab.Cluster) error { return c.Kill(1) }, func(c *lab.Cluster) error { return c.StartNode(1) }},
		{"SIGTERM", func(c *lab.Cluster) error { return c.Stop(context.Background(), 1) }, func(c *lab.Cluster) error { return c.StartNode(1) }},
		{"SIGSTOP", func(c *lab.Cluster) error { return c.Signal(1, syscall.SIGSTOP) }, func(c *lab.Cluster) error { return c.Signal(1, syscall.SIGCONT) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			coordinatorFails(t, tc.fail, tc.recover)
		})
	}
}

func coordinatorFails(t *testing.T, fail, recover func(*lab.Cluster) error) {
	const nodes = 5
	c := start(t, lab.Options{Nodes: nodes, Cleartext: true})
	waitView(t, c, ids(nodes), ids(nodes))
	survivors := ids(nodes)[1:]
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		var streams []<-chan *clientpb.Event
		for _, id := range survivors {
			ch, err := c.Watch(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// The first event is the current view.
			waitEvent(t, ch, func(ev *clientpb.Event) bool {
				return ev.Kind == clientpb.Event_INSTALLED && slices.Equal(ev.Members, ids(nodes))
			})
			streams = append(streams, ch)
		}
		if err := fail(c); err != nil {
			t.Fatal(err)
		}
		for i, ch := range streams {
			waitEvent(t, ch, func(ev *clientpb.Event) bool {
				if ev.Kind != clientpb.Event_INSTALLED {
					return false
				}
				if !slices.Equal(ev.Members, survivors) {
					t.Errorf("round %d: node %d installed view %v (ring %s) after node 1 failed, before %v",
						round, survivors[i], ev.Members, ev.RingId.Text(), survivors)
					return false
				}
				return true
			})
		}
		cancel()
		if t.Failed() {
			return
		}
		if err := recover(c); err != nil {
			t.Fatal(err)
		}
		waitView(t, c, ids(nodes), ids(nodes))
	}
}
