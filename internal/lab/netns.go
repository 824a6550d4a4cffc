package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Names and addresses of netns mode. Every namespace the package creates is
// named nsPrefix<pid>-<counter>-..., so parallel test processes never collide
// and namespaces left by a crashed process (whose pid is gone) can be
// recognised and removed.
const (
	nsPrefix = "clab"
	// The 10.231.0.0/16 block: 10.231.<link>.<node>/24. It only ever exists
	// inside the lab's own namespaces, never in the host's.
	netBase0, netBase1 = 10, 231
	dropChain          = "LAB-DROP" // INPUT rules of Partition and DropOneWay
	emuChain           = "LAB-EMU"  // OUTPUT rules of the netem fallback
)

var nsCounter atomic.Uint64

func netnsAddr(link, node int) netip.Addr {
	return netip.AddrFrom4([4]byte{netBase0, netBase1, byte(link), byte(node)})
}

// nodeIf is a node's interface on a link inside its namespace; hubIf is the
// other end of that veth, in the hub.
func nodeIf(link int) string           { return fmt.Sprintf("eth%d", link) }
func hubIf(id uint32, link int) string { return fmt.Sprintf("n%dl%d", id, link) }

var (
	netnsOnce   sync.Once
	netnsOK     bool
	netnsReason string
)

// NetnsAvailable reports whether netns mode works here: root, the ip,
// iptables and tc commands, and a throwaway namespace in which iptables
// works. The reason says what is missing. The answer is computed once.
func NetnsAvailable() (ok bool, reason string) {
	netnsOnce.Do(func() { netnsOK, netnsReason = probeNetns() })
	return netnsOK, netnsReason
}

func probeNetns() (bool, string) {
	if os.Geteuid() != 0 {
		return false, fmt.Sprintf("network namespaces need root (running as uid %d)", os.Geteuid())
	}
	for _, tool := range []string{"ip", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, fmt.Sprintf("%s not found in PATH (Debian: apt-get install iproute2 iptables)", tool)
		}
	}
	sweepStale()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return false, fmt.Sprintf("cannot create a network namespace: %v", err)
	}
	defer run(context.Background(), "ip", "netns", "del", ns)
	if err := run(ctx, "ip", "netns", "exec", ns, "iptables", "-N", dropChain); err != nil {
		return false, fmt.Sprintf("iptables does not work in a network namespace: %v", err)
	}
	return true, ""
}

// sweepStale removes namespaces of this package whose creating process is
// gone (a test binary that was killed before its Close).
func sweepStale() {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			run(context.Background(), "ip", "netns", "del", e.Name())
		}
	}
}

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netLab is the namespaces of one cluster.
type netLab struct {
	prefix string
	hub    string
	nodes  int
	links  int

	mu      sync.Mutex
	created []string // namespaces to delete, in creation order
	emus    map[uint32]*emulator
	netem   int // 0 unknown, 1 the kernel has netem, -1 it has not
}

func newNetLab(ctx context.Context, nodes, links int) (_ *netLab, err error) {
	nl := &netLab{
		prefix: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsCounter.Add(1)),
		nodes:  nodes, links: links,
		emus: map[uint32]*emulator{},
	}
	nl.hub = nl.prefix + "-hub"
	defer func() {
		if err != nil {
			nl.close()
			err = fmt.Errorf("lab: setting up network namespaces: %w", err)
		}
	}()
	cmds := [][]string{}
	add := func(args ...string) { cmds = append(cmds, args) }
	exec := func() error {
		for _, a := range cmds {
			if err := run(ctx, a[0], a[1:]...); err != nil {
				return err
			}
		}
		cmds = cmds[:0]
		return nil
	}
	if err := nl.addNS(ctx, nl.hub); err != nil {
		return nil, err
	}
	for l := range links {
		br := fmt.Sprintf("br%d", l)
		// No STP and no forwarding delay: a port that comes back up (LinkUp)
		// forwards at once instead of listening and learning for 2×15 s.
		add("ip", "-n", nl.hub, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
		add("ip", "-n", nl.hub, "link", "set", br, "up")
	}
	if err := exec(); err != nil {
		return nil, err
	}
	for i := 1; i <= nodes; i++ {
		id := uint32(i)
		ns := nl.nodeNS(id)
		if err := nl.addNS(ctx, ns); err != nil {
			return nil, err
		}
		for l := range links {
			h, n := hubIf(id, l), nodeIf(l)
			add("ip", "-n", nl.hub, "link", "add", h, "type", "veth", "peer", "name", n, "netns", ns)
			add("ip", "-n", nl.hub, "link", "set", h, "master", fmt.Sprintf("br%d", l), "up")
			add("ip", "-n", ns, "addr", "add", netnsAddr(l, i).String()+"/24", "dev", n)
			add("ip", "-n", ns, "link", "set", n, "up")
		}
		add("ip", "netns", "exec", ns, "iptables", "-N", dropChain)
		add("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-j", dropChain)
	}
	if err := exec(); err != nil {
		return nil, err
	}
	return nl, nil
}

func (nl *netLab) addNS(ctx context.Context, ns string) error {
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	nl.mu.Lock()
	nl.created = append(nl.created, ns)
	nl.mu.Unlock()
	return run(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
}

func (nl *netLab) nodeNS(id uint32) string { return fmt.Sprintf("%s-n%d", nl.prefix, id) }

// close stops the netem fallbacks and deletes every namespace (the veths
// and bridges go with them).
func (nl *netLab) close() error {
	nl.mu.Lock()
	emus := nl.emus
	nl.emus = map[uint32]*emulator{}
	created := nl.created
	nl.created = nil
	nl.mu.Unlock()
	for _, e := range emus {
		e.close()
	}
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		if err := run(context.Background(), "ip", "netns", "del", created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) netCheck(ids ...uint32) error {
	if c.net == nil {
		return errNotNetns
	}
	for _, id := range ids {
		if _, err := c.node(id); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) linkCheck(id uint32, link int) error {
	if err := c.netCheck(id); err != nil {
		return err
	}
	if link < 0 || link >= c.Opts.Links {
		return fmt.Errorf("lab: no link %d (the cluster has links 0..%d)", link, c.Opts.Links-1)
	}
	return nil
}

// LinkDown cuts node id's link (its veth's hub end goes down, so the node
// sees no carrier). Netns only.
func (c *Cluster) LinkDown(id uint32, link int) error {
	if err := c.linkCheck(id, link); err != nil {
		return err
	}
	return run(context.Background(), "ip", "-n", c.net.hub, "link", "set", hubIf(id, link), "down")
}

// LinkUp restores a link cut by LinkDown. Netns only.
func (c *Cluster) LinkUp(id uint32, link int) error {
	if err := c.linkCheck(id, link); err != nil {
		return err
	}
	return run(context.Background(), "ip", "-n", c.net.hub, "link", "set", hubIf(id, link), "up")
}

// drop makes to's namespace drop every packet from from, on every link.
func (c *Cluster) drop(from, to uint32) error {
	for _, a := range c.Node(from).Addrs {
		if err := run(context.Background(), "ip", "netns", "exec", c.Node(to).Netns,
			"iptables", "-A", dropChain, "-s", a.String(), "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// Partition splits the cluster: nodes in different groups cannot reach
// each other, in either direction, on any link. Nodes in no group keep
// reaching everyone. It adds to earlier Partition and DropOneWay calls;
// Heal undoes them all. Netns only.
func (c *Cluster) Partition(groups ...[]uint32) error {
	var all []uint32
	for _, g := range groups {
		all = append(all, g...)
	}
	if err := c.netCheck(all...); err != nil {
		return err
	}
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					if err := c.drop(a, b); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// DropOneWay drops every packet from node from to node to (UDP and TCP, on
// every link); the reverse direction still works. Netns only.
func (c *Cluster) DropOneWay(from, to uint32) error {
	if err := c.netCheck(from, to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("lab: DropOneWay from node %d to itself", from)
	}
	return c.drop(from, to)
}

// Heal undoes every Partition and DropOneWay (not Netem, not LinkDown).
// Netns only.
func (c *Cluster) Heal() error {
	if err := c.netCheck(); err != nil {
		return err
	}
	var errs []error
	for _, n := range c.nodes {
		if err := run(context.Background(), "ip", "netns", "exec", n.Netns, "iptables", "-F", dropChain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Netem applies `tc qdisc replace dev <iface> root netem <args>` to every
// interface of node id, that is to everything the node sends (for example
// "loss", "20%", "delay", "50ms", "20ms"). Netem("off") removes it.
//
// Kernels built without sch_netem (some VM kernels) get a userspace
// stand-in instead: the node's outgoing packets go through an NFQUEUE that
// this process serves, dropping and delaying them as netem would. It knows
// "loss P%" and "delay D [JITTER]" (uniformly distributed, so packets
// reorder as with netem); the cluster's process must stay alive for it to
// work. Netns only.
func (c *Cluster) Netem(id uint32, args ...string) error {
	if err := c.netCheck(id); err != nil {
		return err
	}
	if len(args) == 0 {
		return errors.New("lab: Netem needs arguments (for example \"loss\", \"20%\"), or \"off\"")
	}
	nl := c.net
	ns := c.Node(id).Netns
	off := len(args) == 1 && args[0] == "off"

	nl.mu.Lock()
	mode := nl.netem
	e := nl.emus[id]
	if off {
		delete(nl.emus, id)
	}
	nl.mu.Unlock()
	if off {
		if e != nil {
			e.close()
			return run(context.Background(), "ip", "netns", "exec", ns, "iptables", "-F", emuChain)
		}
		if mode < 0 {
			return nil
		}
		return c.tcNetem(ns, true, nil)
	}
	if mode >= 0 {
		err := c.tcNetem(ns, false, args)
		if err == nil {
			nl.mu.Lock()
			nl.netem = 1
			nl.mu.Unlock()
			return nil
		}
		if mode == 1 || !strings.Contains(err.Error(), "qdisc kind is unknown") {
			return err
		}
		nl.mu.Lock()
		nl.netem = -1
		nl.mu.Unlock()
	}
	p, err := parseNetem(args)
	if err != nil {
		return fmt.Errorf("lab: this kernel has no netem and the userspace stand-in cannot do %q: %w", strings.Join(args, " "), err)
	}
	if e != nil {
		e.set(p)
		return nil
	}
	if e, err = startEmulator(ns, c.Opts.Links, p); err != nil {
		return fmt.Errorf("lab: node %d: netem stand-in: %w", id, err)
	}
	nl.mu.Lock()
	nl.emus[id] = e
	nl.mu.Unlock()
	return nil
}

func (c *Cluster) tcNetem(ns string, off bool, args []string) error {
	for l := range c.Opts.Links {
		var argv []string
		if off {
			argv = []string{"netns", "exec", ns, "tc", "qdisc", "del", "dev", nodeIf(l), "root"}
		} else {
			argv = append([]string{"netns", "exec", ns, "tc", "qdisc", "replace", "dev", nodeIf(l), "root", "netem"}, args...)
		}
		if err := run(context.Background(), "ip", argv...); err != nil {
			if off && (strings.Contains(err.Error(), "handle of zero") || strings.Contains(err.Error(), "No such file")) {
				continue // nothing to remove
			}
			return err
		}
	}
	return nil
}
