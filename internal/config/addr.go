package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ringAddr is a parsed ringN_addr: an IP literal or a hostname, with an
// optional port.
type ringAddr struct {
	ip   netip.Addr // valid for a literal
	host string     // set for a hostname
	port uint16     // 0 = the link's port
}

// parseRingAddr accepts an IP literal ("10.0.0.1", "::1", "fe80::1%eth0"),
// IP:port ("10.0.0.1:5405"), [IPv6] or [IPv6]:port, and a hostname with an
// optional :port. A bare IPv6 literal has no port: its colons are the
// address's own.
func parseRingAddr(s string) (ringAddr, error) {
	var a ringAddr
	host, port := s, ""
	bracket := strings.HasPrefix(s, "[")
	switch {
	case bracket:
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return a, errors.New("missing ']'")
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return a, errors.New("unexpected text after ']'")
			}
			port = p
			if port == "" {
				return a, errors.New("missing port after ':'")
			}
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return a, errors.New("missing port after ':'")
		}
	}
	if port != "" {
		n, ok := parseDecimal(port)
		if !ok || n < 1 || n > 65535 {
			return a, fmt.Errorf("invalid port %q: must be from 1 to 65535", port)
		}
		a.port = uint16(n)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case bracket && !ip.Is6():
			return a, errors.New("brackets are only for IPv6 addresses")
		case ip.IsUnspecified(), ip.IsMulticast():
			return a, errors.New("not a unicast node address")
		}
		a.ip = ip
		return a, nil
	}
	if bracket || !isHostname(host) {
		return a, errors.New("not an IP address, IP:port, [IPv6]:port or hostname")
	}
	a.host = host
	return a, nil
}

// isHostname reports whether s is a syntactically valid DNS name (RFC 1123
// labels; a trailing dot is allowed). An all-numeric last label is refused,
// so that a mistyped IPv4 address such as 10.0.0.256 is reported as invalid
// instead of being looked up.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	_, err := strconv.ParseUint(labels[len(labels)-1], 10, 64)
	return err != nil
}

// normalized is the address in a form where two spellings of the same
// endpoint compare equal; defPort stands in for a missing port.
func (a ringAddr) normalized(defPort uint16) string {
	port := a.port
	if port == 0 {
		port = defPort
	}
	if a.host != "" {
		return strings.ToLower(strings.TrimSuffix(a.host, ".")) + ":" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a.ip.Unmap(), port).String()
}

// Addr is the node's address on link: the IP and port written in
// ring<link>_addr, or the link's port (Config.LinkPort) when none is written.
// A hostname is an error: hostnames must be resolved with Config.Resolve
// first, so that lookups happen once, at a time the agent chooses.
func (n Node) Addr(link int) (netip.AddrPort, error) {
	if link < 0 || link >= MaxLinks {
		return netip.AddrPort{}, fmt.Errorf("config: node %d: link %d out of range 0..%d", n.ID, link, MaxLinks-1)
	}
	s := n.Links[link]
	if s == "" {
		return netip.AddrPort{}, fmt.Errorf("config: node %d has no ring%d_addr", n.ID, link)
	}
	a, err := parseRingAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("config: node %d: ring%d_addr %q: %w", n.ID, link, s, err)
	}
	if a.host != "" {
		return netip.AddrPort{}, fmt.Errorf("config: node %d: ring%d_addr %q is a hostname: hostnames must be resolved with Config.Resolve first", n.ID, link, s)
	}
	port := a.port
	if port == 0 {
		port = n.ports[link]
	}
	if port == 0 {
		port = DefaultPort
	}
	return netip.AddrPortFrom(a.ip, port), nil
}

// Resolve replaces every hostname in the nodes' ring addresses by an IP
// address, in place, keeping a written port. When other nodes give literal
// addresses on the same link, an address of their family is chosen;
// otherwise IPv6 is preferred over IPv4, like corosync's default ip_version
// (ipv6-4). r nil means net.DefaultResolver. After resolving, the Config is
// validated again (two names may resolve to one address). Errors name
// file:line:key.
func (c *Config) Resolve(ctx context.Context, r *net.Resolver) error {
	if r == nil {
		r = net.DefaultResolver
	}
	var errs []error
	for i := range c.Nodes {
		n := &c.Nodes[i]
		for link, s := range n.Links {
			a, err := parseRingAddr(s)
			if s == "" || err != nil || a.host == "" {
				continue // invalid addresses are Validate's to report
			}
			key := linkKey(i, link)
			ips, err := r.LookupNetIP(ctx, "ip", a.host)
			if err != nil {
				errs = append(errs, &Error{File: c.Path, Line: c.line(key), Key: key, Msg: fmt.Sprintf("cannot resolve %q: %v", a.host, err)})
				continue
			}
			fam := c.linkFamily(link)
			ip, ok := pickAddr(ips, fam)
			if !ok {
				msg := fmt.Sprintf("%q resolves to no usable address", a.host)
				if fam != 0 {
					msg = fmt.Sprintf("%q has no IPv%d address, the family of the other addresses on link %d", a.host, fam, link)
				}
				errs = append(errs, &Error{File: c.Path, Line: c.line(key), Key: key, Msg: msg})
				continue
			}
			if a.port != 0 {
				n.Links[link] = netip.AddrPortFrom(ip, a.port).String()
			} else {
				n.Links[link] = ip.String()
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return c.Validate()
}

// linkFamily is 4 or 6 when the literal addresses on link are all of that
// family, 0 when there are none or both.
func (c *Config) linkFamily(link int) int {
	fam := 0
	for _, n := range c.Nodes {
		a, err := parseRingAddr(n.Links[link])
		if n.Links[link] == "" || err != nil || a.host != "" {
			continue
		}
		f := 6
		if a.ip.Unmap().Is4() {
			f = 4
		}
		if fam != 0 && fam != f {
			return 0
		}
		fam = f
	}
	return fam
}

// pickAddr chooses a usable unicast address of family fam (4 or 6), or with
// fam 0 the first IPv6 address, else the first IPv4 one.
func pickAddr(ips []netip.Addr, fam int) (netip.Addr, bool) {
	want := []int{fam}
	if fam == 0 {
		want = []int{6, 4}
	}
	for _, f := range want {
		for _, ip := range ips {
			ip = ip.Unmap()
			if ip.IsUnspecified() || ip.IsMulticast() {
				continue
			}
			if ip.Is4() == (f == 4) {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}
