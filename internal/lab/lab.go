// Package lab starts local Conclave clusters as real agent processes: for
// `conclave demo`, `conclave bench` and the end-to-end tests.
//
// A cluster runs in one of two network setups:
//
//   - Loopback (the default, works as any user): node i listens on
//     127.0.0.i, every node on the same port, which New picks free for UDP
//     and TCP on all those addresses.
//   - Network namespaces (Options.Netns, root only): a private "hub"
//     namespace holds one bridge per link, and every node gets its own
//     namespace with one veth per link into the hub, addressed
//     10.231.<link>.<i>/24. That is what makes link failures, partitions,
//     one-way loss and netem possible without touching the host's own
//     network. See NetnsAvailable.
//
// Everything a cluster writes (configuration, key, sockets, data
// directories, logs) lives in Cluster.Dir, whose Unix sockets are reachable
// from the calling process in both setups.
//
// The package starts and observes processes; it never decides whether a
// cluster behaves correctly. WaitView is the one condition it knows, because
// every caller needs it.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

// Options describe a lab cluster. The zero value of every field but Binary
// and Nodes is a usable default.
type Options struct {
	Binary string // conclave binary (required)
	Nodes  int    // node ids 1..Nodes
	// Dir is the working directory for the configuration, key, sockets, data
	// directories and logs. "" = a new temporary directory, removed by Close
	// unless Keep. A Dir that already holds a cluster is reused: its key and
	// data directories (ring seq, incarnation) are kept, its configuration is
	// rewritten.
	Dir  string
	Keep bool
	// Port is the one port every node uses on every link, for UDP and the
	// TCP tripwire. 0 = in loopback mode a port free on all node addresses
	// (the chosen one is stored back into Cluster.Opts.Port); in netns mode
	// config.DefaultPort (5405), since every node has its own namespace.
	Port int
	// Links is the number of links per node: default 1. Only netns mode may
	// use more (loopback addresses cannot be taken down one at a time).
	Links int
	// Format is "toml" (default) or "corosync": the latter writes a
	// corosync.conf as pcs would (totem, nodelist, quorum, logging), which
	// the agent must read unmodified.
	Format      string
	Cleartext   bool   // crypto_cipher none; otherwise a key is generated in Dir
	ClusterName string // default "lab"
	// Token, Consensus, Join and Heartbeat are written to the configuration
	// in whole milliseconds; 0 = the agent's defaults (token 800 ms).
	Token, Consensus, Join, Heartbeat time.Duration
	// Totem holds more totem keys as key and value pairs (numbers), written
	// in either format: {"flap_count", "1000"}.
	Totem [][2]string
	// ExtraTOML is appended to a TOML configuration (for example a [quorum]
	// section). It is an error with Format "corosync".
	ExtraTOML string
	// Quorum holds quorum-section options as key and value pairs, written
	// in either format ({"two_node", "1"}, {"auto_tie_breaker_node",
	// "lowest"}); the provider is always corosync_votequorum unless
	// ExtraTOML writes its own [quorum] section.
	Quorum [][2]string
	// Netns puts every node in its own network namespace (root only).
	Netns    bool
	LogLevel string // the agents' --log-level; "" = agent default (info)
	// Stderr, if set, receives a copy of every agent's stderr, whole lines
	// at a time. Each agent's stderr always goes to its Node.LogPath.
	Stderr io.Writer
}

// Cluster is a set of agent processes described by one configuration.
// Its methods are safe for concurrent use.
type Cluster struct {
	Dir string // absolute; holds every file of the cluster
	// Opts are the options as applied: defaults filled in, Dir and the
	// chosen Port set. Do not change them.
	Opts Options

	mu      sync.Mutex
	nodes   []*Node // index id-1
	tmpDir  bool    // Dir was created by New: Close removes it unless Keep
	keyPath string  // "" in cleartext
	net     *netLab // nil in loopback mode
	closed  bool
	stderr  *sharedWriter // Opts.Stderr
}

// Node is one member of a lab cluster. Its exported fields do not change
// after New.
type Node struct {
	ID         uint32
	Addrs      []netip.Addr // per link
	Socket     string       // client API socket
	DataDir    string
	LogPath    string // the agent's stderr, appended to across restarts
	ConfigPath string
	Netns      string // "" in loopback mode

	proc *process // the latest process; nil before the first start

	connMu sync.Mutex
	conn   *grpc.ClientConn // cached for Status; dropped on any error
}

// process is one run of an agent.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait returned
	err  error         // Wait's result, valid after done
	log  *os.File
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start writes the cluster's files and starts every node. It does not wait
// for the agents to form a view: see WaitView.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c, err := newCluster(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if err := c.StartNode(n.ID); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// New writes the cluster's files (and in netns mode creates its
// namespaces) without starting any node. Close undoes it.
func New(o Options) (*Cluster, error) {
	return newCluster(context.Background(), o)
}

func newCluster(ctx context.Context, o Options) (*Cluster, error) {
	if o.Binary == "" {
		return nil, errors.New("lab: Options.Binary is required")
	}
	if o.Nodes < 1 || o.Nodes > 250 {
		return nil, fmt.Errorf("lab: Options.Nodes is %d: want 1..250", o.Nodes)
	}
	if o.Links == 0 {
		o.Links = 1
	}
	if o.Links < 1 || o.Links > 8 {
		return nil, fmt.Errorf("lab: Options.Links is %d: want 1..8", o.Links)
	}
	if o.Links > 1 && !o.Netns {
		return nil, fmt.Errorf("lab: %d links need Netns: loopback addresses cannot fail one at a time", o.Links)
	}
	switch o.Format {
	case "":
		o.Format = "toml"
	case "toml", "corosync":
	default:
		return nil, fmt.Errorf("lab: Options.Format %q: want toml or corosync", o.Format)
	}
	if o.Format == "corosync" && o.ExtraTOML != "" {
		return nil, errors.New("lab: Options.ExtraTOML needs Format toml")
	}
	if o.ClusterName == "" {
		o.ClusterName = "lab"
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("lab: Options.Port %d out of range", o.Port)
	}
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("lab: conclave binary: %w", err)
	}
	o.Binary = bin
	if o.Netns {
		if ok, why := NetnsAvailable(); !ok {
			return nil, fmt.Errorf("lab: network namespaces unavailable: %s", why)
		}
	}

	c := &Cluster{Opts: o}
	if o.Stderr != nil {
		c.stderr = &sharedWriter{w: o.Stderr}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "conclave-lab-")
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		c.Dir, c.tmpDir = d, true
	} else {
		d, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		c.Dir = d
	}
	c.Opts.Dir = c.Dir
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()

	for i := 1; i <= o.Nodes; i++ {
		n := &Node{
			ID:      uint32(i),
			Socket:  filepath.Join(c.Dir, fmt.Sprintf("n%d.sock", i)),
			DataDir: filepath.Join(c.Dir, fmt.Sprintf("n%d", i)),
			LogPath: filepath.Join(c.Dir, fmt.Sprintf("n%d.log", i)),
		}
		// sun_path is 108 bytes including the terminating NUL.
		if len(n.Socket) > 107 {
			return nil, fmt.Errorf("lab: socket path %s is longer than a Unix socket allows: use a shorter Dir", n.Socket)
		}
		for l := range o.Links {
			if o.Netns {
				n.Addrs = append(n.Addrs, netnsAddr(l, i))
			} else {
				n.Addrs = append(n.Addrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}))
			}
		}
		c.nodes = append(c.nodes, n)
	}

	if o.Netns {
		if c.Opts.Port == 0 {
			c.Opts.Port = defaultPort
		}
		nl, err := newNetLab(ctx, o.Nodes, o.Links)
		if err != nil {
			return nil, err
		}
		c.net = nl
		for _, n := range c.nodes {
			n.Netns = nl.nodeNS(n.ID)
		}
	} else if c.Opts.Port == 0 {
		var addrs []netip.Addr
		for _, n := range c.nodes {
			addrs = append(addrs, n.Addrs...)
		}
		p, err := pickPort(addrs)
		if err != nil {
			return nil, err
		}
		c.Opts.Port = p
	}

	if err := c.writeFiles(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id uint32) *Node {
	if id < 1 || int(id) > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

// Nodes returns the ids of all nodes, 1..Opts.Nodes.
func (c *Cluster) Nodes() []uint32 {
	ids := make([]uint32, len(c.nodes))
	for i := range c.nodes {
		ids[i] = uint32(i + 1)
	}
	return ids
}

func (c *Cluster) node(id uint32) (*Node, error) {
	n := c.Node(id)
	if n == nil {
		return nil, fmt.Errorf("lab: no node %d (the cluster has nodes 1..%d)", id, len(c.nodes))
	}
	return n, nil
}

// command is the agent's command line for node n.
func (c *Cluster) command(n *Node) []string {
	args := []string{c.Opts.Binary, "agent",
		"--config", n.ConfigPath,
		"--node-id", fmt.Sprint(n.ID),
		"--socket", n.Socket,
		"--data-dir", n.DataDir,
	}
	// The TOML file names its key; a corosync.conf stays as pcs writes it
	// (keyfile defaults to /etc/corosync/authkey), so the key is a flag.
	if c.keyPath != "" && c.Opts.Format == "corosync" {
		args = append(args, "--key-file", c.keyPath)
	}
	if c.Opts.LogLevel != "" {
		args = append(args, "--log-level", c.Opts.LogLevel)
	}
	if n.Netns != "" {
		args = append([]string{"ip", "netns", "exec", n.Netns}, args...)
	}
	return args
}

// StartNode starts node id's agent, or restarts it after it exited. Its
// data directory is kept, so its ring seq survives. It returns once the
// process runs, not once it serves: see WaitSocket.
func (c *Cluster) StartNode(id uint32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("lab: cluster is closed")
	}
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("lab: node %d is already running (pid %d)", id, n.proc.cmd.Process.Pid)
	}
	n.dropConn()
	// A socket left by a killed agent would make WaitSocket's first dial
	// reach nothing; the agent would remove it too, but later.
	os.Remove(n.Socket)

	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: node %d log: %w", id, err)
	}
	argv := c.command(n)
	fmt.Fprintf(logf, "=== lab %s: starting node %d: %s\n", time.Now().Format(time.RFC3339Nano), id, strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	var lw *lineWriter
	if c.stderr != nil && !c.Opts.Keep {
		lw = &lineWriter{out: c.stderr}
		w := io.MultiWriter(logf, lw)
		cmd.Stdout, cmd.Stderr = w, w
	} else {
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if c.Opts.Keep {
		// The cluster outlives this process (conclave demo --keep): its
		// own session, so the terminal's signals do not reach it, and
		// output straight to the log file (a pipe would break, and
		// SIGPIPE kill the agent, once this process exits).
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// An agent must not outlive a test binary that crashed or timed out.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("lab: starting node %d: %w", id, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		p.err = cmd.Wait()
		if lw != nil {
			lw.flush()
		}
		fmt.Fprintf(logf, "=== lab %s: node %d (pid %d) exited: %s\n", time.Now().Format(time.RFC3339Nano), id, cmd.Process.Pid, exitString(p.err))
		logf.Close()
		close(p.done)
	}()
	n.proc = p
	return nil
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (c *Cluster) proc(id uint32) (*process, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.proc == nil {
		return nil, fmt.Errorf("lab: node %d was never started", id)
	}
	return n.proc, nil
}

// Signal sends sig to node id's agent (SIGKILL, SIGSTOP, SIGCONT, ...).
func (c *Cluster) Signal(id uint32, sig syscall.Signal) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if p.exited() {
		return fmt.Errorf("lab: node %d is not running (%s)", id, exitString(p.err))
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("lab: signal %v to node %d: %w", sig, id, err)
	}
	return nil
}

// Kill sends SIGKILL to node id's agent and waits until it is reaped. A node
// that is not running is not an error.
func (c *Cluster) Kill(id uint32) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
	c.Node(id).dropConn()
	return nil
}

// Stop sends SIGTERM to node id's agent, so it leaves the cluster
// gracefully, and waits for it to exit. It fails if the agent exits with a
// non-zero status or ctx ends first (the agent is then left running). An
// agent signalled before it set up its signal handling (call WaitSocket
// first) dies of the signal, which Stop reports as a failure.
func (c *Cluster) Stop(ctx context.Context, id uint32) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if p.exited() {
		return fmt.Errorf("lab: node %d is not running (%s)", id, exitString(p.err))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("lab: node %d did not exit after SIGTERM: %w", id, ctx.Err())
	}
	c.Node(id).dropConn()
	if p.err != nil {
		return fmt.Errorf("lab: node %d: %s after SIGTERM; log tail:\n%s", id, exitString(p.err), c.LogTail(id, 10))
	}
	return nil
}

// Running reports whether node id's agent process is alive (also when
// stopped by SIGSTOP).
func (c *Cluster) Running(id uint32) bool {
	p, err := c.proc(id)
	return err == nil && !p.exited()
}

// PID is the process id of node id's agent (its latest run), 0 if it was
// never started.
func (c *Cluster) PID(id uint32) int {
	p, err := c.proc(id)
	if err != nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// ExitErr is how node id's latest run ended: nil while it runs or after
// exit status 0, else the *exec.ExitError (or another Wait error).
func (c *Cluster) ExitErr(id uint32) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if !p.exited() {
		return nil
	}
	return p.err
}

// Exited returns a channel closed when node id's current run ends, or nil
// if it was never started.
func (c *Cluster) Exited(id uint32) <-chan struct{} {
	p, err := c.proc(id)
	if err != nil {
		return nil
	}
	return p.done
}

// LogTail returns the last n lines of node id's log, for error messages.
func (c *Cluster) LogTail(id uint32, n int) string {
	nd := c.Node(id)
	if nd == nil {
		return ""
	}
	b, err := os.ReadFile(nd.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// closeGrace is how long Close lets agents leave gracefully before it
// kills them.
const closeGrace = 3 * time.Second

// Close stops every agent (SIGTERM, then SIGKILL after a few seconds),
// removes the network namespaces and, unless Keep, a temporary Dir. It may
// be called more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var procs []*process
	for _, n := range c.nodes {
		if n.proc != nil && !n.proc.exited() {
			procs = append(procs, n.proc)
		}
	}
	c.mu.Unlock()

	for _, p := range procs {
		// A stopped agent acts on SIGTERM only once it runs again.
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(closeGrace)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline.C:
			// Fire again at once for the remaining processes.
			deadline.Reset(0)
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	for _, n := range c.nodes {
		n.dropConn()
	}
	var errs []error
	if c.net != nil {
		if err := c.net.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.tmpDir && !c.Opts.Keep {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sharedWriter serialises writes of several agents' line writers.
type sharedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *sharedWriter) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.Write(p)
}

// lineWriter buffers one agent's output and passes it on in whole lines,
// so that the output of several agents copied to one writer does not
// interleave within a line.
type lineWriter struct {
	out *sharedWriter
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		l.out.write(l.buf[:i+1])
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	return len(p), nil
}

// flush writes a last partial line.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.out.write(append(l.buf, '\n'))
		l.buf = nil
	}
}
