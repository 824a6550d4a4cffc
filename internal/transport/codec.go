package transport

import (
	"crypto/cipher"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ReplayWindow is the size in counters of the per-sender replay bitmap. A
// frame is accepted while its counter is within ReplayWindow-64 of the
// highest accepted one and has not been seen. At 20,000 frames/s from one
// sender that tolerates about 3 s of reordering between links, and costs
// 8 KiB per peer.
const ReplayWindow = 65536

const windowWords = ReplayWindow / 64

// replayWindow is a sliding bitmap over counters (RFC 6479 style): a ring of
// 64-bit words where the bit for counter c lives at word (c/64)%windowWords.
// Advancing clears only the words that slide in, so the cost is amortised
// O(1) per frame.
type replayWindow struct {
	top  uint64 // highest counter accepted; 0 = none (counters start at 1)
	bits [windowWords]uint64
}

func (w *replayWindow) reset() {
	w.top = 0
	clear(w.bits[:])
}

// admit records c and reports whether it was fresh.
func (w *replayWindow) admit(c uint64) bool {
	if c > w.top {
		cb, tb := c/64, w.top/64
		if cb-tb >= windowWords {
			clear(w.bits[:])
		} else {
			for b := tb + 1; b <= cb; b++ {
				w.bits[b%windowWords] = 0
			}
		}
		w.top = c
		w.bits[cb%windowWords] |= 1 << (c % 64)
		return true
	}
	if w.top-c >= ReplayWindow-64 {
		return false
	}
	word := &w.bits[(c/64)%windowWords]
	mask := uint64(1) << (c % 64)
	if *word&mask != 0 {
		return false
	}
	*word |= mask
	return true
}

// Sealer builds the frames of one sender session (one process run of one
// node). It owns the session counter, so there must be exactly one Sealer per
// (node, incarnation). It is safe for concurrent use.
type Sealer struct {
	tag     ClusterTag
	self    uint32
	inc     uint64
	aead    cipher.AEAD // nil in cleartext mode
	counter atomic.Uint64
	msgID   atomic.Uint32
}

// NewSealer returns the sealer for node self in its session incarnation. A
// nil key selects cleartext mode.
func NewSealer(clusterName string, key []byte, self uint32, incarnation uint64) (*Sealer, error) {
	s := &Sealer{tag: ClusterTagOf(clusterName), self: self, inc: incarnation}
	if key != nil {
		aead, err := SessionKey(key, s.tag, self, incarnation)
		if err != nil {
			return nil, err
		}
		s.aead = aead
	}
	return s, nil
}

// Encrypted reports whether frames are sealed with AES-GCM.
func (s *Sealer) Encrypted() bool { return s.aead != nil }

// Overhead returns the bytes a frame adds after the header (GCM tag or CRC).
func (s *Sealer) Overhead() int {
	if s.aead != nil {
		return GCMTagLen
	}
	return CRCLen
}

// NextMessageID returns a fresh message id for a fragmented payload.
func (s *Sealer) NextMessageID() uint32 { return s.msgID.Add(1) }

// Seal appends to dst one frame to node to (whose incarnation the caller
// knows to be toInc, or 0 if it knows none) on link carrying payload, with
// the next counter value. frag is nil for an unfragmented frame.
func (s *Sealer) Seal(dst []byte, to uint32, toInc uint64, link int, frag *Fragment, payload []byte) []byte {
	h := Header{
		Tag:             s.tag,
		Sender:          s.self,
		Dest:            to,
		Link:            uint8(link),
		Incarnation:     s.inc,
		Counter:         s.counter.Add(1),
		DestIncarnation: toInc,
	}
	if frag != nil {
		h.Flags = FlagFragment
		h.Frag = *frag
	}
	return SealFrame(dst, &h, payload, s.aead)
}

// OpenerConfig configures an [Opener].
type OpenerConfig struct {
	ClusterName string
	Key         []byte // nil = cleartext mode
	Self        uint32
	// Incarnation is this node's own incarnation: frames addressed to any
	// other (non-zero) incarnation of Self are stale.
	Incarnation uint64
	// Peers lists the nodes frames are accepted from, with their address
	// per link index (zero = no such link). In cleartext mode a frame's
	// source IP must equal its sender's address on the link it arrived on.
	// An entry for Self is ignored.
	Peers map[uint32][]netip.AddrPort
}

// Opener validates received frames for one node: cluster tag, sender,
// destination, authentication, incarnation and replay. It is safe for
// concurrent use; the only shared mutable state is one small lock per sender.
type Opener struct {
	tag   ClusterTag
	key   []byte
	self  uint32
	inc   uint64
	peers map[uint32]*senderState
}

// senderState is what an Opener knows about one peer.
type senderState struct {
	id    uint32
	addrs [MaxLinks]netip.Addr // unmapped, no zone; invalid = no address on that link

	// cur is the session of the highest authenticated incarnation, spare the
	// most recent other one (a restarted peer's frames still in flight), so
	// that neither needs HKDF per frame. Only sessions that authenticated a
	// frame are cached, so forged frames cannot evict them.
	cur, spare atomic.Pointer[session]

	// known mirrors inc for lock-free reads by senders (0 until seen).
	known atomic.Uint64

	mu   sync.Mutex
	seen bool   // an authenticated frame has been accepted
	inc  uint64 // highest authenticated incarnation
	win  replayWindow
}

type session struct {
	inc  uint64
	aead cipher.AEAD
}

// NewOpener builds an Opener.
func NewOpener(cfg OpenerConfig) (*Opener, error) {
	o := &Opener{tag: ClusterTagOf(cfg.ClusterName), self: cfg.Self, inc: cfg.Incarnation, peers: make(map[uint32]*senderState, len(cfg.Peers))}
	if cfg.Key != nil {
		if err := checkKeyLen(cfg.Key); err != nil {
			return nil, err
		}
		o.key = append([]byte(nil), cfg.Key...)
	}
	for id, addrs := range cfg.Peers {
		if id == cfg.Self {
			continue
		}
		if len(addrs) > MaxLinks {
			return nil, fmt.Errorf("transport: peer %d has %d link addresses, at most %d", id, len(addrs), MaxLinks)
		}
		p := &senderState{id: id}
		for i, a := range addrs {
			if a.IsValid() {
				p.addrs[i] = a.Addr().Unmap().WithZone("")
			}
		}
		o.peers[id] = p
	}
	return o, nil
}

// Encrypted reports whether the opener expects sealed frames.
func (o *Opener) Encrypted() bool { return o.key != nil }

// Open validates a frame that arrived on link from source address src and
// returns its header and payload. The payload aliases frame (it is decrypted
// in place), so frame must not be reused while the payload is needed. Errors
// are the package's sentinel errors, unwrapped; on any error nothing about
// the sender's state has changed except for caching a verified session key.
func (o *Opener) Open(src netip.Addr, link int, frame []byte) (Header, []byte, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	if h.Tag != o.tag {
		return h, nil, ErrForeign
	}
	p := o.peers[h.Sender]
	if p == nil {
		return h, nil, ErrUnknownSender
	}
	if h.Dest != o.self || link < 0 || link >= MaxLinks || int(h.Link) != link || !p.addrs[link].IsValid() {
		return h, nil, ErrMisrouted
	}
	var sess *session
	var payload []byte
	if o.key != nil {
		if h.Flags&FlagEncrypted == 0 {
			return h, nil, ErrForged
		}
		sess = o.sessionFor(p, h.Incarnation)
		payload, err = OpenPayload(frame, &h, sess.aead)
		if err != nil {
			return h, nil, err
		}
	} else {
		payload, err = OpenPayload(frame, &h, nil)
		if err != nil {
			return h, nil, err
		}
		if src.Unmap().WithZone("") != p.addrs[link] {
			return h, nil, ErrForged
		}
	}
	// Authenticated. A frame sealed for an earlier run of this node is a
	// replay from before our restart.
	if h.DestIncarnation != 0 && h.DestIncarnation != o.inc {
		return h, nil, ErrStale
	}
	// Only now may the sender's state change.
	if err := p.admit(sess, h.Incarnation, h.Counter); err != nil {
		return h, nil, err
	}
	return h, payload, nil
}

// sessionFor returns the cached session for inc, or derives a new one that
// is cached only once it has authenticated a frame (see admit).
func (o *Opener) sessionFor(p *senderState, inc uint64) *session {
	if s := p.cur.Load(); s != nil && s.inc == inc {
		return s
	}
	if s := p.spare.Load(); s != nil && s.inc == inc {
		return s
	}
	aead, err := SessionKey(o.key, o.tag, p.id, inc)
	if err != nil {
		// The key length was checked in NewOpener; nothing else can fail.
		panic(err)
	}
	return &session{inc: inc, aead: aead}
}

// admit applies the incarnation and replay rules to an authenticated frame.
func (p *senderState) admit(sess *session, inc, counter uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.seen && inc < p.inc:
		p.cacheSpare(sess)
		return ErrStale
	case !p.seen || inc > p.inc:
		// The sender restarted (or this is its first frame): a new session,
		// a new counter space.
		if old := p.cur.Load(); old != nil {
			p.spare.Store(old)
		}
		p.seen, p.inc = true, inc
		p.known.Store(inc)
		p.win.reset()
		if sess != nil {
			p.cur.Store(sess)
		}
	}
	if !p.win.admit(counter) {
		return ErrReplayed
	}
	return nil
}

func (p *senderState) cacheSpare(sess *session) {
	if sess == nil {
		return
	}
	if s := p.spare.Load(); s == nil || s.inc != sess.inc {
		p.spare.Store(sess)
	}
}

// PeerIncarnation returns the highest incarnation of node that has
// authenticated a frame, or 0 if none has: what a Sealer should put in
// DestIncarnation when sending to node.
func (o *Opener) PeerIncarnation(node uint32) uint64 {
	if p := o.peers[node]; p != nil {
		return p.known.Load()
	}
	return 0
}
