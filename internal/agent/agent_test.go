package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/membership"
	"github.com/conclave/conclave/internal/service"
)

// recorder is a Service that writes down what it sees, in order.
type recorder struct {
	mu   sync.Mutex
	self membership.NodeID
	log  []string
	sync [][]byte // called under the agent's lock
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Nodelist(_ time.Time, ring membership.RingID, members []membership.NodeID) {
	r.add(fmt.Sprintf("nodelist %s %v", ring, members))
	r.sync = append(r.sync, fmt.Appendf(nil, "state-of-%d", r.self))
}
func (r *recorder) Deliver(_ time.Time, ring membership.RingID, from membership.NodeID, payload []byte, sync bool) {
	r.add(fmt.Sprintf("deliver %s from %d sync=%v %s", ring, from, sync, payload))
}
func (r *recorder) Installed(_ time.Time, ring membership.RingID, members []membership.NodeID) {
	r.add(fmt.Sprintf("installed %s %v", ring, members))
}
func (r *recorder) Tick(time.Time)                   {}
func (r *recorder) NextTick() time.Time              { return time.Time{} }
func (r *recorder) SyncReady(membership.RingID) bool { return true }
func (r *recorder) Output() (sync, normal [][]byte) {
	sync, r.sync = r.sync, nil
	return sync, nil
}
func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func freePort(t *testing.T, ips ...string) int {
	for range 50 {
		l, err := net.ListenPacket("udp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		ok := true
		for _, ip := range ips {
			u, err1 := net.ListenPacket("udp", fmt.Sprintf("%s:%d", ip, port))
			c, err2 := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if u != nil {
				u.Close()
			}
			if c != nil {
				c.Close()
			}
			ok = ok && err1 == nil && err2 == nil
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// testAgent is an agent running in this process.
type testAgent struct {
	id     uint32
	cancel context.CancelFunc
	done   chan error
	sock   string
	data   string
}

// startAgents runs n cleartext agents on 127.0.0.<base+i> in this process,
// with the services services(id) returns.
func startAgents(t *testing.T, base, n int, services func(id uint32) []service.Service) []*testAgent {
	t.Helper()
	dir := t.TempDir()
	var ips []string
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", base+i))
	}
	port := freePort(t, ips...)
	text := fmt.Sprintf("[totem]\ncluster_name = \"t\"\ncrypto_cipher = \"none\"\ncrypto_hash = \"none\"\n[[totem.interface]]\nlinknumber = 0\nmcastport = %d\n", port)
	for i, ip := range ips {
		text += fmt.Sprintf("[[nodelist.node]]\nnodeid = %d\nring0_addr = \"%s\"\n", i+1, ip)
	}
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out []*testAgent
	for id := uint32(1); id <= uint32(n); id++ {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ta := &testAgent{id: id, cancel: cancel, done: make(chan error, 1),
			sock: filepath.Join(dir, fmt.Sprintf("n%d.sock", id)), data: filepath.Join(dir, fmt.Sprintf("d%d", id))}
		var svcs []service.Service
		if services != nil {
			svcs = services(id)
		}
		a, err := New(ctx, Options{Config: cfg, NodeID: id, Socket: ta.sock, DataDir: ta.data, Services: svcs,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		go func() { ta.done <- a.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-ta.done
		})
		out = append(out, ta)
	}
	return out
}

// installed reports whether the agent has an installed view of n members.
func (ta *testAgent) installed(n int) bool {
	conn, err := ipc.Dial(context.Background(), ta.sock)
	if err != nil {
		return false
	}
	defer conn.Close()
	st, err := clientpb.NewAgentClient(conn).Status(context.Background(), &clientpb.StatusRequest{})
	return err == nil && st.Installed && len(st.Members) == n
}

// waitInstalled polls, with a deadline, until every agent is installed in
// an n-member view.
func waitInstalled(t *testing.T, agents []*testAgent, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, ta := range agents {
			all = all && ta.installed(n)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no installed %d-node view", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServicesSyncStep runs two agents in this process with a service that
// has a sync step: on every member, each member's sync state is delivered
// before the view is installed, in the same order everywhere.
func TestServicesSyncStep(t *testing.T) {
	recs := map[uint32]*recorder{}
	agents := startAgents(t, 40, 2, func(id uint32) []service.Service {
		recs[id] = &recorder{self: membership.NodeID(id)}
		return []service.Service{recs[id]}
	})
	waitInstalled(t, agents, 2)
	var seqs [][]string
	for id := uint32(1); id <= 2; id++ {
		lines := recs[id].lines()
		// Find the last nodelist with both members, and check what follows.
		start := -1
		for i, l := range lines {
			if strings.HasPrefix(l, "nodelist") && strings.HasSuffix(l, "[1 2]") {
				start = i
			}
		}
		if start < 0 {
			t.Fatalf("node %d: no 2-node nodelist in %v", id, lines)
		}
		rest := lines[start:]
		inst := slices.IndexFunc(rest, func(l string) bool { return strings.HasPrefix(l, "installed") })
		if inst < 0 {
			t.Fatalf("node %d: not installed: %v", id, rest)
		}
		var syncs []string
		for _, l := range rest[1:inst] {
			if strings.Contains(l, "sync=true") {
				syncs = append(syncs, l)
			}
		}
		if len(syncs) != 2 {
			t.Fatalf("node %d: want both members' sync state before installed, got %v", id, rest)
		}
		seqs = append(seqs, syncs)
	}
	if !slices.Equal(seqs[0], seqs[1]) {
		t.Fatalf("sync messages in different orders: %v vs %v", seqs[0], seqs[1])
	}
}

// TestPersistFailureStops: an agent that cannot persist a new ring seq must
// stop rather than use a ring id a crash could forget.
func TestPersistFailureStops(t *testing.T) {
	agents := startAgents(t, 42, 2, nil)
	waitInstalled(t, agents, 2)
	// Sabotage node 2's ring seq file: the next persist cannot succeed.
	seq := filepath.Join(agents[1].data, seqFile)
	if err := os.Remove(seq); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(seq, 0o700); err != nil {
		t.Fatal(err)
	}
	agents[0].cancel() // node 1 leaves: node 2 must form a new view, and persist its seq
	select {
	case err := <-agents[1].done:
		agents[1].done <- err // for the cleanup
		if err == nil || !strings.Contains(err.Error(), "persisting ring seq") {
			t.Fatalf("node 2 stopped with %v, want a persistence error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 2 kept running after it could not persist its ring seq")
	}
}
