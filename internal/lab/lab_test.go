package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/config"
)

// fakeAgent is a stand-in for the conclave binary: it runs until signalled
// and exits 0 on SIGTERM, like an agent leaving gracefully.
func fakeAgent(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-conclave")
	script := "#!/bin/sh\ntrap 'echo leaving >&2; exit 0' TERM\necho \"fake agent ready: $*\" >&2\nwhile :; do sleep 0.01; done\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFilesParse(t *testing.T) {
	for _, o := range []Options{
		{Nodes: 3, Cleartext: true},
		{Nodes: 5, Token: 300 * time.Millisecond, Join: 20 * time.Millisecond, Consensus: 400 * time.Millisecond, Heartbeat: 30 * time.Millisecond},
		{Nodes: 3, Format: "corosync", ClusterName: "pcs"},
		{Nodes: 3, Format: "corosync", Cleartext: true, Token: time.Second},
		{Nodes: 2, ExtraTOML: "[quorum]\nprovider = \"corosync_votequorum\"\ntwo_node = 1"},
	} {
		o.Binary = fakeAgent(t)
		c, err := New(o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		defer c.Close()
		cfg, err := config.Load(c.Node(1).ConfigPath)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if len(cfg.Nodes) != o.Nodes {
			t.Errorf("%d nodes in the file, want %d", len(cfg.Nodes), o.Nodes)
		}
		for _, n := range cfg.Nodes {
			a, err := n.Addr(0)
			if err != nil {
				t.Fatal(err)
			}
			want := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(n.ID)}), uint16(c.Opts.Port))
			if a != want {
				t.Errorf("node %d address %v, want %v", n.ID, a, want)
			}
		}
		if o.Token != 0 && cfg.Totem.Token != o.Token {
			t.Errorf("token %v, want %v", cfg.Totem.Token, o.Token)
		}
		if cfg.Crypto.Cleartext() != o.Cleartext {
			t.Errorf("cleartext %v, want %v", cfg.Crypto.Cleartext(), o.Cleartext)
		}
		if o.Format == "corosync" {
			if cfg.Format != config.FormatCorosync {
				t.Errorf("format %v", cfg.Format)
			}
			b, _ := os.ReadFile(c.Node(1).ConfigPath)
			if bytes.Contains(b, []byte("keyfile")) || bytes.Contains(b, []byte("=")) {
				t.Errorf("the corosync.conf does not look like pcs wrote it:\n%s", b)
			}
			if !o.Cleartext && !strings.Contains(strings.Join(c.command(c.Node(1)), " "), "--key-file "+filepath.Join(c.Dir, "authkey")) {
				t.Errorf("an encrypted corosync.conf cluster does not pass --key-file: %v", c.command(c.Node(1)))
			}
		}
		if !o.Cleartext {
			fi, err := os.Stat(filepath.Join(c.Dir, "authkey"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file: %v %v", fi, err)
			}
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	bin := fakeAgent(t)
	for _, o := range []Options{
		{Nodes: 3},                        // no binary
		{Binary: bin},                     // no nodes
		{Binary: bin, Nodes: 3, Links: 2}, // two links need netns
		{Binary: bin, Nodes: 3, Format: "yaml"},
		{Binary: bin, Nodes: 3, Format: "corosync", ExtraTOML: "[quorum]"},
		{Binary: bin, Nodes: 3, Token: 1500 * time.Microsecond},
		{Binary: bin, Nodes: 3, ExtraTOML: "[bogus]\nx = 1"},
		{Binary: filepath.Join(t.TempDir(), "missing"), Nodes: 3},
	} {
		c, err := New(o)
		if err == nil {
			c.Close()
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestProcessLifecycle(t *testing.T) {
	var stderr bytes.Buffer
	c, err := Start(context.Background(), Options{Binary: fakeAgent(t), Nodes: 2, Cleartext: true, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range c.Nodes() {
		if !c.Running(id) || c.PID(id) == 0 {
			t.Fatalf("node %d not running", id)
		}
		waitReady(t, c, id, 1)
	}
	if err := c.StartNode(1); err == nil {
		t.Error("starting a running node: no error")
	}
	if err := c.Signal(1, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(1, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx, 1); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if c.Running(1) {
		t.Error("node 1 still running after Stop")
	}
	pid := c.PID(2)
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := c.ExitErr(2); !errors.As(err, &ee) {
		t.Errorf("killed node's exit: %v", err)
	}
	if err := c.StartNode(2); err != nil {
		t.Fatal(err)
	}
	if c.PID(2) == pid || !c.Running(2) {
		t.Error("node 2 did not restart")
	}
	waitReady(t, c, 2, 2)
	// The log keeps every run.
	b, err := os.ReadFile(c.Node(2).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), ": starting node 2: "); n != 2 {
		t.Errorf("node 2's log has %d runs, want 2:\n%s", n, b)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the temporary directory %s", c.Dir)
	}
	if !strings.Contains(stderr.String(), "leaving\n") || !strings.Contains(stderr.String(), "--node-id 2") {
		t.Errorf("Options.Stderr got:\n%s", stderr.String())
	}
	if err := c.StartNode(1); err == nil {
		t.Error("StartNode after Close: no error")
	}
}

// waitReady waits until node id's log shows the fake agent's runs-th
// start: its SIGTERM trap is set from then on.
func waitReady(t *testing.T, c *Cluster, id uint32, runs int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(c.Node(id).LogPath)
		if strings.Count(string(b), "fake agent ready") >= runs {
			return
		}
	}
	t.Fatalf("node %d: the fake agent never got ready", id)
}

func TestLoopbackRefusesNetnsMethods(t *testing.T) {
	c, err := New(Options{Binary: fakeAgent(t), Nodes: 2, Cleartext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, err := range []error{c.LinkDown(1, 0), c.LinkUp(1, 0), c.Partition([]uint32{1}, []uint32{2}), c.Heal(), c.DropOneWay(1, 2), c.Netem(1, "loss", "1%")} {
		if !errors.Is(err, errNotNetns) {
			t.Errorf("got %v, want errNotNetns", err)
		}
	}
}

func TestPickPort(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	a, err := pickPort(addrs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pickPort(addrs)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("the same port %d twice", a)
	}
	if !portFree(addrs, a) {
		t.Errorf("port %d is not free", a)
	}
	l, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrs[1], uint16(a))))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if portFree(addrs, a) {
		t.Errorf("port %d is taken on 127.0.0.2 but reported free", a)
	}
}

func TestParseNetem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want netemParams
		bad  bool
	}{
		{args: []string{"loss", "20%"}, want: netemParams{loss: 0.2}},
		{args: []string{"loss", "random", "5%"}, want: netemParams{loss: 0.05}},
		{args: []string{"delay", "50ms", "20ms"}, want: netemParams{delay: 50 * time.Millisecond, jitter: 20 * time.Millisecond}},
		{args: []string{"delay", "50ms", "20ms", "25%", "loss", "1%"}, want: netemParams{delay: 50 * time.Millisecond, jitter: 20 * time.Millisecond, loss: 0.01}},
		{args: []string{"delay", "10ms", "loss", "3%"}, want: netemParams{delay: 10 * time.Millisecond, loss: 0.03}},
		{args: []string{"duplicate", "1%"}, bad: true},
		{args: []string{"loss"}, bad: true},
		{args: []string{"loss", "120%"}, bad: true},
		{args: []string{"delay", "fast"}, bad: true},
	} {
		got, err := parseNetem(tc.args)
		if (err != nil) != tc.bad {
			t.Errorf("%v: error %v", tc.args, err)
			continue
		}
		if !tc.bad && got != tc.want {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestNfqMessages(t *testing.T) {
	m := nfqMessage(nfqnlMsgVerdict, nlmFRequest, 7, attr(nfqaVerdictHdr, []byte{0, 0, 0, 1, 0, 0, 0, 42}))
	if got := binary.NativeEndian.Uint32(m[0:4]); int(got) != len(m) || len(m) != 32 {
		t.Fatalf("length %d, message %d bytes", got, len(m))
	}
	if got := binary.NativeEndian.Uint16(m[4:6]); got != 3<<8|1 {
		t.Errorf("type %#x", got)
	}
	if got := binary.BigEndian.Uint16(m[18:20]); got != 7 {
		t.Errorf("queue %d", got)
	}
	// A packet message as the kernel sends it: the id is found past other
	// attributes.
	pkt := nfqMessage(nfqnlMsgPacket, 0, 7, attr(9, []byte{1, 2, 3}), attr(nfqaPacketHdr, []byte{0, 0, 1, 2, 8, 0, 3}))
	id, ok := packetID(pkt[nlmsgHdrLen:])
	if !ok || id != 258 {
		t.Errorf("packetID = %d, %v; want 258", id, ok)
	}
	if _, ok := packetID([]byte{0, 0, 0, 0, 200, 0}); ok {
		t.Error("packetID accepted a truncated attribute")
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	shared := &sharedWriter{w: &out}
	a, b := &lineWriter{out: shared}, &lineWriter{out: shared}
	a.Write([]byte("a1 "))
	b.Write([]byte("b1\nb2 "))
	a.Write([]byte("end\n"))
	b.Write([]byte("end"))
	b.flush()
	if got, want := out.String(), "b1\na1 end\nb2 end\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
