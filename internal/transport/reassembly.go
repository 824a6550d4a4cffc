package transport

import (
	"bytes"
	"time"
)

// Reassembler defaults.
const (
	DefaultMaxMessage        = 4 << 20 // bytes
	DefaultReassemblyTimeout = 2 * time.Second
	DefaultMaxPerSender      = 16 << 20 // bytes held for one sender's incomplete messages
	DefaultMaxReassembly     = 64 << 20 // bytes held for all incomplete messages
	// DefaultMinFragment is the smallest fragment size F accepted: with
	// MaxMessage = 4 MiB it caps a message at 16,384 fragments. The smallest
	// F a sender uses is 460 bytes (MTU 576, IPv6 sizing).
	DefaultMinFragment = 256
)

// ReassemblerConfig bounds a [Reassembler]. Zero fields take the defaults.
type ReassemblerConfig struct {
	MaxMessage   int           // largest reassembled message, bytes (DefaultMaxMessage)
	MinFragment  int           // smallest fragment size F, bytes (DefaultMinFragment)
	MaxPerSender int           // bytes of incomplete messages per sender (DefaultMaxPerSender, at least MaxMessage)
	MaxTotal     int           // bytes of incomplete messages overall (DefaultMaxReassembly, at least MaxPerSender)
	Timeout      time.Duration // an incomplete message is dropped this long after its first fragment (DefaultReassemblyTimeout)
}

// Frag is one authenticated fragment handed to a [Reassembler].
type Frag struct {
	Sender      uint32
	Incarnation uint64
	Fragment
	Data []byte // copied by Add; the caller may reuse it
}

// ReassemblyDrops counts messages a Reassembler gave up on. Cumulative.
type ReassemblyDrops struct {
	Timeout  uint64 // incomplete when Timeout passed
	Corrupt  uint64 // fragments inconsistent with each other or with the rules
	TooLarge uint64 // Total above MaxMessage
	Overflow uint64 // evicted (oldest first) to respect the memory bounds
}

// Reassembler rebuilds fragmented payloads. Memory is bounded per sender and
// in total by charging each incomplete message its full Total length when its
// first fragment arrives; when a bound would be exceeded the oldest
// incomplete messages (of that sender first) are evicted. It is a pure state
// machine: not safe for concurrent use, and time comes from the caller.
//
// A fragment of a message that has already completed starts a new
// incomplete message that later expires; the frame layer's replay window
// keeps that from happening on the wire.
type Reassembler struct {
	cfg       ReassemblerConfig
	msgs      map[msgKey]*partial
	perSender map[uint32]int
	total     int
	head      *partial // oldest
	tail      *partial // newest
	drops     ReassemblyDrops
}

type msgKey struct {
	sender uint32
	inc    uint64
	id     uint32
}

type partial struct {
	key        msgKey
	deadline   time.Time
	buf        []byte // len Total
	charged    int    // bytes counted against the bounds (= Total)
	fragSize   int    // F
	count      int
	got        []uint64 // bitmap of received indexes
	have       int
	prev, next *partial
}

// NewReassembler returns an empty Reassembler.
func NewReassembler(cfg ReassemblerConfig) *Reassembler {
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MinFragment <= 0 {
		cfg.MinFragment = DefaultMinFragment
	}
	if cfg.MaxPerSender <= 0 {
		cfg.MaxPerSender = DefaultMaxPerSender
	}
	cfg.MaxPerSender = max(cfg.MaxPerSender, cfg.MaxMessage)
	if cfg.MaxTotal <= 0 {
		cfg.MaxTotal = DefaultMaxReassembly
	}
	cfg.MaxTotal = max(cfg.MaxTotal, cfg.MaxPerSender)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultReassemblyTimeout
	}
	return &Reassembler{cfg: cfg, msgs: make(map[msgKey]*partial), perSender: make(map[uint32]int)}
}

// Drops returns the cumulative drop counters.
func (r *Reassembler) Drops() ReassemblyDrops { return r.drops }

// Pending returns the number of incomplete messages and the bytes charged
// for them.
func (r *Reassembler) Pending() (messages, bytes int) { return len(r.msgs), r.total }

// fragSizeOf derives the fragment size F that f implies, or 0 if f is
// inconsistent on its own.
func (r *Reassembler) fragSizeOf(f *Frag) int {
	n, total, count, idx := len(f.Data), int(f.Total), int(f.Count), int(f.Index)
	if n == 0 || count == 0 || idx >= count || n > total {
		return 0
	}
	if count == 1 {
		if n != total {
			return 0
		}
		return n
	}
	var size int
	if idx < count-1 {
		size = n
		// (count-1)*F < Total <= count*F
		if (count-1)*size >= total || count*size < total {
			return 0
		}
	} else {
		rest := total - n
		if rest%(count-1) != 0 {
			return 0
		}
		size = rest / (count - 1)
		if n > size {
			return 0
		}
	}
	if size < r.cfg.MinFragment {
		return 0
	}
	return size
}

// Add files one fragment. When it completes its message, Add returns the
// message (owned by the caller) and true. Expired messages are dropped first.
func (r *Reassembler) Add(now time.Time, f Frag) ([]byte, bool) {
	r.Expire(now)
	if int64(f.Total) > int64(r.cfg.MaxMessage) {
		r.drops.TooLarge++
		return nil, false
	}
	size := r.fragSizeOf(&f)
	if size == 0 {
		r.drops.Corrupt++
		if p := r.msgs[msgKey{f.Sender, f.Incarnation, f.MsgID}]; p != nil {
			r.remove(p)
		}
		return nil, false
	}
	if f.Count == 1 {
		return bytes.Clone(f.Data), true
	}
	key := msgKey{f.Sender, f.Incarnation, f.MsgID}
	p := r.msgs[key]
	if p == nil {
		total := int(f.Total)
		r.makeRoom(f.Sender, total)
		p = &partial{
			key:      key,
			deadline: now.Add(r.cfg.Timeout),
			buf:      make([]byte, total),
			charged:  total,
			fragSize: size,
			count:    int(f.Count),
			got:      make([]uint64, (int(f.Count)+63)/64),
		}
		r.msgs[key] = p
		r.perSender[f.Sender] += total
		r.total += total
		r.pushBack(p)
	} else if p.fragSize != size || p.count != int(f.Count) || len(p.buf) != int(f.Total) {
		r.drops.Corrupt++
		r.remove(p)
		return nil, false
	}
	idx := int(f.Index)
	off := idx * p.fragSize
	word, mask := idx/64, uint64(1)<<(idx%64)
	if p.got[word]&mask != 0 {
		if !bytes.Equal(p.buf[off:off+len(f.Data)], f.Data) {
			r.drops.Corrupt++
			r.remove(p)
		}
		return nil, false // a duplicate
	}
	copy(p.buf[off:], f.Data)
	p.got[word] |= mask
	p.have++
	if p.have < p.count {
		return nil, false
	}
	msg := p.buf
	p.buf = nil
	r.remove(p)
	return msg, true
}

// Expire drops incomplete messages whose time is up and returns how many.
func (r *Reassembler) Expire(now time.Time) int {
	n := 0
	for p := r.head; p != nil && !now.Before(p.deadline); p = r.head {
		r.remove(p)
		r.drops.Timeout++
		n++
	}
	return n
}

// makeRoom evicts the oldest incomplete messages, of sender first, until a
// new message of size bytes fits within both bounds.
func (r *Reassembler) makeRoom(sender uint32, size int) {
	for p := r.head; p != nil && r.perSender[sender]+size > r.cfg.MaxPerSender; {
		next := p.next
		if p.key.sender == sender {
			r.remove(p)
			r.drops.Overflow++
		}
		p = next
	}
	for r.head != nil && r.total+size > r.cfg.MaxTotal {
		r.remove(r.head)
		r.drops.Overflow++
	}
}

func (r *Reassembler) pushBack(p *partial) {
	p.prev = r.tail
	if r.tail != nil {
		r.tail.next = p
	} else {
		r.head = p
	}
	r.tail = p
}

func (r *Reassembler) remove(p *partial) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		r.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		r.tail = p.prev
	}
	p.prev, p.next = nil, nil
	delete(r.msgs, p.key)
	total := p.charged
	r.total -= total
	if left := r.perSender[p.key.sender] - total; left > 0 {
		r.perSender[p.key.sender] = left
	} else {
		delete(r.perSender, p.key.sender)
	}
}
