package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Tripwire timing and limits.
const (
	helloPayload = "hello"
	// helloTimeout bounds the hello exchange on a new connection.
	helloTimeout = 2 * time.Second
	// dialTimeout bounds one connection attempt (a dead host does not
	// refuse, it is silent).
	dialTimeout = time.Second
	// Dial backoff while a peer refuses: 50 ms doubling up to 1 s.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
	// maxHelloLen is the largest hello record accepted, bytes.
	maxHelloLen = 256
	// maxPending bounds accepted connections per link that have not yet
	// authenticated, so that strangers cannot pile up goroutines.
	maxPending = 64
)

var errBadHello = errors.New("transport: bad tripwire hello")

type twKey struct {
	node uint32
	link int
}

// twSession is the newest known incarnation of a peer on one link and its
// authenticated connections.
type twSession struct {
	inc   uint64
	conns map[*net.TCPConn]struct{}
	up    bool
	// gone is set once Up=false was raised: that process closed a validated
	// connection, so it is ending. Hellos it wrote before it closed may still
	// validate afterwards; they raise no second Up.
	gone bool
}

type tripwire struct {
	mu       sync.Mutex
	closed   bool
	sessions map[twKey]*twSession
	open     map[*net.TCPConn]struct{} // every connection, for Close
	pending  [MaxLinks]int
}

func (tw *tripwire) init() {
	tw.sessions = make(map[twKey]*twSession)
	tw.open = make(map[*net.TCPConn]struct{})
}

// track registers c so that Close closes it; false (and c closed) if the
// transport is already closed.
func (tw *tripwire) track(c *net.TCPConn) bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.closed {
		c.Close()
		return false
	}
	tw.open[c] = struct{}{}
	return true
}

func (tw *tripwire) untrack(c *net.TCPConn) {
	tw.mu.Lock()
	delete(tw.open, c)
	tw.mu.Unlock()
	c.Close()
}

func (tw *tripwire) closeAll() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.closed = true
	for c := range tw.open {
		c.Close()
	}
}

func (tw *tripwire) admitPending(link int) bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.pending[link] >= maxPending {
		return false
	}
	tw.pending[link]++
	return true
}

func (tw *tripwire) releasePending(link int) {
	tw.mu.Lock()
	tw.pending[link]--
	tw.mu.Unlock()
}

// acceptLoop accepts tripwire connections on one link.
func (t *Transport) acceptLoop(l *link) {
	defer t.wg.Done()
	backoff := minBackoff
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if t.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: wait, do not spin.
			t.log.Warn("tripwire accept failed", "link", l.index, "err", err)
			if !t.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		if _, ok := l.peerIPs[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().WithZone("")]; !ok {
			// Not from a configured peer address: a stranger.
			t.c.twRejected.Add(1)
			c.Close()
			continue
		}
		if !t.tw.admitPending(l.index) {
			t.c.twRejected.Add(1)
			c.Close()
			continue
		}
		t.wg.Add(1)
		go t.serveAccepted(l, c)
	}
}

// serveAccepted runs the acceptor side: read and check the peer's hello,
// answer with ours, then hold the connection until it ends.
func (t *Transport) serveAccepted(l *link, c *net.TCPConn) {
	defer t.wg.Done()
	released := false
	defer func() {
		if !released {
			t.tw.releasePending(l.index)
		}
	}()
	if !t.tw.track(c) {
		return
	}
	defer t.tw.untrack(c)
	_ = c.SetNoDelay(true)
	_ = c.SetDeadline(time.Now().Add(helloTimeout))
	h, err := t.readHello(c, l)
	if err != nil {
		t.refused(c, l, err)
		return
	}
	released = true
	t.tw.releasePending(l.index)
	if err := t.writeHello(c, h.Sender, l.index); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	t.hold(c, h.Sender, h.Incarnation, l.index)
}

// dialLoop keeps a tripwire connection to one peer on one link.
func (t *Transport) dialLoop(node uint32, l *link, r *route) {
	defer t.wg.Done()
	d := net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.local.Addr(), 0)),
		Timeout:   dialTimeout,
		KeepAlive: -1, // the engine's heartbeats detect dead hosts
	}
	addr := r.addr.String()
	backoff := minBackoff
	for !t.isClosed() {
		ok := false
		if c, err := d.DialContext(t.ctx, "tcp", addr); err == nil {
			ok = t.runDialed(c.(*net.TCPConn), node, l)
		}
		if ok {
			// The connection authenticated and has now ended: the peer
			// process is gone; look for its successor from the start.
			backoff = minBackoff
		}
		if !t.sleep(backoff) {
			return
		}
		if !ok {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// runDialed runs the dialer side; it reports whether the peer authenticated.
func (t *Transport) runDialed(c *net.TCPConn, node uint32, l *link) bool {
	if !t.tw.track(c) {
		return false
	}
	defer t.tw.untrack(c)
	_ = c.SetNoDelay(true)
	_ = c.SetDeadline(time.Now().Add(helloTimeout))
	if err := t.writeHello(c, node, l.index); err != nil {
		return false
	}
	h, err := t.readHello(c, l)
	if err == nil && h.Sender != node {
		err = errBadHello
	}
	if err != nil {
		t.refused(c, l, err)
		return false
	}
	_ = c.SetDeadline(time.Time{})
	t.hold(c, h.Sender, h.Incarnation, l.index)
	return true
}

// refused accounts for a connection closed during the hello exchange. A
// peer that goes away mid-handshake (EOF, reset) is not a rejection; a hello
// that fails validation or never comes is.
func (t *Transport) refused(c *net.TCPConn, l *link, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		t.log.Debug("tripwire handshake interrupted", "link", l.index, "remote", c.RemoteAddr(), "err", err)
		return
	}
	t.c.twRejected.Add(1)
	t.log.Debug("tripwire connection refused", "link", l.index, "remote", c.RemoteAddr(), "err", err)
}

// sleep waits d or until Close; false means closed.
func (t *Transport) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-t.done:
		return false
	}
}

func (t *Transport) writeHello(c *net.TCPConn, to uint32, link int) error {
	rec := t.sealer.Seal(make([]byte, 2, 2+FragmentHeaderLen+len(helloPayload)+GCMTagLen), to, t.opener.PeerIncarnation(to), link, nil, []byte(helloPayload))
	binary.BigEndian.PutUint16(rec, uint16(len(rec)-2))
	_, err := c.Write(rec)
	return err
}

// readHello reads one hello record and validates it with the Opener (tag,
// sender, destination, link, authentication, incarnation, replay).
func (t *Transport) readHello(c *net.TCPConn, l *link) (Header, error) {
	var lenb [2]byte
	if _, err := io.ReadFull(c, lenb[:]); err != nil {
		return Header{}, err
	}
	n := int(binary.BigEndian.Uint16(lenb[:]))
	if n < HeaderLen || n > maxHelloLen {
		t.countDrop(nil, ErrCorrupt, netip.Addr{})
		return Header{}, errBadHello
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return Header{}, err
	}
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	h, payload, err := t.opener.Open(src, l.index, buf)
	if err != nil {
		t.countDrop(nil, err, src)
		return h, err
	}
	if h.Flags&FlagFragment != 0 || string(payload) != helloPayload {
		t.countDrop(nil, ErrCorrupt, src)
		return h, errBadHello
	}
	return h, nil
}

// hold keeps an authenticated connection until it ends, raising Up when it
// is the first of its (node, incarnation, link) and Down when it is the
// last. Nothing is expected on the connection; stray bytes are discarded.
func (t *Transport) hold(c *net.TCPConn, node uint32, inc uint64, link int) {
	if !t.connUp(c, node, inc, link) {
		return
	}
	var buf [64]byte
	var err error
	for err == nil {
		_, err = c.Read(buf[:])
	}
	t.log.Debug("tripwire connection ended", "peer", node, "peer_incarnation", inc, "link", link, "local", c.LocalAddr(), "remote", c.RemoteAddr(), "err", err)
	t.connDown(c, node, inc, link)
}

func (t *Transport) connUp(c *net.TCPConn, node uint32, inc uint64, link int) bool {
	tw := &t.tw
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.closed {
		return false
	}
	key := twKey{node, link}
	s := tw.sessions[key]
	switch {
	case s != nil && inc < s.inc:
		// An older process than one already seen: it is gone or going.
		return false
	case s == nil || inc > s.inc:
		if s != nil {
			// The peer restarted; connections of the old process are
			// superseded and end without an event.
			for oc := range s.conns {
				oc.Close()
			}
		}
		s = &twSession{inc: inc, conns: make(map[*net.TCPConn]struct{}, 2)}
		tw.sessions[key] = s
	}
	s.conns[c] = struct{}{}
	if !s.up && !s.gone {
		s.up = true
		t.log.Info("peer tripwire up", "peer", node, "peer_incarnation", inc, "link", link)
		t.emit(PeerEvent{Node: node, Incarnation: inc, Link: link, Up: true})
	}
	return true
}

func (t *Transport) connDown(c *net.TCPConn, node uint32, inc uint64, link int) {
	tw := &t.tw
	tw.mu.Lock()
	defer tw.mu.Unlock()
	s := tw.sessions[twKey{node, link}]
	if s == nil || s.inc != inc {
		return
	}
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if len(s.conns) == 0 && s.up && !tw.closed {
		s.up, s.gone = false, true
		t.log.Info("peer tripwire down: the peer process closed", "peer", node, "peer_incarnation", inc, "link", link)
		t.emit(PeerEvent{Node: node, Incarnation: inc, Link: link, Up: false})
	}
}
