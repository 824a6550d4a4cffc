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
)

// recorder is a Service that writes down what it sees, in order.
type recorder struct {
	mu   sync.Mutex
	self membership.NodeID
	log  []string
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Nodelist(ring membership.RingID, members []membership.NodeID) [][]byte {
	r.add(fmt.Sprintf("nodelist %s %v", ring, members))
	return [][]byte{fmt.Appendf(nil, "state-of-%d", r.self)}
}
func (r *recorder) Deliver(ring membership.RingID, from membership.NodeID, payload []byte, sync bool, _ time.Time) {
	r.add(fmt.Sprintf("deliver %s from %d sync=%v %s", ring, from, sync, payload))
}
func (r *recorder) Installed(ring membership.RingID, members []membership.NodeID) {
	r.add(fmt.Sprintf("installed %s %v", ring, members))
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

// TestServicesSyncStep runs two agents in this process with a service that
// has a sync step: on every member, each member's sync state is delivered
// before the view is installed, in the same order everywhere.
func TestServicesSyncStep(t *testing.T) {
	dir := t.TempDir()
	ips := []string{"127.0.0.41", "127.0.0.42"}
	port := freePort(t, ips...)
	cfgText := fmt.Sprintf(`[totem]
cluster_name = "svc"
crypto_cipher = "none"
crypto_hash = "none"
[[totem.interface]]
linknumber = 0
mcastport = %d
[[nodelist.node]]
nodeid = 1
ring0_addr = "%s"
[[nodelist.node]]
nodeid = 2
ring0_addr = "%s"
`, port, ips[0], ips[1])
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := map[uint32]*recorder{}
	var wg sync.WaitGroup
	for id := uint32(1); id <= 2; id++ {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{self: membership.NodeID(id)}
		recs[id] = rec
		a, err := New(ctx, Options{
			Config: cfg, NodeID: id, Socket: filepath.Join(dir, fmt.Sprintf("n%d.sock", id)),
			DataDir: filepath.Join(dir, fmt.Sprintf("d%d", id)), Services: []Service{rec},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()
	// Wait for both to be installed in a 2-member view.
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := true
		for id := uint32(1); id <= 2; id++ {
			conn, err := ipc.Dial(ctx, filepath.Join(dir, fmt.Sprintf("n%d.sock", id)))
			if err != nil {
				done = false
				continue
			}
			st, err := clientpb.NewAgentClient(conn).Status(ctx, &clientpb.StatusRequest{})
			conn.Close()
			if err != nil || !st.Installed || len(st.Members) != 2 {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no installed 2-node view: %v / %v", recs[1].lines(), recs[2].lines())
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	dir := t.TempDir()
	ips := []string{"127.0.0.43", "127.0.0.44"}
	port := freePort(t, ips...)
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte(fmt.Sprintf(`[totem]
cluster_name = "p"
crypto_cipher = "none"
crypto_hash = "none"
[[totem.interface]]
linknumber = 0
mcastport = %d
[[nodelist.node]]
nodeid = 1
ring0_addr = "%s"
[[nodelist.node]]
nodeid = 2
ring0_addr = "%s"
`, port, ips[0], ips[1])), 0o600)
	type run struct {
		cancel context.CancelFunc
		done   chan error
		sock   string
		data   string
	}
	runs := map[uint32]*run{}
	for id := uint32(1); id <= 2; id++ {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &run{cancel: cancel, done: make(chan error, 1), sock: filepath.Join(dir, fmt.Sprintf("n%d.sock", id)), data: filepath.Join(dir, fmt.Sprintf("d%d", id))}
		a, err := New(ctx, Options{Config: cfg, NodeID: id, Socket: r.sock, DataDir: r.data, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		go func() { r.done <- a.Run(ctx) }()
		runs[id] = r
		defer cancel()
	}
	installed := func(id uint32, members int) bool {
		conn, err := ipc.Dial(context.Background(), runs[id].sock)
		if err != nil {
			return false
		}
		defer conn.Close()
		st, err := clientpb.NewAgentClient(conn).Status(context.Background(), &clientpb.StatusRequest{})
		return err == nil && st.Installed && len(st.Members) == members
	}
	deadline := time.Now().Add(10 * time.Second)
	for !(installed(1, 2) && installed(2, 2)) {
		if time.Now().After(deadline) {
			t.Fatal("no 2-node view")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Sabotage node 2's ring seq file: the next persist cannot succeed.
	seq := filepath.Join(runs[2].data, seqFile)
	if err := os.Remove(seq); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(seq, 0o700); err != nil {
		t.Fatal(err)
	}
	runs[1].cancel() // node 1 leaves: node 2 must form a new view, and persist its seq
	select {
	case err := <-runs[2].done:
		if err == nil || !strings.Contains(err.Error(), "persisting ring seq") {
			t.Fatalf("node 2 stopped with %v, want a persistence error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 2 kept running after it could not persist its ring seq")
	}
}
