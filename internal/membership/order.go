package membership

import (
	"slices"
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// Total order inside a view
//
// The view's representative (its coordinator) is the sequencer. A member
// submits its entries (fragments of its messages, in its own order) to the
// representative, which numbers them and sends them to every member in
// batches. Members deliver in number order, acknowledge how far they hold
// every entry, and the representative resends to a member whose
// acknowledgement stalls. Entries every member holds are "stable" and
// dropped; until then they are kept, because a view change may need them
// (see view.go). Flow control: a member keeps at most Window entries
// unacknowledged at the representative, the representative keeps at most
// LogLimit unstable entries, and the local queue is bounded by SendQueue.

// outMsg is a local message on its way through the order.
type outMsg struct {
	mid      uint64 // per-incarnation message id, kept across re-sends
	payload  []byte
	kind     peerpb.Entry_Kind
	lastLseq uint64 // lseq of its last fragment in the current ring
}

// entryLog stores entries by sequence number from base+1 upward.
type entryLog struct {
	base uint64
	buf  []*peerpb.Entry
}

// maxLogSpan bounds how far ahead of the log's base an entry may land, so a
// corrupt sequence number cannot make the log allocate without bound.
const maxLogSpan = 1 << 20

func (l *entryLog) get(seq uint64) *peerpb.Entry {
	if seq <= l.base || seq > l.base+uint64(len(l.buf)) {
		return nil
	}
	return l.buf[seq-l.base-1]
}

func (l *entryLog) put(en *peerpb.Entry) bool {
	if en.Seq <= l.base || en.Seq-l.base > maxLogSpan {
		return false
	}
	i := int(en.Seq - l.base - 1)
	for i >= len(l.buf) {
		l.buf = append(l.buf, nil)
	}
	if l.buf[i] != nil {
		return false
	}
	l.buf[i] = en
	return true
}

// trim drops entries up to and including seq.
func (l *entryLog) trim(seq uint64) {
	if seq <= l.base {
		return
	}
	n := min(seq-l.base, uint64(len(l.buf)))
	clear(l.buf[:n])
	l.buf = l.buf[n:]
	l.base = seq
	if cap(l.buf) > 4*len(l.buf)+1024 {
		l.buf = append([]*peerpb.Entry(nil), l.buf...)
	}
}

// order is the ordering state of one ring on one node.
type order struct {
	ring      RingID
	members   []Member
	isRep     bool
	frozen    bool // a view change started: no more delivery, sending or sequencing
	syncDone  bool
	installed bool

	log       entryLog
	delivered uint64
	received  uint64 // every entry up to here is held or delivered
	stable    uint64 // every member holds every entry up to here
	ackDirty  bool
	partial   map[NodeID][]byte // reassembly of fragmented messages
	barriers  map[NodeID]bool

	// sender side
	nextLseq     uint64
	inflight     []*peerpb.Entry // own entries not yet seen ordered
	sentLseq     uint64          // highest lseq transmitted
	mine         []*outMsg       // own messages not yet delivered here
	lastProgress time.Time

	// representative side
	nextSeq     uint64
	reps        []repMember // per member, in members order
	outbox      []*peerpb.Entry
	stableDirty bool
}

// repMember is what the representative tracks about one member.
type repMember struct {
	expect      uint64 // next lseq expected from it
	ack         uint64 // it holds every entry up to here
	progress    time.Time
	lastRetrans time.Time
}

// recomputeStable is the representative's stable point: the lowest
// acknowledgement of any member.
func (o *order) recomputeStable(e *Engine) {
	if !o.stableDirty {
		return
	}
	o.stableDirty = false
	st := o.nextSeq - 1
	for i, m := range o.members {
		if m.Node != e.cfg.Self {
			st = min(st, o.reps[i].ack)
		}
	}
	o.updateStable(st)
}

func newOrder(e *Engine, ring RingID, members []Member) *order {
	o := &order{
		ring:     ring,
		members:  members,
		isRep:    ring.Rep == e.cfg.Self,
		partial:  map[NodeID][]byte{},
		barriers: map[NodeID]bool{},
		nextLseq: 1,
		nextSeq:  1,
	}
	o.lastProgress = e.now
	if o.isRep {
		o.reps = make([]repMember, len(members))
		for i := range o.reps {
			o.reps[i] = repMember{expect: 1, progress: e.now}
		}
	}
	return o
}

// memberIndex finds id among the ring's members (sorted by node).
func (o *order) memberIndex(id NodeID) (int, bool) {
	return slices.BinarySearchFunc(o.members, id, func(m Member, id NodeID) int { return cmpNode(m.Node, id) })
}

func (o *order) member(id NodeID) bool {
	_, ok := o.memberIndex(id)
	return ok
}

func (o *order) incarnationOf(id NodeID) uint64 {
	if i, ok := o.memberIndex(id); ok {
		return o.members[i].Incarnation
	}
	return 0
}

func entrySize(en *peerpb.Entry) int { return len(en.Payload) + 32 }

// submitLocal splits m into entries and queues them for ordering.
func (o *order) submitLocal(e *Engine, m *outMsg) {
	frag := e.cfg.MaxBatch - 64
	p := m.payload
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), frag)
		en := &peerpb.Entry{Sender: uint32(e.cfg.Self), Lseq: o.nextLseq, Kind: m.kind, Payload: p[:n], More: n < len(p), Mid: m.mid}
		o.nextLseq++
		p = p[n:]
		o.inflight = append(o.inflight, en)
		m.lastLseq = en.Lseq
	}
	o.mine = append(o.mine, m)
}

// heldRanges lists the entries held above the delivered point.
func (o *order) heldRanges() []*peerpb.Range {
	return o.ranges(o.delivered+1, o.log.base+uint64(len(o.log.buf)), true)
}

// missing lists the ranges in [from, to] not held.
func (o *order) missing(from, to uint64) []*peerpb.Range {
	return o.ranges(from, to, false)
}

// ranges lists the ranges of sequence numbers in [from, to] that are held
// (or, with held false, not held).
func (o *order) ranges(from, to uint64, held bool) []*peerpb.Range {
	var rs []*peerpb.Range
	to = min(to, from+maxLogSpan) // no log spans more
	for s := from; s <= to; s++ {
		if (o.log.get(s) != nil) == held {
			rs = extendRanges(rs, s)
		}
	}
	return rs
}

// extendRanges adds s, above every range in rs, to rs.
func extendRanges(rs []*peerpb.Range, s uint64) []*peerpb.Range {
	if n := len(rs); n > 0 && rs[n-1].Last+1 == s {
		rs[n-1].Last = s
		return rs
	}
	return append(rs, &peerpb.Range{First: s, Last: s})
}

// store keeps an ordered entry. It reports whether the entry was new.
func (o *order) store(e *Engine, en *peerpb.Entry) bool {
	if en == nil || en.Seq <= o.delivered || !o.log.put(en) {
		return false
	}
	for o.log.get(o.received+1) != nil {
		o.received++
	}
	if NodeID(en.Sender) == e.cfg.Self {
		o.seenOwn(e, en.Lseq)
	}
	return true
}

// seenOwn drops own entries up to lseq from the in-flight list: they are
// ordered.
func (o *order) seenOwn(e *Engine, lseq uint64) {
	n := 0
	for n < len(o.inflight) && o.inflight[n].Lseq <= lseq {
		n++
	}
	if n > 0 {
		o.inflight = o.inflight[n:]
		o.lastProgress = e.now
	}
}

func (o *order) updateStable(s uint64) {
	if s > o.stable {
		o.stable = s
		o.gc()
	}
}

func (o *order) gc() {
	o.log.trim(min(o.stable, o.delivered))
}

// deliverReady delivers contiguous entries when the view allows it.
func (o *order) deliverReady(e *Engine) {
	if o.frozen || o != e.cur || (e.state != StateSync && e.state != StateOperational) {
		return
	}
	for {
		en := o.log.get(o.delivered + 1)
		if en == nil {
			break
		}
		o.delivered++
		e.deliverEntry(o, en)
	}
	o.gc()
}

func (e *Engine) deliverEntry(o *order, en *peerpb.Entry) {
	from := NodeID(en.Sender)
	if from == e.cfg.Self && !en.More && len(o.mine) > 0 && o.mine[0].lastLseq == en.Lseq {
		m := o.mine[0]
		o.mine = o.mine[1:]
		if m.kind == peerpb.Entry_APP {
			e.queueBytes -= len(m.payload)
		}
	}
	switch en.Kind {
	case peerpb.Entry_BARRIER:
		if !o.barriers[from] && o.member(from) {
			o.barriers[from] = true
			if len(o.barriers) == len(o.members) && !o.installed {
				e.install(o)
				e.pump()
			}
		}
	default:
		payload := en.Payload
		if part, ok := o.partial[from]; ok || en.More {
			part = append(part, en.Payload...)
			if en.More {
				o.partial[from] = part
				return
			}
			delete(o.partial, from)
			payload = part
		}
		// A message re-sent after a view change may already have been
		// delivered here in an earlier view (the sender's partition lost
		// it, ours did not). It stays in the order, so every member of
		// this view sees the same sequence, but is marked a repeat. A
		// sender's messages come in mid order, so anything not above the
		// last one seen is a repeat.
		repeat := false
		if en.Kind == peerpb.Entry_APP {
			key := Member{Node: from, Incarnation: o.incarnationOf(from)}
			if en.Mid <= e.lastMid[key] {
				repeat = true
			} else {
				e.lastMid[key] = en.Mid
			}
		}
		if !repeat {
			e.stats.Delivered++
			e.stats.DeliveredBytes += uint64(len(payload))
		}
		e.emit(Event{Kind: EventDeliver, Ring: o.ring, From: from, Payload: payload, Sync: en.Kind == peerpb.Entry_SYNC, Repeat: repeat})
	}
}

// requeue puts own messages the old view did not deliver back at the head of
// the queue, so they go out, in order, in the next view. Sync messages
// belong to their view and are dropped.
func (e *Engine) requeue(o *order) {
	var back []*outMsg
	for _, m := range o.mine {
		if m.kind == peerpb.Entry_APP {
			back = append(back, &outMsg{mid: m.mid, payload: m.payload, kind: m.kind})
		}
	}
	o.mine = nil
	if len(back) > 0 {
		e.queue = append(back, e.queue...)
	}
}

// pump hands queued messages to the installed view.
func (e *Engine) pump() {
	o := e.cur
	if o == nil || o.frozen || e.state != StateOperational {
		return
	}
	for len(e.queue) > 0 && len(o.inflight) < e.cfg.Window {
		m := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		o.submitLocal(e, m)
	}
	if len(e.queue) == 0 {
		e.queue = nil
	}
}

// sequence numbers entries of sender (representative only).
func (e *Engine) sequence(o *order, sender NodeID, entries []*peerpb.Entry) {
	i, ok := o.memberIndex(sender)
	if !ok {
		return
	}
	r := &o.reps[i]
	for _, en := range entries {
		if en.Lseq < r.expect {
			continue
		}
		if en.Lseq > r.expect || o.nextSeq-1-o.stable >= uint64(e.cfg.LogLimit) {
			break
		}
		ne := &peerpb.Entry{Seq: o.nextSeq, Sender: uint32(sender), Lseq: en.Lseq, Kind: en.Kind, More: en.More, Payload: en.Payload, Mid: en.Mid}
		o.nextSeq++
		r.expect++
		o.outbox = append(o.outbox, ne)
		o.store(e, ne)
	}
	if o.nextSeq-1-o.stable >= uint64(e.cfg.LogLimit)/2 {
		o.stableDirty = true // getting full: find out what can go
	}
	o.deliverReady(e)
}

func (e *Engine) onSubmit(p *peer, s *peerpb.Submit) {
	o := e.cur
	if o == nil || !o.isRep || o.frozen || ringOf(s.Ring) != o.ring {
		return
	}
	e.sequence(o, p.id, s.Entries)
}

func (e *Engine) onOrder(p *peer, m *peerpb.Order) {
	ring := ringOf(m.Ring)
	var o *order
	switch {
	case e.cur != nil && e.cur.ring == ring:
		o = e.cur
	case e.next != nil && e.next.ring == ring:
		o = e.next
	}
	if o == nil || o.isRep || p.id != ring.Rep {
		return
	}
	for _, en := range m.Entries {
		o.store(e, en)
	}
	o.ackDirty = true
	o.updateStable(m.Stable)
	o.deliverReady(e)
}

func (e *Engine) onAck(p *peer, a *peerpb.Ack) {
	o := e.cur
	if o == nil || !o.isRep || ringOf(a.Ring) != o.ring {
		return
	}
	i, ok := o.memberIndex(p.id)
	if !ok {
		return
	}
	if r := &o.reps[i]; a.Received > r.ack {
		r.ack = min(a.Received, o.nextSeq-1)
		r.progress = e.now
		// Stable is recomputed on the tick (or sooner when the log fills),
		// not per Ack: with many members that would cost O(n) per Ack.
		if o.nextSeq-1-o.stable >= uint64(e.cfg.LogLimit)/2 {
			o.stableDirty = true
		}
	}
}

// tickOrder retransmits what stalls.
func (e *Engine) tickOrder() {
	o := e.cur
	if o == nil || o.frozen {
		return
	}
	now := e.now
	if len(o.inflight) > 0 && !o.isRep && now.Sub(o.lastProgress) >= e.cfg.Retransmit {
		o.sentLseq = 0 // resend the window
		o.lastProgress = now
		e.stats.Retransmissions++
	}
	if !o.isRep {
		return
	}
	o.stableDirty = true
	o.recomputeStable(e)
	high := o.nextSeq - 1
	for i, m := range o.members {
		if m.Node == e.cfg.Self {
			continue
		}
		r := &o.reps[i]
		a := r.ack
		if a >= high || now.Sub(r.progress) < e.cfg.Retransmit || now.Sub(r.lastRetrans) < e.cfg.Retransmit {
			continue
		}
		r.lastRetrans = now
		e.stats.Retransmissions++
		var batch []*peerpb.Entry
		size, sent := 0, 0
		for s := a + 1; s <= high && sent < e.cfg.Window; s++ {
			en := o.log.get(s)
			if en == nil {
				continue
			}
			if size+entrySize(en) > e.cfg.MaxBatch && len(batch) > 0 {
				e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Order{Order: &peerpb.Order{Ring: ringPB(o.ring), Entries: batch, Stable: o.stable}}})
				batch, size = nil, 0
			}
			batch = append(batch, en)
			size += entrySize(en)
			sent++
		}
		if len(batch) > 0 {
			e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Order{Order: &peerpb.Order{Ring: ringPB(o.ring), Entries: batch, Stable: o.stable}}})
		}
	}
}

// flush turns pending state into messages: submissions, ordered batches,
// acknowledgements and heartbeats.
func (e *Engine) flush() {
	if e.state == StateLeft {
		return
	}
	if e.persist {
		e.out.PersistSeq = e.maxSeq
		e.persist = false
	}
	e.pump()
	if o := e.cur; o != nil && !o.frozen {
		if o.isRep {
			// Our own entries are sequenced here; delivering them may
			// install the view, which lets more of the queue in.
			for len(o.inflight) > 0 {
				next := o.nextSeq
				e.sequence(o, e.cfg.Self, o.inflight)
				e.pump()
				if o.nextSeq == next {
					break // LogLimit reached: wait for acknowledgements
				}
			}
			o.recomputeStable(e)
			e.broadcastOutbox(o)
		} else {
			e.submitInflight(o)
			if o.ackDirty {
				o.ackDirty = false
				e.send(o.ring.Rep, &peerpb.Message{Body: &peerpb.Message_Ack{Ack: &peerpb.Ack{Ring: ringPB(o.ring), Received: o.received}}})
			}
		}
	}
	if e.started {
		e.sendHeartbeats()
	}
}

func (e *Engine) broadcastOutbox(o *order) {
	if len(o.outbox) == 0 {
		return
	}
	ring := ringPB(o.ring)
	var batch []*peerpb.Entry
	size := 0
	send := func() {
		ord := &peerpb.Order{Ring: ring, Entries: batch, Stable: o.stable}
		for _, m := range o.members {
			if m.Node != e.cfg.Self {
				e.send(m.Node, &peerpb.Message{Body: &peerpb.Message_Order{Order: ord}})
			}
		}
		batch, size = nil, 0
	}
	for _, en := range o.outbox {
		if size+entrySize(en) > e.cfg.MaxBatch && len(batch) > 0 {
			send()
		}
		batch = append(batch, en)
		size += entrySize(en)
	}
	if len(batch) > 0 {
		send()
	}
	o.outbox = nil
}

func (e *Engine) submitInflight(o *order) {
	if len(o.inflight) == 0 {
		return
	}
	ring := ringPB(o.ring)
	var batch []*peerpb.Entry
	size := 0
	for i, en := range o.inflight {
		if i >= e.cfg.Window {
			break
		}
		if en.Lseq <= o.sentLseq {
			continue
		}
		if size+entrySize(en) > e.cfg.MaxBatch && len(batch) > 0 {
			e.send(o.ring.Rep, &peerpb.Message{Body: &peerpb.Message_Submit{Submit: &peerpb.Submit{Ring: ring, Entries: batch}}})
			batch, size = nil, 0
		}
		batch = append(batch, en)
		size += entrySize(en)
		o.sentLseq = en.Lseq
	}
	if len(batch) > 0 {
		e.send(o.ring.Rep, &peerpb.Message{Body: &peerpb.Message_Submit{Submit: &peerpb.Submit{Ring: ring, Entries: batch}}})
	}
}
