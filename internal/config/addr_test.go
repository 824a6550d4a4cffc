package config

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseRingAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ip   string // "" for a hostname or an error
		host string
		port uint16
		err  string
	}{
		{in: "10.0.0.1", ip: "10.0.0.1"},
		{in: "10.0.0.1:5405", ip: "10.0.0.1", port: 5405},
		{in: "::1", ip: "::1"},
		{in: "fd00::1", ip: "fd00::1"},
		{in: "[fd00::1]", ip: "fd00::1"},
		{in: "[fd00::1]:6000", ip: "fd00::1", port: 6000},
		{in: "fe80::1%eth0", ip: "fe80::1%eth0"},
		{in: "[fe80::1%eth0]:7", ip: "fe80::1%eth0", port: 7},
		{in: "node1", host: "node1"},
		{in: "node1.example.com:5405", host: "node1.example.com", port: 5405},
		{in: "node-1.example.com.", host: "node-1.example.com."},
		{in: "10.0.0.1:", err: "missing port after ':'"},
		{in: "10.0.0.1:x", err: `invalid port "x": must be from 1 to 65535`},
		{in: "10.0.0.1:0", err: `invalid port "0": must be from 1 to 65535`},
		{in: "[::1", err: "missing ']'"},
		{in: "[::1]5405", err: "unexpected text after ']'"},
		{in: "[::1]:", err: "missing port after ':'"},
		{in: "[node1]:5", err: "not an IP address, IP:port, [IPv6]:port or hostname"},
		{in: "10.0.0.256", err: "not an IP address, IP:port, [IPv6]:port or hostname"},
		{in: "-bad.example", err: "not an IP address, IP:port, [IPv6]:port or hostname"},
		{in: "a b", err: "not an IP address, IP:port, [IPv6]:port or hostname"},
		{in: "224.0.0.1", err: "not a unicast node address"},
		{in: "::", err: "not a unicast node address"},
	} {
		a, err := parseRingAddr(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseRingAddr(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRingAddr(%q): %v", tc.in, err)
			continue
		}
		var ip string
		if a.ip.IsValid() {
			ip = a.ip.String()
		}
		if ip != tc.ip || a.host != tc.host || a.port != tc.port {
			t.Errorf("parseRingAddr(%q) = %+v, want ip %q host %q port %d", tc.in, a, tc.ip, tc.host, tc.port)
		}
	}
}

func TestNodeAddr(t *testing.T) {
	text := `totem {
	cluster_name: a
	interface {
		linknumber: 1
		mcastport: 6000
	}
}
nodelist {
	node {
		nodeid: 1
		ring0_addr: 10.0.0.1
		ring1_addr: fd00::1
	}
	node {
		nodeid: 2
		ring0_addr: 10.0.0.2:7000
		ring1_addr: [fd00::2]:7001
	}
	node {
		nodeid: 3
		ring0_addr: node3.example
		ring1_addr: [fd00::3]
	}
}
`
	c := mustParse(t, "a.conf", text)
	if c.LinkCount() != 2 || c.LinkPort(0) != DefaultPort || c.LinkPort(1) != 6000 {
		t.Fatalf("links %d, ports %d %d", c.LinkCount(), c.LinkPort(0), c.LinkPort(1))
	}
	for _, tc := range []struct {
		id   uint32
		link int
		want string
		err  string
	}{
		{id: 1, link: 0, want: "10.0.0.1:5405"},
		{id: 1, link: 1, want: "[fd00::1]:6000"},
		{id: 2, link: 0, want: "10.0.0.2:7000"},
		{id: 2, link: 1, want: "[fd00::2]:7001"},
		{id: 3, link: 1, want: "[fd00::3]:6000"},
		{id: 3, link: 0, err: `config: node 3: ring0_addr "node3.example" is a hostname: hostnames must be resolved with Config.Resolve first`},
		{id: 1, link: 2, err: "config: node 1 has no ring2_addr"},
		{id: 1, link: 8, err: "config: node 1: link 8 out of range 0..7"},
	} {
		n, _ := c.NodeByID(tc.id)
		got, err := n.Addr(tc.link)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("node %d Addr(%d) error = %v, want %q", tc.id, tc.link, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("node %d Addr(%d) = %v, %v, want %s", tc.id, tc.link, got, err, tc.want)
		}
	}
	// A Node built in code uses the default port.
	n := Node{ID: 9, Links: [MaxLinks]string{"192.0.2.9"}}
	if a, err := n.Addr(0); err != nil || a != netip.MustParseAddrPort("192.0.2.9:5405") {
		t.Errorf("Addr = %v, %v", a, err)
	}
}

func TestMultipleLinksTOML(t *testing.T) {
	text := `[totem]
cluster_name = "m"
[[totem.interface]]
linknumber = 2
mcastport = 5500
[[nodelist.node]]
nodeid = 1
ring0_addr = "10.0.0.1"
ring2_addr = "10.2.0.1"
[[nodelist.node]]
nodeid = 2
ring0_addr = "10.0.0.2"
ring2_addr = "10.2.0.2"
`
	c := mustParse(t, "m.toml", text)
	if c.LinkCount() != 2 {
		t.Errorf("LinkCount = %d", c.LinkCount())
	}
	n, _ := c.NodeByID(2)
	if a, err := n.Addr(2); err != nil || a.String() != "10.2.0.2:5500" {
		t.Errorf("Addr(2) = %v, %v", a, err)
	}
	// The same address on different links, or with different ports on one
	// link (several agents on one host), is fine.
	text = `[totem]
cluster_name = "m"
[[nodelist.node]]
nodeid = 1
ring0_addr = "127.0.0.1:5405"
ring1_addr = "127.0.0.1:6405"
[[nodelist.node]]
nodeid = 2
ring0_addr = "127.0.0.1:5406"
ring1_addr = "127.0.0.1:6406"
`
	mustParse(t, "m.toml", text)
	_, err := Parse("m.toml", []byte(strings.Replace(text, "5406", "5405", 1)))
	want := []string{`m.toml:9: nodelist.node.1.ring0_addr: address "127.0.0.1:5405" is also used by nodelist.node.0 on link 0`}
	if got := errStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

// noDNS is a resolver that only knows /etc/hosts: tests never reach a
// name server.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

func TestResolve(t *testing.T) {
	text := "totem {\n cluster_name: r\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: localhost:7000\n }\n node {\n  nodeid: 2\n  ring0_addr: 127.0.0.1:7001\n }\n}\n"
	c := mustParse(t, "r.conf", text)
	if err := c.Resolve(context.Background(), noDNS); err != nil {
		t.Fatal(err)
	}
	n, _ := c.NodeByID(1)
	if n.Links[0] != "127.0.0.1:7000" {
		t.Errorf("resolved to %q, want 127.0.0.1:7000", n.Links[0])
	}
	if a, err := n.Addr(0); err != nil || a.String() != "127.0.0.1:7000" {
		t.Errorf("Addr = %v, %v", a, err)
	}

	// A name and a literal for one address are caught once resolved.
	c = mustParse(t, "r.conf", strings.Replace(text, "127.0.0.1:7001", "127.0.0.1:7000", 1))
	err := c.Resolve(context.Background(), noDNS)
	want := []string{`r.conf:11: nodelist.node.1.ring0_addr: address "127.0.0.1:7000" is also used by nodelist.node.0 on link 0`}
	if got := errStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}

	c = mustParse(t, "r.conf", strings.Replace(text, "localhost:7000", "no-such-host.invalid", 1))
	err = c.Resolve(context.Background(), noDNS)
	got := errStrings(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], `r.conf:7: nodelist.node.0.ring0_addr: cannot resolve "no-such-host.invalid": `) {
		t.Errorf("errors %q", got)
	}
}

func TestPickAddr(t *testing.T) {
	ips := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::ffff:10.0.0.2")}
	for fam, want := range map[int]string{0: "fd00::1", 4: "10.0.0.1", 6: "fd00::1"} {
		if got, ok := pickAddr(ips, fam); !ok || got.String() != want {
			t.Errorf("pickAddr(fam %d) = %v, %v, want %s", fam, got, ok, want)
		}
	}
	if _, ok := pickAddr(ips[:1], 6); ok {
		t.Errorf("pickAddr found an IPv6 address in %v", ips[:1])
	}
}
