// Package agent is the runtime of a Conclave node: it owns the clock, the
// sockets, the data directory and the client socket, and drives the pure
// membership engine with them. The engine and everything around it is
// guarded by one mutex; whoever has input (the loop goroutine for packets
// and ticks, a client's handler goroutine for its requests) steps the engine
// and acts on its output before letting go. Handing client requests to the
// loop instead would cost a goroutine wake-up per request, which on a busy
// machine is most of the ordered-delivery latency.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/api/peerpb"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/membership"
	"github.com/conclave/conclave/internal/quorum"
	"github.com/conclave/conclave/internal/service"
	"github.com/conclave/conclave/internal/transport"
)

// Options are what the command line adds to the configuration file.
type Options struct {
	Config  *config.Config
	NodeID  uint32 // 0: the nodelist entry whose address is bound here
	Socket  string // "" : config, then ipc.DefaultSocket
	DataDir string // "" : config, then DefaultDataDir
	KeyFile string // "" : the config's key file
	Logger  *slog.Logger
	Version string
	// Services run on the agent's views and ordered delivery, after the
	// built-in services.
	Services []service.Service
}

// DefaultDataDir holds the ring seq and incarnation between runs.
const DefaultDataDir = "/var/lib/conclave"

// Agent is one running node.
type Agent struct {
	opts    Options
	cfg     *config.Config
	self    config.Node
	log     *slog.Logger
	store   *store
	inc     uint64
	tr      *transport.Transport
	eng     *membership.Engine
	started time.Time
	socket  string
	keyed   bool

	mu          sync.Mutex // guards everything below, and the engine
	failed      chan struct{}
	failure     error
	stopped     bool           // left the cluster: packets are no longer stepped
	kick        chan struct{}  // wakes the loop to recompute its timer
	msgs        *messages      // byte svcMessages on the ordered channel
	host        *service.Host  // the replicated services, from byte svcFirst
	q           *quorum.Engine // the quorum service (nil when not configured)
	vqSessions  []*vqSession
	vqPending   map[uint64]vqPending // QdeviceRegister replies by token
	vqToken     uint64
	g           *groups.Engine // the group services (always on)
	gs          *gsState       // its clients (groups.go)
	pending     []*publishReq
	subscribers []*subscriber
	watchers    []*watcher
	lastEvent   *clientpb.Event

	// linkPeers: per link, the peers reachable over it (link events). The
	// groups engine's adapter system groups have this node's link up
	// while one is (linkChanged).
	linkPeers [config.MaxLinks]map[membership.NodeID]bool
}

type publishReq struct {
	payloads [][]byte
	done     chan error
}

type subscriber struct {
	payloads bool
	ch       chan *clientpb.DeliveryBatch
	gone     chan struct{} // closed when the agent cuts the subscriber off
	reason   error
}

type watcher struct {
	ch     chan *clientpb.Event
	gone   chan struct{}
	reason error
}

// ErrSlowClient is the reason a client that stopped reading is cut off: a
// slow client must never stall the agent.
var ErrSlowClient = errors.New("client did not keep up with events and was disconnected")

// New prepares an agent: it resolves the local node, opens the data
// directory and the sockets. Run starts it.
func New(ctx context.Context, o Options) (*Agent, error) {
	cfg := o.Config
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := cfg.Resolve(ctx, net.DefaultResolver); err != nil {
		return nil, err
	}
	self, err := localNode(cfg, o.NodeID)
	if err != nil {
		return nil, err
	}
	a := &Agent{opts: o, cfg: cfg, self: self, failed: make(chan struct{}), kick: make(chan struct{}, 1)}
	a.msgs = &messages{a: a}
	a.log = o.Logger.With("node", self.ID)
	for _, w := range cfg.Warnings {
		a.log.Warn("config: " + w.Error())
	}
	a.socket = firstOf(o.Socket, cfg.Agent.Socket, ipc.DefaultSocket)
	dataDir := firstOf(o.DataDir, cfg.Agent.DataDir, DefaultDataDir)
	if a.store, err = openStore(dataDir); err != nil {
		return nil, err
	}
	a.started = time.Now()
	if a.inc, err = a.store.nextIncarnation(a.started); err != nil {
		a.store.close()
		return nil, err
	}
	maxSeq, err := a.store.readUint(seqFile)
	if err != nil {
		a.store.close()
		return nil, err
	}
	key, err := a.loadKey()
	if err != nil {
		a.store.close()
		return nil, err
	}
	if a.tr, err = transport.New(a.transportConfig(key)); err != nil {
		a.store.close()
		return nil, err
	}
	if a.eng, err = membership.New(a.engineConfig(maxSeq)); err != nil {
		a.tr.Close()
		a.store.close()
		return nil, err
	}
	if a.q, err = a.newQuorum(); err != nil {
		a.tr.Close()
		a.store.close()
		return nil, err
	}
	a.g = groups.New(groups.Config{Node: membership.NodeID(self.ID), Incarnation: a.inc})
	a.gs = newGSState()
	for l := range cfg.LinkCount() {
		// A link no other node configures has nobody to test it against:
		// it counts as up. The others are up once a peer is reachable.
		solo := self.Links[l] != ""
		for _, nd := range cfg.Nodes {
			solo = solo && (nd.ID == self.ID || nd.Links[l] == "")
		}
		if solo {
			a.g.AdapterStatus(a.started, l, true)
		}
	}
	svcs := append([]service.Service{a.g}, o.Services...)
	if a.q != nil {
		svcs = append([]service.Service{a.q}, svcs...)
	}
	a.vqPending = map[uint64]vqPending{}
	a.host = service.NewHost(a.eng, svcFirst, a.log, svcs...)
	return a, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (a *Agent) loadKey() ([]byte, error) {
	if a.cfg.Crypto.Cleartext() && a.opts.KeyFile == "" {
		a.log.Warn("running in the clear: the configuration sets crypto_cipher to none, so frames between nodes are neither encrypted nor authenticated")
		return nil, nil
	}
	path := firstOf(a.opts.KeyFile, a.cfg.Crypto.KeyFile)
	if path == "" {
		return nil, fmt.Errorf("no cluster key: pass --key-file, or set crypto_cipher to none in %s to run in the clear", a.cfg.Path)
	}
	key, err := transport.LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w (create one with: conclave keygen --out %s)", err, path)
	}
	a.keyed = true
	return key, nil
}

// localNode picks the nodelist entry for this host: the one given, or the
// only one with an address that can be bound here.
func localNode(cfg *config.Config, id uint32) (config.Node, error) {
	if id != 0 {
		n, ok := cfg.NodeByID(id)
		if !ok {
			return config.Node{}, fmt.Errorf("--node-id %d: no such node in the nodelist of %s", id, cfg.Path)
		}
		return n, nil
	}
	var found []config.Node
	for _, n := range cfg.Nodes {
		for l := range cfg.LinkCount() {
			ap, err := n.Addr(l)
			if err != nil || !ap.IsValid() {
				continue
			}
			if bindable(ap.Addr()) {
				found = append(found, n)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return config.Node{}, fmt.Errorf("no nodelist address in %s is bound on this host: pass --node-id", cfg.Path)
	}
	var ids []string
	for _, n := range found {
		ids = append(ids, fmt.Sprint(n.ID))
	}
	return config.Node{}, fmt.Errorf("addresses of nodes %s in %s are all local to this host: pass --node-id to choose", strings.Join(ids, ", "), cfg.Path)
}

// bindable: the address belongs to this host (binding it succeeds).
func bindable(ip netip.Addr) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (a *Agent) transportConfig(key []byte) transport.Config {
	n := a.cfg.LinkCount()
	tc := transport.Config{
		ClusterName: a.cfg.ClusterName, Key: key, Self: a.self.ID, Incarnation: a.inc,
		Links: make([]netip.AddrPort, n), Peers: map[uint32][]netip.AddrPort{},
		MTU: a.cfg.Totem.NetMTU, Logger: a.opts.Logger,
		OnPacket: a.onPacket,
	}
	for l := range n {
		tc.Links[l], _ = a.self.Addr(l)
	}
	for _, nd := range a.cfg.Nodes {
		if nd.ID == a.self.ID {
			continue
		}
		addrs := make([]netip.AddrPort, n)
		for l := range n {
			addrs[l], _ = nd.Addr(l)
		}
		tc.Peers[nd.ID] = addrs
	}
	return tc
}

func (a *Agent) engineConfig(maxSeq uint64) membership.Config {
	t := a.cfg.Totem
	var nodes []membership.NodeConfig
	for _, nd := range a.cfg.Nodes {
		var links uint8
		for l := range a.cfg.LinkCount() {
			if nd.Links[l] != "" {
				links |= 1 << l
			}
		}
		nodes = append(nodes, membership.NodeConfig{ID: membership.NodeID(nd.ID), Links: links})
	}
	// Room for ordered entries in one datagram: the MTU less IP/UDP (28),
	// the frame header and tag (~64) and the message's protobuf framing.
	batch := max(t.NetMTU-28-64-100, 256)
	return membership.Config{
		Self: membership.NodeID(a.self.ID), Incarnation: a.inc, Nodes: nodes,
		Token: t.EffectiveToken(len(a.cfg.Nodes)), Heartbeat: t.Heartbeat, Consensus: t.Consensus, Join: t.Join,
		FlapCount: t.FlapCount, FlapWindow: t.FlapWindow, FlapHolddown: t.FlapHolddown,
		MaxSeq: maxSeq, MaxBatch: batch, Logger: a.opts.Logger,
	}
}

// Run serves until ctx is cancelled, then leaves the cluster gracefully. It
// returns an error only for failures that make continuing unsafe.
func (a *Agent) Run(ctx context.Context) error {
	defer a.store.close()
	lis, err := ipc.Listen(a.socket)
	if err != nil {
		a.tr.Close()
		return err
	}
	policy := ipc.Policy{UIDs: a.cfg.Agent.AllowedUIDs, GIDs: a.cfg.Agent.AllowedGIDs}
	srv := ipc.NewServer(policy)
	clientpb.RegisterAgentServer(srv, &server{a: a})
	clientpb.RegisterVotequorumServer(srv, &vqServer{a: a})
	a.registerGroups(srv)
	go srv.Serve(ipc.Sniff(lis, policy, newVQLocal(a).serve)) // gRPC, and votequorum's local transport
	defer func() {
		srv.Stop()
		os.Remove(a.socket)
	}()
	trCtx, stopTr := context.WithCancel(context.Background())
	defer stopTr()
	a.tr.Start(trCtx)
	a.log.Info("agent started", "cluster", a.cfg.ClusterName, "incarnation", a.inc, "socket", a.socket,
		"token", a.cfg.Totem.EffectiveToken(len(a.cfg.Nodes)), "links", a.cfg.LinkCount(), "encrypted", a.keyed,
		"config", a.cfg.Path, "format", a.cfg.Format.String())
	err = a.loop(ctx)
	a.tr.Close()
	a.mu.Lock()
	a.closeClients(errors.New("agent stopped"))
	a.mu.Unlock()
	return err
}

// loop feeds the engine with packets, transport events and ticks. It
// sleeps until the engine's next deadline (Engine.NextTick); whoever else
// steps the engine wakes it to look again (kick).
func (a *Agent) loop(ctx context.Context) error {
	tick := time.NewTimer(0)
	defer tick.Stop()
	in := a.tr.Incoming()
	events := a.tr.PeerEvents()
	rearm := func() {
		a.mu.Lock()
		next := a.eng.NextTick()
		if t := a.host.NextTick(); !t.IsZero() && t.Before(next) {
			next = t
		}
		a.mu.Unlock()
		d := time.Until(next)
		tick.Reset(max(d, 100*time.Microsecond))
	}
	stop := ctx.Done()
	var leaveBy time.Time
	for {
		if stop == nil {
			a.mu.Lock()
			if time.Now().After(leaveBy) || (!a.host.Pending() && a.eng.QueuedBytes() == 0) {
				defer a.mu.Unlock()
				a.stopped = true
				a.eng.Leave(time.Now())
				if err := a.process(); err != nil {
					return err
				}
				a.log.Info("left the cluster")
				return nil
			}
			a.mu.Unlock()
		}
		select {
		case <-stop:
			// The services say goodbye first (the quorum service's clean
			// shutdown under allow_downscale); the node leaves once that
			// is delivered, or a token later at most.
			stop = nil
			a.mu.Lock()
			if a.host.Leave(time.Now()) {
				leaveBy = time.Now().Add(a.cfg.Totem.EffectiveToken(len(a.cfg.Nodes)))
			}
			a.unlockAfter()
		case <-a.failed:
			a.log.Error("stopping: continuing could break the cluster's guarantees", "err", a.failure)
			return a.failure
		case p, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			a.mu.Lock()
			a.step(p)
			a.unlockAfter()
		case ev := <-events:
			a.mu.Lock()
			if !ev.Up {
				a.eng.PeerClosed(time.Now(), membership.NodeID(ev.Node), ev.Incarnation)
			}
			a.unlockAfter()
		case <-tick.C:
			a.mu.Lock()
			a.eng.Tick(time.Now())
			a.unlockAfter()
			rearm()
		case <-a.kick:
			rearm()
		}
	}
}

// unlockAfter acts on the engine's output (admitting waiting publishers
// first) and releases the lock. A failure that makes continuing unsafe stops
// the agent.
func (a *Agent) unlockAfter() {
	defer a.mu.Unlock()
	if a.failure != nil {
		return // nothing more may leave this node; Run is stopping
	}
	a.admit()
	if err := a.process(); err != nil {
		a.failure = err
		a.stopped = true
		close(a.failed)
	}
	select { // the engine's next deadline may be sooner now
	case a.kick <- struct{}{}:
	default:
	}
}

// onPacket steps the engine with a packet, on the transport's reader
// goroutine.
func (a *Agent) onPacket(p transport.Packet) {
	a.mu.Lock()
	if a.stopped || a.failure != nil {
		a.mu.Unlock()
		return
	}
	a.step(p)
	a.unlockAfter()
}

func (a *Agent) step(p transport.Packet) {
	m := &peerpb.Message{}
	if err := proto.Unmarshal(p.Payload, m); err != nil || m.From != p.From || m.Incarnation != p.Incarnation {
		// The transport authenticated the sender; a message claiming to be
		// someone else is malformed (or worse).
		return
	}
	a.eng.Step(time.Now(), p.Link, m)
}

// admit hands queued publish requests to the engine while its send queue has
// room; a request waits (and its client with it) until then.
func (a *Agent) admit() {
	for len(a.pending) > 0 {
		req := a.pending[0]
		var err error
		for len(req.payloads) > 0 {
			err = a.eng.Broadcast(req.payloads[0], false)
			if errors.Is(err, membership.ErrQueueFull) {
				return
			}
			if err != nil {
				break
			}
			req.payloads = req.payloads[1:]
		}
		req.done <- err // buffered: never blocks
		a.pending = a.pending[1:]
	}
}

// process acts on the engine's output: persist, send, deliver, in that
// order (see membership.Ready).
func (a *Agent) process() error {
	for range 64 {
		r := a.eng.Ready()
		if r.Empty() {
			// The services act on the round's input, and what they send
			// may give the engine more output.
			a.host.Pump(time.Now())
			if r = a.eng.Ready(); r.Empty() {
				if err := a.quorumOutput(); err != nil {
					return err
				}
				return a.groupsOutput()
			}
		}
		if r.PersistSeq != 0 {
			if err := a.store.writeUint(seqFile, r.PersistSeq); err != nil {
				// Using a ring id that a crash could forget would let ring
				// ids repeat: stop rather than risk it.
				return fmt.Errorf("persisting ring seq %d: %w", r.PersistSeq, err)
			}
		}
		for _, o := range r.Messages {
			b, err := proto.Marshal(o.Msg)
			if err != nil {
				return fmt.Errorf("encoding a peer message: %w", err)
			}
			a.tr.Send(uint32(o.To), o.Link, b)
		}
		a.handleEvents(r.Events)
	}
	return nil
}

func (a *Agent) handleEvents(evs []membership.Event) {
	now := time.Now()
	for _, ev := range evs {
		switch ev.Kind {
		case membership.EventNodelist:
			a.broadcastEvent(&clientpb.Event{Kind: clientpb.Event_NODELIST, RingId: ringPB(ev.Ring), Members: ids32(ev.Members),
				Joined: ids32(ev.Joined), Left: ids32(ev.Left), UnixNano: now.UnixNano()})
			a.host.Event(now, ev)
		case membership.EventInstalled:
			a.host.Event(now, ev)
			a.broadcastEvent(&clientpb.Event{Kind: clientpb.Event_INSTALLED, RingId: ringPB(ev.Ring), Members: ids32(ev.Members),
				Joined: ids32(ev.Joined), Left: ids32(ev.Left), UnixNano: now.UnixNano()})
		case membership.EventLink:
			a.broadcastEvent(&clientpb.Event{Kind: clientpb.Event_LINK, Node: uint32(ev.Node), Link: uint32(ev.Link), Up: ev.Up, UnixNano: now.UnixNano()})
			a.linkChanged(now, ev.Node, ev.Link, ev.Up)
		case membership.EventHeldOut:
			a.broadcastEvent(&clientpb.Event{Kind: clientpb.Event_HELD_OUT, Node: uint32(ev.Node), UntilUnixNano: ev.Until.UnixNano(), UnixNano: now.UnixNano()})
		case membership.EventDeliver:
			if ev.Repeat || len(ev.Payload) == 0 {
				continue
			}
			if ev.Payload[0] == svcMessages {
				a.msgs.Deliver(ev.Ring, ev.From, ev.Payload[1:], ev.Sync, now)
			} else {
				a.host.Event(now, ev)
			}
		}
	}
	a.msgs.flush()
}

// linkChanged tracks the peers reachable over link l and tells the groups
// engine when this node's link goes up (a first peer reachable) or down
// (none left): its adapter system groups.
func (a *Agent) linkChanged(now time.Time, peer membership.NodeID, l int, up bool) {
	if l < 0 || l >= len(a.linkPeers) {
		return
	}
	m := a.linkPeers[l]
	if m == nil {
		m = map[membership.NodeID]bool{}
		a.linkPeers[l] = m
	}
	was := len(m) > 0
	if up {
		m[peer] = true
	} else {
		delete(m, peer)
	}
	if is := len(m) > 0; is != was {
		a.g.AdapterStatus(now, l, is)
	}
}

func (a *Agent) broadcastEvent(ev *clientpb.Event) {
	if ev.Kind == clientpb.Event_NODELIST || ev.Kind == clientpb.Event_INSTALLED {
		a.lastEvent = ev
	}
	for _, w := range a.watchers {
		a.sendEvent(w, ev)
	}
	a.watchers = slices.DeleteFunc(a.watchers, func(w *watcher) bool { return w.reason != nil })
}

func (a *Agent) sendEvent(w *watcher, ev *clientpb.Event) {
	if w.reason != nil {
		return
	}
	select {
	case w.ch <- ev:
	default:
		w.reason = ErrSlowClient
		close(w.gone)
	}
}

func (a *Agent) deliver(batch []*clientpb.Delivery, bytes uint64) {
	full := &clientpb.DeliveryBatch{Deliveries: batch, Count: uint64(len(batch)), Bytes: bytes}
	var counts *clientpb.DeliveryBatch
	for _, s := range a.subscribers {
		b := full
		if !s.payloads {
			if counts == nil {
				last := batch[len(batch)-1]
				counts = &clientpb.DeliveryBatch{Count: uint64(len(batch)), Bytes: bytes,
					Deliveries: []*clientpb.Delivery{{From: last.From, RingId: last.RingId, UnixNano: last.UnixNano}}}
			}
			b = counts
		}
		select {
		case s.ch <- b:
		default:
			s.reason = ErrSlowClient
			close(s.gone)
		}
	}
	a.subscribers = slices.DeleteFunc(a.subscribers, func(s *subscriber) bool { return s.reason != nil })
}

func (a *Agent) closeClients(reason error) {
	for _, s := range a.subscribers {
		s.reason = reason
		close(s.gone)
	}
	for _, w := range a.watchers {
		w.reason = reason
		close(w.gone)
	}
	for _, p := range a.pending {
		select {
		case p.done <- reason:
		default:
		}
	}
	for _, s := range a.vqSessions {
		if s.reason == nil {
			s.reason = reason
			close(s.gone)
		}
	}
	a.vqSessions = nil
	a.closeGroupClients(reason)
	a.subscribers, a.watchers, a.pending = nil, nil, nil
}

func (a *Agent) status() *clientpb.StatusReply {
	st := a.eng.Status()
	ts := a.tr.Stats()
	es := st.Stats
	r := &clientpb.StatusReply{
		NodeId: a.self.ID, ClusterName: a.cfg.ClusterName, State: st.State.String(),
		Members: ids32(st.Members), Installed: st.Installed, Incarnation: a.inc, Version: a.opts.Version,
		StartedUnixNano: a.started.UnixNano(), ConfigPath: a.cfg.Path, Encrypted: a.keyed,
		Engine: &clientpb.EngineStats{ViewChanges: es.ViewChanges, Delivered: es.Delivered, DeliveredBytes: es.DeliveredBytes,
			Broadcast: es.Broadcast, Dropped: es.Dropped, Retransmissions: es.Retransmissions, QueuedBytes: uint64(st.QueuedBytes)},
		Transport: &clientpb.TransportStats{SentPackets: ts.SentPackets, SentBytes: ts.SentBytes, RecvPackets: ts.RecvPackets,
			RecvBytes: ts.RecvBytes, DropForged: ts.DropForged, DropCorrupt: ts.DropCorrupt, DropReplayed: ts.DropReplayed,
			DropForeign: ts.DropForeign, DropStale: ts.DropStale, DropUnknownSender: ts.DropUnknownSender,
			DropMisrouted: ts.DropMisrouted, DropTooLarge: ts.DropTooLarge, DropQueueFull: ts.DropQueueFull,
			SendErrors: ts.SendErrors + ts.SendBufferFull},
	}
	if !st.Ring.IsZero() {
		r.RingId = ringPB(st.Ring)
	}
	if a.q != nil {
		r.QuorumConfigured = true
		r.Quorate = a.q.Status(time.Now()).Quorate
	}
	peers := map[uint32]membership.PeerStatus{}
	for _, p := range st.Peers {
		peers[uint32(p.Node)] = p
		for _, l := range p.Links {
			r.Links = append(r.Links, &clientpb.Link{Node: uint32(p.Node), Link: uint32(l.Link), Up: l.Up})
		}
	}
	for _, nd := range a.cfg.Nodes {
		n := &clientpb.Node{NodeId: nd.ID, Name: nd.Name, Member: slices.Contains(r.Members, nd.ID)}
		for l := range a.cfg.LinkCount() {
			addr := ""
			if ap, err := nd.Addr(l); err == nil && ap.IsValid() {
				addr = ap.String()
			}
			n.Addrs = append(n.Addrs, addr)
		}
		if nd.ID == a.self.ID {
			n.Reachable, n.Incarnation = true, a.inc
		} else if p, ok := peers[nd.ID]; ok {
			n.Reachable, n.Incarnation = p.Reachable, p.Incarnation
			if !p.HeldUntil.IsZero() {
				n.HeldUntilUnixNano = p.HeldUntil.UnixNano()
			}
		}
		r.Nodes = append(r.Nodes, n)
	}
	return r
}

func ringPB(r membership.RingID) *clientpb.RingID {
	return &clientpb.RingID{Rep: uint32(r.Rep), Seq: r.Seq}
}

func ids32(ids []membership.NodeID) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// dropWatcher forgets a watcher whose client went away.
func (a *Agent) dropWatcher(w *watcher) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.watchers = slices.DeleteFunc(a.watchers, func(x *watcher) bool { return x == w })
}

// dropSubscriber forgets a subscriber whose client went away.
func (a *Agent) dropSubscriber(s *subscriber) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subscribers = slices.DeleteFunc(a.subscribers, func(x *subscriber) bool { return x == s })
}

// cancelPublish withdraws what of a request is not queued yet.
func (a *Agent) cancelPublish(p *publishReq) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = slices.DeleteFunc(a.pending, func(x *publishReq) bool { return x == p })
}
