package lab

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpIn opens a UDP socket bound to addr:port inside namespace ns.
func udpIn(t *testing.T, ns string, addr netip.Addr, port int) *net.UDPConn {
	t.Helper()
	fd, err := socketInNetns(ns, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: port}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "udp")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// probe sends one datagram from node a to node b on link 0 and returns how
// long it took to arrive, or ok false if it did not within wait.
func probe(t *testing.T, from, to *net.UDPConn, dst netip.AddrPort, wait time.Duration) (time.Duration, bool) {
	t.Helper()
	msg := []byte(fmt.Sprint(time.Now().UnixNano()))
	start := time.Now()
	if _, err := from.WriteToUDPAddrPort(msg, dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	deadline := start.Add(wait)
	for {
		to.SetReadDeadline(deadline)
		n, _, err := to.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, false
		}
		if bytes.Equal(buf[:n], msg) {
			return time.Since(start), true
		}
	}
}

// TestNetnsFaults checks the fault injection itself with plain UDP
// between two node namespaces (no agents).
func TestNetnsFaults(t *testing.T) {
	if ok, why := NetnsAvailable(); !ok {
		t.Skipf("needs network namespaces: %s", why)
	}
	c, err := New(Options{Binary: "/bin/true", Nodes: 2, Netns: true, Links: 2, Cleartext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n1, n2 := c.Node(1), c.Node(2)
	a := udpIn(t, n1.Netns, n1.Addrs[0], 9000)
	b := udpIn(t, n2.Netns, n2.Addrs[0], 9000)
	toB := netip.AddrPortFrom(n2.Addrs[0], 9000)
	toA := netip.AddrPortFrom(n1.Addrs[0], 9000)
	const wait = 2 * time.Second
	const lost = 300 * time.Millisecond // how long a test waits for a packet it expects lost

	if _, ok := probe(t, a, b, toB, wait); !ok {
		t.Fatal("no connectivity between the node namespaces")
	}
	if _, ok := probe(t, b, a, toA, wait); !ok {
		t.Fatal("no connectivity from node 2 to node 1")
	}

	// One way.
	if err := c.DropOneWay(1, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, a, b, toB, lost); ok {
		t.Error("DropOneWay(1, 2): a packet from 1 reached 2")
	}
	if _, ok := probe(t, b, a, toA, wait); !ok {
		t.Error("DropOneWay(1, 2): the reverse direction is broken")
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, a, b, toB, wait); !ok {
		t.Error("Heal did not restore 1 -> 2")
	}

	// Partition.
	if err := c.Partition([]uint32{1}, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, b, a, toA, lost); ok {
		t.Error("Partition: a packet from 2 reached 1")
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}

	// Link down, on link 0 only.
	if err := c.LinkDown(2, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, a, b, toB, lost); ok {
		t.Error("LinkDown(2, 0): a packet reached node 2 on link 0")
	}
	a1 := udpIn(t, n1.Netns, n1.Addrs[1], 9000)
	b1 := udpIn(t, n2.Netns, n2.Addrs[1], 9000)
	if _, ok := probe(t, a1, b1, netip.AddrPortFrom(n2.Addrs[1], 9000), wait); !ok {
		t.Error("LinkDown(2, 0) also cut link 1")
	}
	if err := c.LinkUp(2, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, a, b, toB, wait); !ok {
		t.Error("LinkUp(2, 0) did not restore link 0")
		for _, args := range [][]string{{"-n", n1.Netns, "neigh"}, {"-n", n2.Netns, "neigh"}, {"-n", n1.Netns, "link"}, {"-n", n2.Netns, "link"}, {"-n", c.net.hub, "link"}, {"-n", c.net.hub, "-d", "link", "show", "n2l0"}} {
			out, _ := exec.Command("ip", args...).CombinedOutput()
			t.Logf("ip %v:\n%s", args, out)
		}
		if _, ok := probe(t, a, b, toB, 10*wait); ok {
			t.Log("restored later")
		}
	}

	// Netem (or its stand-in): delay, total loss, off.
	if err := c.Netem(1, "delay", "100ms"); err != nil {
		t.Fatal(err)
	}
	if d, ok := probe(t, a, b, toB, wait); !ok || d < 90*time.Millisecond {
		t.Errorf("Netem delay 100ms: arrived %v after %v", ok, d)
	}
	if d, ok := probe(t, b, a, toA, wait); !ok || d > 90*time.Millisecond {
		t.Errorf("Netem on node 1 delayed node 2's packets: arrived %v after %v", ok, d)
	}
	if err := c.Netem(1, "loss", "100%"); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe(t, a, b, toB, lost); ok {
		t.Error("Netem loss 100%: the packet arrived")
	}
	if err := c.Netem(1, "off"); err != nil {
		t.Fatal(err)
	}
	if d, ok := probe(t, a, b, toB, wait); !ok || d > 90*time.Millisecond {
		t.Errorf("Netem off: arrived %v after %v", ok, d)
	}

	// Close removes every namespace.
	names := []string{n1.Netns, n2.Netns, c.net.hub}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile("/proc/self/mounts") // netns names are bind mounts
	for _, ns := range names {
		if _, err := os.Stat("/run/netns/" + ns); err == nil || strings.Contains(string(out), "/run/netns/"+ns+" ") {
			t.Errorf("namespace %s survived Close", ns)
		}
	}
}
