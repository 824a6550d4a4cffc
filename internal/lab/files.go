package lab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/transport"
)

// defaultPort is the port of every node in netns mode, where each node has
// its own namespace and so the corosync default is always free.
const defaultPort = config.DefaultPort

// writeFiles writes the key (unless cleartext or already there) and the
// configuration, and checks that the agent's parser accepts the latter.
func (c *Cluster) writeFiles() error {
	o := c.Opts
	if !o.Cleartext {
		c.keyPath = filepath.Join(c.Dir, "authkey")
		if _, err := os.Stat(c.keyPath); errors.Is(err, os.ErrNotExist) {
			if err := transport.WriteKey(c.keyPath, rand.Reader); err != nil {
				return fmt.Errorf("lab: %w", err)
			}
		}
	}
	var text, name string
	var err error
	if o.Format == "corosync" {
		name = "corosync.conf"
		text, err = c.corosyncConf()
	} else {
		name = "conclave.toml"
		text, err = c.tomlConf()
	}
	if err != nil {
		return err
	}
	path := filepath.Join(c.Dir, name)
	// Catch a bad ExtraTOML or timing here, with the parser's file:line
	// message, rather than as three agents exiting with status 2.
	cfg, err := config.Parse(path, []byte(text))
	if err != nil {
		return fmt.Errorf("lab: the generated configuration does not parse: %w\n%s", err, text)
	}
	if got, want := cfg.Format.String(), map[string]string{"toml": "toml", "corosync": "corosync.conf"}[o.Format]; got != want {
		return fmt.Errorf("lab: the generated configuration reads as %s, not %s", got, want)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	for _, n := range c.nodes {
		n.ConfigPath = path
	}
	return nil
}

// ms renders a duration as the whole milliseconds both formats want.
func ms(name string, d time.Duration) (string, error) {
	if d < 0 || d%time.Millisecond != 0 {
		return "", fmt.Errorf("lab: Options.%s %v: want a non-negative whole number of milliseconds", name, d)
	}
	return fmt.Sprint(d.Milliseconds()), nil
}

// timing returns the totem timing keys that are set, in a fixed order.
func (c *Cluster) timing() ([][2]string, error) {
	var kv [][2]string
	for _, t := range []struct {
		key, name string
		d         time.Duration
	}{
		{"token", "Token", c.Opts.Token},
		{"consensus", "Consensus", c.Opts.Consensus},
		{"join", "Join", c.Opts.Join},
		{"heartbeat", "Heartbeat", c.Opts.Heartbeat},
	} {
		if t.d == 0 {
			continue
		}
		v, err := ms(t.name, t.d)
		if err != nil {
			return nil, err
		}
		kv = append(kv, [2]string{t.key, v})
	}
	return append(kv, c.Opts.Totem...), nil
}

func (c *Cluster) tomlConf() (string, error) {
	o := c.Opts
	timing, err := c.timing()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by conclave's lab for a local %d-node cluster.\n[totem]\n", o.Nodes)
	fmt.Fprintf(&b, "cluster_name = %q\n", o.ClusterName)
	for _, kv := range timing {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	if o.Cleartext {
		b.WriteString("crypto_cipher = \"none\"\ncrypto_hash = \"none\"\n")
	} else {
		fmt.Fprintf(&b, "crypto_cipher = \"aes256\"\ncrypto_hash = \"sha256\"\nkeyfile = %q\n", c.keyPath)
	}
	for l := range o.Links {
		fmt.Fprintf(&b, "\n[[totem.interface]]\nlinknumber = %d\nmcastport = %d\n", l, o.Port)
	}
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n[[nodelist.node]]\nnodeid = %d\nname = \"node%d\"\n", n.ID, n.ID)
		for l, a := range n.Addrs {
			fmt.Fprintf(&b, "ring%d_addr = %q\n", l, a)
		}
	}
	if !strings.Contains(o.ExtraTOML, "[quorum]") {
		b.WriteString("\n[quorum]\nprovider = \"corosync_votequorum\"\n")
		for _, kv := range o.Quorum {
			v := kv[1]
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, "%s = %s\n", kv[0], v)
		}
	}
	if o.ExtraTOML != "" {
		b.WriteString("\n")
		b.WriteString(o.ExtraTOML)
		if !strings.HasSuffix(o.ExtraTOML, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}

// corosyncConf writes what pcs writes for a knet cluster, so that the test
// of "an unmodified corosync.conf works" is honest: no Conclave-only key
// appears unless a timing option asks for one (heartbeat).
func (c *Cluster) corosyncConf() (string, error) {
	o := c.Opts
	timing, err := c.timing()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("totem {\n    version: 2\n")
	fmt.Fprintf(&b, "    cluster_name: %s\n    transport: knet\n", o.ClusterName)
	if o.Cleartext {
		b.WriteString("    crypto_cipher: none\n    crypto_hash: none\n")
	} else {
		b.WriteString("    crypto_cipher: aes256\n    crypto_hash: sha256\n")
	}
	for _, kv := range timing {
		fmt.Fprintf(&b, "    %s: %s\n", kv[0], kv[1])
	}
	for l := range o.Links {
		fmt.Fprintf(&b, "\n    interface {\n        linknumber: %d\n        mcastport: %d\n    }\n", l, o.Port)
	}
	b.WriteString("}\n\nnodelist {\n")
	for i, n := range c.nodes {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("    node {\n")
		for l, a := range n.Addrs {
			fmt.Fprintf(&b, "        ring%d_addr: %s\n", l, a)
		}
		fmt.Fprintf(&b, "        name: node%d\n        nodeid: %d\n    }\n", n.ID, n.ID)
	}
	b.WriteString("}\n\nquorum {\n    provider: corosync_votequorum\n")
	for _, kv := range o.Quorum {
		fmt.Fprintf(&b, "    %s: %s\n", kv[0], kv[1])
	}
	b.WriteString("}\n\n")
	b.WriteString("logging {\n    to_logfile: yes\n    logfile: /var/log/cluster/corosync.log\n    to_syslog: yes\n    timestamp: on\n}\n")
	return b.String(), nil
}

// Ports handed out by pickPort in this process, so that clusters started
// in parallel before their agents bind never share one.
var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// Ports are picked below Linux's default ephemeral range (32768-60999),
// where outgoing connections (the agents' own tripwire dials among them)
// take their local ports.
const portLo, portHi = 20000, 32000

// pickPort returns a port that is free for UDP and TCP on every address.
func pickPort(addrs []netip.Addr) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		r, err := rand.Int(rand.Reader, big.NewInt(portHi-portLo))
		if err != nil {
			return 0, err
		}
		p := portLo + int(r.Int64())
		if ports[p] || !portFree(addrs, p) {
			continue
		}
		ports[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("lab: found no port in %d..%d free for UDP and TCP on %v", portLo, portHi, addrs)
}

func portFree(addrs []netip.Addr, port int) bool {
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port))
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return false
		}
		closers = append(closers, u)
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		if err != nil {
			return false
		}
		closers = append(closers, t)
	}
	return true
}
