package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Socket tests run on loopback: 127.0.0.N is node N's address on link 0
// and 127.0.1.N on link 1 (all of 127/8 is local on Linux).

const waitTimeout = 10 * time.Second

func nodeAddr(node uint32, link int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(link), byte(node)}), port)
}

// freePort finds a port free for UDP and TCP on every address the test
// cluster will use.
func freePort(t testing.TB, nodes, links int) uint16 {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(probe.LocalAddr().(*net.UDPAddr).Port)
		probe.Close()
		ok := true
		var closers []io.Closer
		for n := 1; n <= nodes && ok; n++ {
			for l := 0; l < links && ok; l++ {
				a := nodeAddr(uint32(n), l, port)
				u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
				if err != nil {
					ok = false
					break
				}
				closers = append(closers, u)
				tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(a))
				if err != nil {
					ok = false
					break
				}
				closers = append(closers, tl)
			}
		}
		for _, c := range closers {
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

type testNode struct {
	cfg Config
	tr  *Transport
	mu  sync.Mutex
	got []Packet
	evs []PeerEvent
	wg  sync.WaitGroup
}

type testNet struct {
	t     testing.TB
	port  uint16
	nodes map[uint32]*testNode
}

func clusterConfig(n, links int, key []byte, port uint16, self uint32, inc uint64) Config {
	cfg := Config{ClusterName: testCluster, Key: key, Self: self, Incarnation: inc, Peers: map[uint32][]netip.AddrPort{}}
	for l := 0; l < links; l++ {
		cfg.Links = append(cfg.Links, nodeAddr(self, l, port))
	}
	for p := uint32(1); p <= uint32(n); p++ {
		for l := 0; l < links; l++ {
			cfg.Peers[p] = append(cfg.Peers[p], nodeAddr(p, l, port))
		}
	}
	return cfg
}

// newTestNet reserves a port for n nodes with links links; start nodes
// with start.
func newTestNet(t testing.TB, n, links int) *testNet {
	t.Helper()
	return &testNet{t: t, port: freePort(t, n, links), nodes: map[uint32]*testNode{}}
}

func newTestCluster(t testing.TB, n, links int, key []byte, mod func(*Config)) *testNet {
	t.Helper()
	c := newTestNet(t, n, links)
	for id := uint32(1); id <= uint32(n); id++ {
		cfg := clusterConfig(n, links, key, c.port, id, 1)
		if mod != nil {
			mod(&cfg)
		}
		c.start(cfg)
	}
	return c
}

// start creates and starts a node and collects what it receives.
func (c *testNet) start(cfg Config) *testNode {
	c.t.Helper()
	tr, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &testNode{cfg: cfg, tr: tr}
	c.nodes[cfg.Self] = nd
	tr.Start(context.Background())
	c.t.Cleanup(func() { tr.Close(); nd.wg.Wait() })
	nd.wg.Add(2)
	go func() {
		defer nd.wg.Done()
		for p := range tr.Incoming() {
			nd.mu.Lock()
			nd.got = append(nd.got, p)
			nd.mu.Unlock()
		}
	}()
	go func() {
		defer nd.wg.Done()
		for ev := range tr.PeerEvents() {
			nd.mu.Lock()
			nd.evs = append(nd.evs, ev)
			nd.mu.Unlock()
		}
	}()
	return nd
}

// testLogger logs at debug level through t.Log, so that a failing test
// shows what the transports saw.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (nd *testNode) hasPacket(match func(Packet) bool) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	for _, p := range nd.got {
		if match(p) {
			return true
		}
	}
	return false
}

func (nd *testNode) hasEvent(ev PeerEvent) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	for _, e := range nd.evs {
		if e == ev {
			return true
		}
	}
	return false
}

func (nd *testNode) events() []PeerEvent {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return append([]PeerEvent(nil), nd.evs...)
}

func payloadFor(from, to uint32, link, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i*31) ^ byte(from) ^ byte(to<<4) ^ byte(link<<2)
	}
	if size >= 12 {
		binary.BigEndian.PutUint32(p, from)
		binary.BigEndian.PutUint32(p[4:], to)
		binary.BigEndian.PutUint32(p[8:], uint32(link))
	}
	return p
}

// sendUntil sends payload until the receiver has it; UDP may lose a
// fragment of a large message, and the engine above retransmits too.
func (c *testNet) sendUntil(from, to uint32, link int, payload []byte) {
	c.t.Helper()
	src, dst := c.nodes[from], c.nodes[to]
	match := func(p Packet) bool {
		return p.From == from && p.Link == link && p.Incarnation == src.cfg.Incarnation && bytes.Equal(p.Payload, payload)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		err := src.tr.Send(to, link, payload)
		if err != nil && !errors.Is(err, ErrSendBufferFull) {
			c.t.Fatalf("Send %d->%d link %d: %v", from, to, link, err)
		}
		retry := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(retry) {
			if dst.hasPacket(match) {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d->%d link %d: %d bytes never arrived", from, to, link, len(payload))
		}
	}
}

func TestTransportExchange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes int
		links int
		key   []byte
		sizes []int
	}{
		{"two nodes, one link, encrypted", 2, 1, testKey, []int{0, 1, 100, 1408, 1409, 5000}},
		{"two nodes, two links, encrypted, 1 MiB", 2, 2, testKey, []int{64, 1 << 20}},
		{"three nodes, two links, encrypted", 3, 2, testKey, []int{64, 3000, 1 << 20}},
		{"three nodes, one link, cleartext", 3, 1, nil, []int{64, 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, tc.nodes, tc.links, tc.key, nil)
			for from := uint32(1); from <= uint32(tc.nodes); from++ {
				for to := uint32(1); to <= uint32(tc.nodes); to++ {
					if from == to {
						continue
					}
					for link := 0; link < tc.links; link++ {
						for _, size := range tc.sizes {
							c.sendUntil(from, to, link, payloadFor(from, to, link, size))
						}
					}
				}
			}
			for id, nd := range c.nodes {
				st := nd.tr.Stats()
				if st.SentPackets == 0 || st.RecvPackets == 0 || st.Delivered == 0 || st.SentBytes == 0 || st.RecvBytes == 0 {
					t.Errorf("node %d stats %+v", id, st)
				}
				for link := 0; link < tc.links; link++ {
					if ls := st.PerLink[link]; ls.SentPackets == 0 || ls.RecvPackets == 0 {
						t.Errorf("node %d link %d stats %+v", id, link, ls)
					}
				}
				bad := st.DropForged + st.DropCorrupt + st.DropForeign + st.DropUnknownSender + st.DropMisrouted + st.DropStale + st.DropReplayed
				if bad != 0 {
					t.Errorf("node %d dropped valid traffic: %+v", id, st)
				}
				t.Logf("node %d: sent %d/%d B, recv %d/%d B, delivered %d, reassembly timeouts %d, send buffer full %d",
					id, st.SentPackets, st.SentBytes, st.RecvPackets, st.RecvBytes, st.Delivered, st.DropReassemblyTimeout, st.SendBufferFull)
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	c := newTestCluster(t, 2, 1, testKey, func(cfg *Config) { cfg.MaxMessage = 10000 })
	tr := c.nodes[1].tr
	for _, tc := range []struct {
		name string
		to   uint32
		link int
		size int
		want error
	}{
		{"unknown peer", 9, 0, 10, ErrUnknownPeer},
		{"self", 1, 0, 10, ErrUnknownPeer},
		{"unconfigured link", 2, 1, 10, ErrNoLink},
		{"negative link", 2, -1, 10, ErrNoLink},
		{"link out of range", 2, 8, 10, ErrNoLink},
		{"too large", 2, 0, 10001, ErrTooLarge},
		{"largest", 2, 0, 10000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tr.Send(tc.to, tc.link, make([]byte, tc.size)); !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
		})
	}
	tr.Close()
	if err := tr.Send(2, 0, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestNewErrors(t *testing.T) {
	good := clusterConfig(2, 1, testKey, 5405, 1, 1)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"short key", func(c *Config) { c.Key = make([]byte, 8) }, "cluster key is 8 bytes"},
		{"no links", func(c *Config) { c.Links = nil }, "no link configured"},
		{"too many links", func(c *Config) { c.Links = make([]netip.AddrPort, 9) }, "9 links"},
		{"small MTU", func(c *Config) { c.MTU = 500 }, "MTU 500"},
		{"wildcard bind", func(c *Config) { c.Links = []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:5405")} }, "0.0.0.0:5405 is unspecified"},
		{"address not local", func(c *Config) { c.Links = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:5405")} }, "192.0.2.1:5405"},
		{"peer without port", func(c *Config) { c.Peers[2] = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:0")} }, "127.0.0.2:0"},
		{"family mismatch", func(c *Config) { c.Peers[2] = []netip.AddrPort{netip.MustParseAddrPort("[::1]:5405")} }, "same family"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clusterConfig(2, 1, testKey, 5405, 1, 1)
			cfg.Peers = map[uint32][]netip.AddrPort{2: good.Peers[2]}
			tc.mod(&cfg)
			tr, err := New(cfg)
			if err == nil {
				tr.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestDropsOnTheWire sends hostile datagrams to a running transport and
// checks that each is counted and none is delivered.
func TestDropsOnTheWire(t *testing.T) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"encrypted", testKey}, {"cleartext", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			// Only node 1 runs: nothing else talks to it.
			c := newTestNet(t, 3, 1)
			nd := c.start(clusterConfig(3, 1, mode.key, c.port, 1, 1))
			dst := net.UDPAddrFromAddrPort(nd.tr.LocalAddr(0))
			// The attacker sits on node 2's address (cleartext mode trusts it).
			raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			fromNode3, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
			if err != nil {
				t.Fatal(err)
			}
			defer fromNode3.Close()

			s2 := mustSealer(t, testCluster, mode.key, 2, 1000)
			valid := s2.Seal(nil, 1, 0, 0, nil, []byte("valid"))
			forged := bytes.Clone(valid)
			forged[len(forged)-1] ^= 1
			cases := []struct {
				name  string
				conn  *net.UDPConn
				frame []byte
				stat  func(Stats) uint64
			}{
				{"valid", raw, valid, func(s Stats) uint64 { return s.Delivered }},
				{"replayed", raw, valid, func(s Stats) uint64 { return s.DropReplayed }},
				{"forged or corrupt", raw, forged, func(s Stats) uint64 { return s.DropForged + s.DropCorrupt }},
				{"garbage", raw, []byte("not a frame at all, not even close"), func(s Stats) uint64 { return s.DropCorrupt }},
				{"foreign", raw, mustSealer(t, "elsewhere", mode.key, 2, 1).Seal(nil, 1, 0, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropForeign }},
				{"unknown sender", raw, mustSealer(t, testCluster, mode.key, 7, 1).Seal(nil, 1, 0, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropUnknownSender }},
				{"misrouted", raw, s2.Seal(nil, 3, 0, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropMisrouted }},
				{"stale", raw, mustSealer(t, testCluster, mode.key, 2, 999).Seal(nil, 1, 0, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropStale }},
				{"for an earlier run of this node", raw, s2.Seal(nil, 1, 7, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropStale }},
			}
			if mode.key == nil {
				cases = append(cases, struct {
					name  string
					conn  *net.UDPConn
					frame []byte
					stat  func(Stats) uint64
				}{"spoofed source", fromNode3, s2.Seal(nil, 1, 0, 0, nil, []byte("x")), func(s Stats) uint64 { return s.DropForged }})
			}
			for _, tc := range cases {
				before := tc.stat(nd.tr.Stats())
				if _, err := tc.conn.WriteToUDP(tc.frame, dst); err != nil {
					t.Fatal(err)
				}
				waitFor(t, tc.name+" counted", func() bool { return tc.stat(nd.tr.Stats()) == before+1 })
			}
			if !nd.hasPacket(func(p Packet) bool { return string(p.Payload) == "valid" && p.Incarnation == 1000 }) {
				t.Fatal("the valid frame was not delivered")
			}
			if nd.hasPacket(func(p Packet) bool { return string(p.Payload) == "x" }) {
				t.Fatal("a dropped frame was delivered")
			}
			st := nd.tr.Stats()
			if st.PerLink[0].Dropped < uint64(len(cases)-1) {
				t.Fatalf("per-link drops %d", st.PerLink[0].Dropped)
			}
		})
	}
}

func TestIncomingQueueFull(t *testing.T) {
	port := freePort(t, 2, 1)
	cfg1 := clusterConfig(2, 1, testKey, port, 1, 1)
	cfg1.IncomingQueue = 2
	r, err := New(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Start(context.Background())
	s, err := New(clusterConfig(2, 1, testKey, port, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 10; i++ {
		if err := s.Send(1, 0, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all ten counted", func() bool { st := r.Stats(); return st.Delivered+st.DropQueueFull == 10 })
	if st := r.Stats(); st.Delivered != 2 || st.DropQueueFull != 8 {
		t.Fatalf("delivered %d, queue full %d", st.Delivered, st.DropQueueFull)
	}
}

func TestReassemblyTimeoutOnTheWire(t *testing.T) {
	c := newTestCluster(t, 2, 1, testKey, nil)
	nd := c.nodes[1]
	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	s := mustSealer(t, testCluster, testKey, 2, 5)
	frag := s.Seal(nil, 1, 0, 0, &Fragment{MsgID: 1, Index: 0, Count: 2, Total: 2000}, make([]byte, 1000))
	start := time.Now()
	if _, err := raw.WriteToUDPAddrPort(frag, nd.tr.LocalAddr(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reassembly timeout", func() bool { return nd.tr.Stats().DropReassemblyTimeout == 1 })
	if d := time.Since(start); d < DefaultReassemblyTimeout {
		t.Fatalf("expired after %v", d)
	}
}

// TestTripwire checks that a peer's process closing is reported at once,
// that its restart is reported with the new incarnation, and that frames of
// the old incarnation are then stale.
func TestTripwire(t *testing.T) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"encrypted", testKey}, {"cleartext", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			c := newTestCluster(t, 2, 2, mode.key, func(cfg *Config) { cfg.Logger = testLogger(t) })
			n1, n2 := c.nodes[1], c.nodes[2]
			for link := 0; link < 2; link++ {
				waitFor(t, "node 1 sees node 2 up", func() bool { return n1.hasEvent(PeerEvent{Node: 2, Incarnation: 1, Link: link, Up: true}) })
				waitFor(t, "node 2 sees node 1 up", func() bool { return n2.hasEvent(PeerEvent{Node: 1, Incarnation: 1, Link: link, Up: true}) })
			}
			// An old-incarnation frame, sealed before the restart.
			old := mustSealer(t, testCluster, mode.key, 2, 1)
			old.counter.Store(1 << 30)
			oldFrame := old.Seal(nil, 1, 0, 0, nil, []byte("from the past"))

			closed := time.Now()
			n2.tr.Close()
			for link := 0; link < 2; link++ {
				waitFor(t, "node 1 sees node 2 down", func() bool { return n1.hasEvent(PeerEvent{Node: 2, Incarnation: 1, Link: link, Up: false}) })
			}
			t.Logf("down reported %v after Close", time.Since(closed))

			cfg := n2.cfg
			cfg.Incarnation = 2
			n2b := c.start(cfg)
			for link := 0; link < 2; link++ {
				waitFor(t, "node 1 sees node 2 up again", func() bool { return n1.hasEvent(PeerEvent{Node: 2, Incarnation: 2, Link: link, Up: true}) })
			}
			c.sendUntil(2, 1, 0, []byte("new session"))

			raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			before := n1.tr.Stats().DropStale
			if _, err := raw.WriteToUDPAddrPort(oldFrame, n1.tr.LocalAddr(0)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "old frame counted stale", func() bool { return n1.tr.Stats().DropStale == before+1 })

			// Each (node, incarnation, link) went up once and down at most once.
			counts := map[PeerEvent]int{}
			for _, ev := range n1.events() {
				counts[ev]++
			}
			for ev, n := range counts {
				if n != 1 {
					t.Errorf("event %+v seen %d times", ev, n)
				}
			}
			// Node 1 may have dialed the new process before it heard of it,
			// with a hello addressed to incarnation 1 that node 2 refused;
			// node 1 itself never has a reason to refuse.
			if r := n1.tr.Stats().TripwireRejected; r != 0 {
				t.Errorf("node 1 rejected %d tripwire connections", r)
			}
			if got := n1.tr.opener.PeerIncarnation(2); got != 2 {
				t.Errorf("node 1 knows node 2 as incarnation %d", got)
			}
			t.Logf("restarted node 2 rejected %d tripwire hellos", n2b.tr.Stats().TripwireRejected)
		})
	}
}

// TestTripwireRejectsStrangers connects without the key, or with a replayed
// hello, and expects the connection closed, counted, and no event.
func TestTripwireRejectsStrangers(t *testing.T) {
	// Only node 1 runs; the tests speak for node 3.
	c := newTestNet(t, 3, 1)
	n1 := c.start(clusterConfig(3, 1, testKey, c.port, 1, 1))

	record := func(frame []byte) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(len(frame))), frame...)
	}
	good := mustSealer(t, testCluster, testKey, 3, 7)
	genuine := record(good.Seal(nil, 1, 0, 0, nil, []byte(helloPayload)))
	node3 := net.IPv4(127, 0, 0, 3)
	for _, tc := range []struct {
		name string
		from net.IP
		send []byte
	}{
		{"not a peer address", net.IPv4(127, 0, 0, 9), genuine},
		{"garbage", node3, []byte("GET / HTTP/1.0\r\n\r\n")},
		{"oversized record", node3, []byte{0xFF, 0xFF}},
		{"wrong key", node3, record(mustSealer(t, testCluster, otherKey, 3, 7).Seal(nil, 1, 0, 0, nil, []byte(helloPayload)))},
		{"wrong payload", node3, record(good.Seal(nil, 1, 0, 0, nil, []byte("howdy")))},
		{"genuine", node3, genuine},
		{"replayed genuine", node3, genuine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n1.tr.Stats().TripwireRejected
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: tc.from}}
			conn, err := d.Dial("tcp", n1.tr.LocalAddr(0).String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.send); err != nil && tc.name != "not a peer address" {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(waitTimeout))
			if tc.name == "genuine" {
				// The acceptor answers with its own hello and raises Up.
				var lenb [2]byte
				if _, err := io.ReadFull(conn, lenb[:]); err != nil {
					t.Fatalf("no hello back: %v", err)
				}
				waitFor(t, "up for incarnation 7", func() bool { return n1.hasEvent(PeerEvent{Node: 3, Incarnation: 7, Link: 0, Up: true}) })
				conn.Close()
				waitFor(t, "down for incarnation 7", func() bool { return n1.hasEvent(PeerEvent{Node: 3, Incarnation: 7, Link: 0, Up: false}) })
				return
			}
			if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("read: %v", err)
			}
			waitFor(t, "rejection counted", func() bool { return n1.tr.Stats().TripwireRejected == before+1 })
		})
	}
	if evs := n1.events(); len(evs) != 2 {
		t.Fatalf("events %+v, want only up and down of node 3 incarnation 7", evs)
	}
}

// TestStartStopWithContext checks that canceling Start's context closes the
// transport and its channels.
func TestStartStopWithContext(t *testing.T) {
	port := freePort(t, 2, 1)
	tr, err := New(clusterConfig(2, 1, testKey, port, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.Start(ctx)
	cancel()
	select {
	case _, ok := <-tr.Incoming():
		if ok {
			t.Fatal("unexpected packet")
		}
	case <-time.After(waitTimeout):
		t.Fatal("Incoming not closed after the context was canceled")
	}
	if _, ok := <-tr.PeerEvents(); ok {
		t.Fatal("PeerEvents not closed")
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The addresses are free again.
	tr2, err := New(clusterConfig(2, 1, testKey, port, 1, 2))
	if err != nil {
		t.Fatalf("rebind after close: %v", err)
	}
	tr2.Close()
}

// TestTransportIPv6 exchanges a small and a fragmented payload over ::1,
// two nodes on one address with different ports.
func TestTransportIPv6(t *testing.T) {
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	var ports [2]uint16
	for i := range ports {
		ln, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = uint16(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	addr := func(i int) netip.AddrPort { return netip.AddrPortFrom(netip.IPv6Loopback(), ports[i]) }
	c := &testNet{t: t, nodes: map[uint32]*testNode{}}
	for i := 0; i < 2; i++ {
		c.start(Config{
			ClusterName: testCluster, Key: testKey, Self: uint32(i + 1), Incarnation: 1,
			Links: []netip.AddrPort{addr(i)},
			Peers: map[uint32][]netip.AddrPort{1: {addr(0)}, 2: {addr(1)}},
		})
	}
	c.sendUntil(1, 2, 0, payloadFor(1, 2, 0, 100))
	c.sendUntil(2, 1, 0, payloadFor(2, 1, 0, 20000))
	// IPv6 datagrams keep 20 more bytes of headroom: MTU - 48.
	if r := c.nodes[1].tr.peers[2][0]; r.maxFrame != DefaultMTU-48 {
		t.Fatalf("IPv6 datagram limit %d", r.maxFrame)
	}
	waitFor(t, "tripwire up over IPv6", func() bool { return c.nodes[1].hasEvent(PeerEvent{Node: 2, Incarnation: 1, Link: 0, Up: true}) })
}
