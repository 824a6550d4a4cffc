package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for Config fields left zero.
const (
	DefaultMTU           = 1500 // bytes
	DefaultIncomingQueue = 4096 // packets
	// socketBuffer is the SO_RCVBUF/SO_SNDBUF asked for, in bytes (the
	// kernel caps it at net.core.rmem_max/wmem_max): room for a burst of
	// fragments of a 1 MiB message while the reader is descheduled.
	socketBuffer = 4 << 20
	minMTU       = 576
	maxMTU       = 65535
	// eventQueue bounds PeerEvents not yet taken by the consumer; beyond it
	// the oldest are dropped (and counted).
	eventQueue = 4096
)

// Errors returned by Send and New.
var (
	ErrClosed         = errors.New("transport: closed")
	ErrNoLink         = errors.New("transport: link not configured")
	ErrUnknownPeer    = errors.New("transport: unknown peer")
	ErrSendBufferFull = errors.New("transport: socket send buffer full, datagram dropped")
)

// Config configures a [Transport].
type Config struct {
	// ClusterName selects the cluster tag; frames of other clusters are
	// dropped unopened.
	ClusterName string
	// Key is the cluster key (raw bytes, MinKeyLen..MaxKeyLen). nil selects
	// cleartext mode, which the caller must have chosen explicitly.
	Key []byte
	// Self is this node's id.
	Self uint32
	// Incarnation is this process's session number: strictly greater than
	// that of any earlier run of this node (the caller guarantees it).
	Incarnation uint64
	// Links holds the local bind address per link index 0..7 (zero = link
	// not configured). UDP and the TCP tripwire listener bind the same
	// ip:port. Port 0 picks a free port, the same for UDP and TCP.
	Links []netip.AddrPort
	// Peers maps a peer's node id to its address per link index (zero = not
	// configured on that link). An entry for Self is ignored.
	Peers map[uint32][]netip.AddrPort
	// MTU is the path MTU in bytes (default 1500, at least 576). Datagrams
	// are kept <= MTU-28 (IPv4) or MTU-48 (IPv6).
	MTU int
	// MaxMessage is the largest payload, in bytes, that Send accepts and that
	// is reassembled (default 4 MiB).
	MaxMessage int
	// OnPacket, if set, receives every authenticated payload on the socket's
	// reader goroutine instead of through Incoming (which then stays
	// empty). It saves the consumer a goroutine wake-up per packet, which on
	// a busy machine dominates small-message latency. It must not block for
	// long: the link reads nothing else meanwhile.
	OnPacket func(Packet)
	// IncomingQueue is the capacity of the Incoming channel in packets
	// (default 4096). When it is full, packets are dropped and counted in
	// Stats.DropQueueFull: readers never block on a slow consumer.
	IncomingQueue int
	// Logger receives warnings about drops (rate-limited) and tripwire
	// events. nil discards.
	Logger *slog.Logger
}

// Packet is one authenticated payload from a peer.
type Packet struct {
	From        uint32
	Incarnation uint64
	Link        int
	Payload     []byte // owned by the receiver
}

// PeerEvent reports the tripwire state of a peer on one link. Up=true: a
// connection from or to that process authenticated. Up=false: its last
// authenticated connection ended, i.e. the peer's kernel closed the socket
// because the process closed or died. Each (node, incarnation, link) gets at
// most one Up=true and then at most one Up=false, which is final for that
// incarnation. A newer incarnation supersedes older ones: no Up=false is
// sent for an older incarnation once a newer one is up.
type PeerEvent struct {
	Node        uint32
	Incarnation uint64
	Link        int
	Up          bool
}

// LinkStats are per-link counters. Cumulative.
type LinkStats struct {
	SentPackets, SentBytes uint64 // datagrams handed to the kernel, bytes on the wire
	RecvPackets, RecvBytes uint64 // datagrams read from the socket, valid or not
	Dropped                uint64 // received datagrams dropped for any reason
}

// Stats are the transport's counters. All are cumulative.
type Stats struct {
	SentPackets, SentBytes uint64 // datagrams handed to the kernel, bytes on the wire
	RecvPackets, RecvBytes uint64 // datagrams read from the sockets, valid or not

	DropForged            uint64 // failed authentication (or cleartext source address mismatch)
	DropCorrupt           uint64 // malformed, truncated, bad CRC, inconsistent fragments
	DropReplayed          uint64 // counter already seen or older than the window
	DropForeign           uint64 // other cluster tag
	DropStale             uint64 // incarnation below the highest seen from that sender
	DropUnknownSender     uint64 // sender not a configured peer
	DropMisrouted         uint64 // destination not Self, or wrong link
	DropTooLarge          uint64 // message above MaxMessage
	DropReassemblyTimeout uint64 // incomplete after 2 s

	DropReassemblyOverflow uint64 // incomplete messages evicted by the memory bounds
	DropQueueFull          uint64 // authenticated payloads lost because Incoming was full
	Delivered              uint64 // payloads handed to Incoming
	SendBufferFull         uint64 // datagrams not sent: socket buffer full
	SendErrors             uint64 // datagrams not sent: other socket errors
	TripwireRejected       uint64 // tripwire connections closed without authenticating
	EventsDropped          uint64 // PeerEvents lost because the consumer fell 4096 behind

	PerLink [MaxLinks]LinkStats
}

type linkCounters struct {
	sentPackets, sentBytes, recvPackets, recvBytes, dropped atomic.Uint64
}

type counters struct {
	forged, corrupt, replayed, foreign, stale, unknownSender, misrouted, tooLarge atomic.Uint64
	queueFull, delivered, sendBufferFull, sendErrors, twRejected, eventsDropped   atomic.Uint64
}

// Transport moves payloads between agents. Create it with New, then Start
// it; Send may be used as soon as New returns.
type Transport struct {
	cfg    Config
	log    *slog.Logger
	sealer *Sealer
	opener *Opener
	links  [MaxLinks]*link
	peers  map[uint32]*[MaxLinks]*route

	incoming chan Packet
	events   chan PeerEvent

	reasmMu sync.Mutex
	reasm   *Reassembler

	c       counters
	drops   dropLog
	bufPool sync.Pool // *[]byte of bufSize capacity, for sealing
	bufSize int

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed by Close

	mu        sync.Mutex // guards started, closed and wg.Add against Close
	started   bool
	closed    bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	tw tripwire

	evMu     sync.Mutex
	evQueue  []PeerEvent
	evSignal chan struct{}
}

// link is one local link: a UDP socket and the TCP tripwire listener.
type link struct {
	index int
	local netip.AddrPort
	udp   *net.UDPConn
	tcp   *net.TCPListener
	rc    syscall.RawConn
	// peerIPs are the configured peer addresses on this link: the only
	// sources a tripwire connection is accepted from.
	peerIPs map[netip.Addr]struct{}

	// Sends go through rc.Write with a preallocated callback so that they
	// neither allocate nor wait for the socket to become writable: mu makes
	// the w* fields the callback's arguments.
	mu      sync.Mutex
	wbuf    []byte
	wsa     unix.Sockaddr
	werr    error
	writeFn func(fd uintptr) bool

	st linkCounters
}

// route is one peer on one link.
type route struct {
	addr     netip.AddrPort
	sa       unix.Sockaddr // only used under the link's mu
	maxFrame int           // largest datagram, bytes
	fragSize int           // fragment payload size F, bytes
}

// New validates cfg and binds a UDP socket and a TCP listener on every
// configured link address. Nothing is read or dialed until Start.
func New(cfg Config) (*Transport, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < minMTU || cfg.MTU > maxMTU {
		return nil, fmt.Errorf("transport: MTU %d out of range %d..%d", cfg.MTU, minMTU, maxMTU)
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxMessage < 0 {
		return nil, fmt.Errorf("transport: MaxMessage %d is negative", cfg.MaxMessage)
	}
	if cfg.IncomingQueue <= 0 {
		cfg.IncomingQueue = DefaultIncomingQueue
	}
	if len(cfg.Links) > MaxLinks {
		return nil, fmt.Errorf("transport: %d links configured, at most %d", len(cfg.Links), MaxLinks)
	}
	if cfg.Key != nil {
		if err := checkKeyLen(cfg.Key); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "transport", "node", cfg.Self, "incarnation", cfg.Incarnation)

	sealer, err := NewSealer(cfg.ClusterName, cfg.Key, cfg.Self, cfg.Incarnation)
	if err != nil {
		return nil, err
	}
	opener, err := NewOpener(OpenerConfig{ClusterName: cfg.ClusterName, Key: cfg.Key, Self: cfg.Self, Incarnation: cfg.Incarnation, Peers: cfg.Peers})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:      cfg,
		log:      log,
		sealer:   sealer,
		opener:   opener,
		peers:    make(map[uint32]*[MaxLinks]*route, len(cfg.Peers)),
		incoming: make(chan Packet, cfg.IncomingQueue),
		events:   make(chan PeerEvent, 64),
		reasm:    NewReassembler(ReassemblerConfig{MaxMessage: cfg.MaxMessage}),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		evSignal: make(chan struct{}, 1),
	}
	t.tw.init()

	if err := t.buildRoutes(); err != nil {
		cancel()
		return nil, err
	}
	t.bufPool.New = func() any {
		b := make([]byte, 0, t.bufSize)
		return &b
	}

	bound := false
	for i, a := range cfg.Links {
		if !a.IsValid() {
			continue
		}
		if a.Addr().IsUnspecified() {
			t.closeSockets()
			cancel()
			return nil, fmt.Errorf("transport: link %d: bind address %s is unspecified: bind the address peers know this node by", i, a)
		}
		l, err := listenLink(i, a)
		if err != nil {
			t.closeSockets()
			cancel()
			return nil, err
		}
		l.peerIPs = make(map[netip.Addr]struct{})
		for id, rs := range t.peers {
			if r := rs[i]; r != nil && id != cfg.Self {
				l.peerIPs[r.addr.Addr().WithZone("")] = struct{}{}
			}
		}
		t.links[i] = l
		bound = true
	}
	if !bound {
		cancel()
		return nil, errors.New("transport: no link configured")
	}
	return t, nil
}

func (t *Transport) buildRoutes() error {
	ovh := t.sealer.Overhead()
	t.bufSize = HeaderLen + ovh
	for id, addrs := range t.cfg.Peers {
		if id == t.cfg.Self {
			continue
		}
		if len(addrs) > MaxLinks {
			return fmt.Errorf("transport: peer %d has %d link addresses, at most %d", id, len(addrs), MaxLinks)
		}
		var rs [MaxLinks]*route
		for i, a := range addrs {
			if !a.IsValid() {
				continue
			}
			a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
			if a.Port() == 0 || a.Addr().IsUnspecified() {
				return fmt.Errorf("transport: peer %d link %d: address %s is not a unicast address and port", id, i, a)
			}
			if i >= len(t.cfg.Links) || !t.cfg.Links[i].IsValid() {
				// The peer has a link this node lacks: nothing to send on.
				continue
			}
			if local := t.cfg.Links[i].Addr().Unmap(); local.Is4() != a.Addr().Is4() {
				return fmt.Errorf("transport: peer %d link %d: address %s is not of the same family as the local address %s", id, i, a, t.cfg.Links[i])
			}
			limit := t.cfg.MTU - 28
			if a.Addr().Is6() {
				limit = t.cfg.MTU - 48
			}
			limit = min(limit, maxFrame)
			r := &route{addr: a, maxFrame: limit, fragSize: limit - FragmentHeaderLen - ovh}
			if (t.cfg.MaxMessage+r.fragSize-1)/r.fragSize > 0xFFFF {
				return fmt.Errorf("transport: MaxMessage %d needs more than 65535 fragments of %d bytes", t.cfg.MaxMessage, r.fragSize)
			}
			sa, err := sockaddrOf(a)
			if err != nil {
				return fmt.Errorf("transport: peer %d link %d: %w", id, i, err)
			}
			r.sa = sa
			rs[i] = r
			t.bufSize = max(t.bufSize, limit)
		}
		t.peers[id] = &rs
	}
	return nil
}

func sockaddrOf(ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return nil, fmt.Errorf("address %s: unknown zone: %w", ap, err)
		}
	}
	return sa, nil
}

// listenLink binds UDP and TCP on the same ip:port. With port 0 it retries
// until a port is free for both.
func listenLink(index int, a netip.AddrPort) (*link, error) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	lc := net.ListenConfig{KeepAlive: -1} // the engine's heartbeats detect dead hosts
	var lastErr error
	for attempt := 0; attempt < 32; attempt++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return nil, fmt.Errorf("transport: link %d: listen udp %s: %w", index, a, err)
		}
		local := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
		ln, err := lc.Listen(context.Background(), "tcp", local.String())
		if err != nil {
			udp.Close()
			lastErr = fmt.Errorf("transport: link %d: listen tcp %s: %w", index, local, err)
			if a.Port() == 0 && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, lastErr
		}
		_ = udp.SetReadBuffer(socketBuffer)
		_ = udp.SetWriteBuffer(socketBuffer)
		rc, err := udp.SyscallConn()
		if err != nil {
			udp.Close()
			ln.Close()
			return nil, fmt.Errorf("transport: link %d: %s: %w", index, local, err)
		}
		l := &link{index: index, local: local, udp: udp, tcp: ln.(*net.TCPListener), rc: rc}
		l.writeFn = l.sendto
		return l, nil
	}
	return nil, lastErr
}

// sendto is the rc.Write callback: one non-blocking sendto. Returning true
// tells the runtime not to wait for writability: a full buffer is a drop.
func (l *link) sendto(fd uintptr) bool {
	for {
		err := unix.Sendto(int(fd), l.wbuf, unix.MSG_DONTWAIT, l.wsa)
		if err == unix.EINTR {
			continue
		}
		l.werr = err
		return true
	}
}

func (l *link) send(b []byte, sa unix.Sockaddr) error {
	l.mu.Lock()
	l.wbuf, l.wsa = b, sa
	err := l.rc.Write(l.writeFn)
	if err == nil {
		err = l.werr
	}
	l.wbuf, l.wsa, l.werr = nil, nil, nil
	l.mu.Unlock()
	return err
}

// LocalAddr returns the bound address of a link (zero if not configured).
func (t *Transport) LocalAddr(link int) netip.AddrPort {
	if link < 0 || link >= MaxLinks || t.links[link] == nil {
		return netip.AddrPort{}
	}
	return t.links[link].local
}

// Incoming returns the channel of authenticated payloads. It is closed by
// Close.
func (t *Transport) Incoming() <-chan Packet { return t.incoming }

// PeerEvents returns the channel of tripwire events. It is closed by Close.
func (t *Transport) PeerEvents() <-chan PeerEvent { return t.events }

// Start launches the socket readers, the tripwire listeners and dialers, and
// the reassembly janitor. They stop when ctx is done or Close is called
// (ctx done closes the transport). Calling Start twice, or after Close, does
// nothing.
func (t *Transport) Start(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed {
		return
	}
	t.started = true
	for _, l := range t.links {
		if l == nil {
			continue
		}
		t.wg.Add(2)
		go t.readLoop(l)
		go t.acceptLoop(l)
	}
	for id, rs := range t.peers {
		for i, r := range rs {
			if r == nil || t.links[i] == nil {
				continue
			}
			t.wg.Add(1)
			go t.dialLoop(id, t.links[i], r)
		}
	}
	t.wg.Add(2)
	go t.janitor()
	go t.eventPump()
	go func() {
		select {
		case <-ctx.Done():
			t.Close()
		case <-t.done:
		}
	}()
}

// Close stops everything, closes the sockets and the tripwire connections
// (peers see this node's tripwire go down), waits for the goroutines, then
// closes Incoming and PeerEvents. It is idempotent.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.done)
		t.cancel()
		err := t.closeSockets()
		t.tw.closeAll()
		t.wg.Wait()
		close(t.incoming)
		close(t.events)
		t.closeErr = err
	})
	return t.closeErr
}

func (t *Transport) closeSockets() error {
	var errs []error
	for _, l := range t.links {
		if l == nil {
			continue
		}
		if err := l.udp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport: close udp %s: %w", l.local, err))
		}
		if err := l.tcp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport: close tcp %s: %w", l.local, err))
		}
	}
	return errors.Join(errs...)
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Send seals payload for node to on link and writes it, fragmenting it when
// it does not fit one datagram. It never waits for socket buffer space: a
// datagram that does not fit is dropped, counted in Stats.SendBufferFull, and
// ErrSendBufferFull is returned (the rest of a fragmented message is not
// sent: it could not be reassembled). The caller may reuse payload at once.
func (t *Transport) Send(to uint32, link int, payload []byte) error {
	if link < 0 || link >= MaxLinks || t.links[link] == nil {
		return ErrNoLink
	}
	rs := t.peers[to]
	if rs == nil {
		return ErrUnknownPeer
	}
	r := rs[link]
	if r == nil {
		return ErrNoLink
	}
	if len(payload) > t.cfg.MaxMessage {
		return ErrTooLarge
	}
	l := t.links[link]
	toInc := t.opener.PeerIncarnation(to)
	bp := t.bufPool.Get().(*[]byte)
	defer t.bufPool.Put(bp)
	if HeaderLen+len(payload)+t.sealer.Overhead() <= r.maxFrame {
		return t.write(l, r, t.sealer.Seal((*bp)[:0], to, toInc, link, nil, payload))
	}
	f := r.fragSize
	count := (len(payload) + f - 1) / f
	frag := Fragment{MsgID: t.sealer.NextMessageID(), Count: uint16(count), Total: uint32(len(payload))}
	for i := 0; i < count; i++ {
		frag.Index = uint16(i)
		end := min((i+1)*f, len(payload))
		if err := t.write(l, r, t.sealer.Seal((*bp)[:0], to, toInc, link, &frag, payload[i*f:end])); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transport) write(l *link, r *route, frame []byte) error {
	err := l.send(frame, r.sa)
	switch {
	case err == nil:
		l.st.sentPackets.Add(1)
		l.st.sentBytes.Add(uint64(len(frame)))
		return nil
	case err == unix.EAGAIN || err == unix.ENOBUFS:
		t.c.sendBufferFull.Add(1)
		return ErrSendBufferFull
	case t.isClosed():
		return ErrClosed
	default:
		t.c.sendErrors.Add(1)
		return fmt.Errorf("transport: send to %s on link %d: %w", r.addr, l.index, err)
	}
}

// readLoop reads one link's UDP socket until it is closed.
func (t *Transport) readLoop(l *link) {
	defer t.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, src, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("udp read failed", "link", l.index, "err", err)
			if !t.sleep(10 * time.Millisecond) {
				return
			}
			continue
		}
		t.handleDatagram(l, src.Addr(), buf[:n])
	}
}

// handleDatagram validates one datagram and delivers its payload.
func (t *Transport) handleDatagram(l *link, src netip.Addr, frame []byte) {
	l.st.recvPackets.Add(1)
	l.st.recvBytes.Add(uint64(len(frame)))
	h, payload, err := t.opener.Open(src, l.index, frame)
	if err != nil {
		t.countDrop(l, err, src)
		return
	}
	var msg []byte
	if h.Flags&FlagFragment != 0 {
		t.reasmMu.Lock()
		before := t.reasm.Drops()
		m, ok := t.reasm.Add(time.Now(), Frag{Sender: h.Sender, Incarnation: h.Incarnation, Fragment: h.Frag, Data: payload})
		after := t.reasm.Drops()
		t.reasmMu.Unlock()
		if after.Corrupt != before.Corrupt || after.TooLarge != before.TooLarge {
			l.st.dropped.Add(1)
		}
		if !ok {
			return
		}
		msg = m
	} else {
		if len(payload) > t.cfg.MaxMessage {
			t.countDrop(l, ErrTooLarge, src)
			return
		}
		msg = append(make([]byte, 0, len(payload)), payload...)
	}
	p := Packet{From: h.Sender, Incarnation: h.Incarnation, Link: l.index, Payload: msg}
	if t.cfg.OnPacket != nil {
		t.c.delivered.Add(1)
		t.cfg.OnPacket(p)
		return
	}
	select {
	case t.incoming <- p:
		t.c.delivered.Add(1)
	default:
		t.c.queueFull.Add(1)
	}
}

func (t *Transport) countDrop(l *link, err error, src netip.Addr) {
	if l != nil {
		l.st.dropped.Add(1)
	}
	var c *atomic.Uint64
	var reason int
	switch err {
	case ErrForged:
		c, reason = &t.c.forged, 0
	case ErrCorrupt:
		c, reason = &t.c.corrupt, 1
	case ErrReplayed:
		c, reason = &t.c.replayed, 2
	case ErrForeign:
		c, reason = &t.c.foreign, 3
	case ErrStale:
		c, reason = &t.c.stale, 4
	case ErrUnknownSender:
		c, reason = &t.c.unknownSender, 5
	case ErrMisrouted:
		c, reason = &t.c.misrouted, 6
	case ErrTooLarge:
		c, reason = &t.c.tooLarge, 7
	default:
		return
	}
	n := c.Add(1)
	if err != ErrReplayed && err != ErrStale && t.drops.due(reason) {
		// Replays and stale frames are expected after reordering and
		// restarts; the others point at misconfiguration or an attack.
		link := -1
		if l != nil {
			link = l.index
		}
		t.log.Warn("dropping frames", "reason", err.Error(), "from", src, "link", link, "total", n)
	}
}

// dropLog rate-limits drop warnings to one per reason per interval.
type dropLog struct {
	last [8]atomic.Int64 // unix nanos of the last warning per reason
}

const dropLogInterval = 10 * time.Second

func (d *dropLog) due(reason int) bool {
	now := time.Now().UnixNano()
	last := d.last[reason].Load()
	if last != 0 && now-last < int64(dropLogInterval) {
		return false
	}
	return d.last[reason].CompareAndSwap(last, now)
}

// janitor expires incomplete messages so that timeouts are counted even when
// no more fragments arrive.
func (t *Transport) janitor() {
	defer t.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.reasmMu.Lock()
			t.reasm.Expire(now)
			t.reasmMu.Unlock()
		}
	}
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	var s Stats
	for i, l := range t.links {
		if l == nil {
			continue
		}
		ls := LinkStats{
			SentPackets: l.st.sentPackets.Load(),
			SentBytes:   l.st.sentBytes.Load(),
			RecvPackets: l.st.recvPackets.Load(),
			RecvBytes:   l.st.recvBytes.Load(),
			Dropped:     l.st.dropped.Load(),
		}
		s.PerLink[i] = ls
		s.SentPackets += ls.SentPackets
		s.SentBytes += ls.SentBytes
		s.RecvPackets += ls.RecvPackets
		s.RecvBytes += ls.RecvBytes
	}
	t.reasmMu.Lock()
	rd := t.reasm.Drops()
	t.reasmMu.Unlock()
	s.DropForged = t.c.forged.Load()
	s.DropCorrupt = t.c.corrupt.Load() + rd.Corrupt
	s.DropReplayed = t.c.replayed.Load()
	s.DropForeign = t.c.foreign.Load()
	s.DropStale = t.c.stale.Load()
	s.DropUnknownSender = t.c.unknownSender.Load()
	s.DropMisrouted = t.c.misrouted.Load()
	s.DropTooLarge = t.c.tooLarge.Load() + rd.TooLarge
	s.DropReassemblyTimeout = rd.Timeout
	s.DropReassemblyOverflow = rd.Overflow
	s.DropQueueFull = t.c.queueFull.Load()
	s.Delivered = t.c.delivered.Load()
	s.SendBufferFull = t.c.sendBufferFull.Load()
	s.SendErrors = t.c.sendErrors.Load()
	s.TripwireRejected = t.c.twRejected.Load()
	s.EventsDropped = t.c.eventsDropped.Load()
	return s
}

// emit queues a PeerEvent; it never blocks. Called with t.tw.mu held, so
// events leave in the order the tripwire state changed.
func (t *Transport) emit(ev PeerEvent) {
	t.evMu.Lock()
	if len(t.evQueue) >= eventQueue {
		t.evQueue = t.evQueue[1:]
		t.c.eventsDropped.Add(1)
	}
	t.evQueue = append(t.evQueue, ev)
	t.evMu.Unlock()
	select {
	case t.evSignal <- struct{}{}:
	default:
	}
}

// eventPump moves queued events to the PeerEvents channel.
func (t *Transport) eventPump() {
	defer t.wg.Done()
	var batch []PeerEvent
	for {
		select {
		case <-t.done:
			return
		case <-t.evSignal:
		}
		t.evMu.Lock()
		batch, t.evQueue = t.evQueue, batch[:0]
		t.evMu.Unlock()
		for _, ev := range batch {
			select {
			case t.events <- ev:
			case <-t.done:
				return
			}
		}
	}
}
