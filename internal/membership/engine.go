package membership

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"slices"
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// State is where a node stands in forming and running views.
type State int

// States.
const (
	// StateGather: no agreed view, or the view broke and the node waits for
	// (or is) a coordinator.
	StateGather State = iota
	// StatePrepared: the node froze its view and reported it to a
	// coordinator; it waits for the commit.
	StatePrepared
	// StateRecover: a new view is committed; the node completes the old
	// view's messages up to the agreed cut.
	StateRecover
	// StateSync: the new view started (nodelist event); services exchange
	// state.
	StateSync
	// StateOperational: the view is installed.
	StateOperational
	// StateLeft: the node left the cluster (Leave).
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateGather:
		return "gather"
	case StatePrepared:
		return "prepared"
	case StateRecover:
		return "recovering"
	case StateSync:
		return "sync"
	case StateOperational:
		return "operational"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// Member is one agent process in a view.
type Member struct {
	Node        NodeID
	Incarnation uint64
}

// Engine is the membership and ordering state machine of one node. It is not
// safe for concurrent use; one driver goroutine owns it.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ids    []NodeID // sorted nodelist
	index  map[NodeID]int
	self   int // index of Self
	digest uint64
	period time.Duration
	links  uint8         // own configured links
	lease  time.Duration // how long a peer's echo of our stamp holds (0: no lease)
	epoch  time.Time     // our heartbeat stamps count from here

	now      time.Time
	lastTick time.Time
	started  bool

	peers []*peer // by index; peers[self] is a placeholder

	maxSeq  uint64
	persist bool

	state     State
	ring      RingID   // the view whose messages are being delivered (or was last)
	members   []Member // members of ring
	committed RingID   // latest ring committed (reported in heartbeats)
	installed bool     // ring finished its sync step
	lastInst  []NodeID // members of the last installed view (for Joined/Left)

	cur  *order // ordering state of ring
	next *order // ordering state of the committed ring while recovering
	prev *order // the previous ring, kept to answer fetches

	coord *coordinator
	prep  *preparation
	recov *recovery

	// viewDirty asks for a re-evaluation of the view.
	viewDirty   bool
	chosenSig   uint64
	chosenSince time.Time
	waitFor     NodeID
	waitSince   time.Time
	nextAttempt uint64
	lastCommit  preparation // the attempt whose commit we applied last
	rejected    rejectedPrepare
	hbSeq       uint64
	deaf        nodeSet   // nodes not heard mutually, self excluded
	deafSent    nodeSet   // deaf as last sent in heartbeats
	reachDirty  bool      // reachability may have changed since deafSent
	dueList     []int     // peers with a heartbeat due
	nextScan    time.Time // earliest deadline tickDetector must look at
	joinAt      time.Time // a deferred join is due for a look

	queue      []*outMsg // local messages not yet handed to a ring
	queueBytes int
	nextMid    uint64
	lastMid    map[Member]uint64 // last app message id delivered per sender incarnation

	out Ready

	stats Stats
}

// Stats are cumulative counters.
type Stats struct {
	ViewChanges     uint64
	Delivered       uint64
	DeliveredBytes  uint64
	Broadcast       uint64
	Dropped         uint64 // messages dropped as stale, misrouted or malformed
	Retransmissions uint64
}

// New builds an engine. It does nothing until the first Tick.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("membership config: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:     cfg,
		log:     lg.With("node", cfg.Self),
		ids:     sortedIDs(cfg.Nodes),
		index:   map[NodeID]int{},
		maxSeq:  cfg.MaxSeq,
		lastMid: map[Member]uint64{},
	}
	h := fnv.New64a()
	for i, id := range e.ids {
		e.index[id] = i
		fmt.Fprintf(h, "%d,", id)
	}
	e.digest = h.Sum64()
	e.self = e.index[cfg.Self]
	e.period = cfg.period(len(e.ids))
	e.lease = leaseFor(cfg.Token, e.period, cfg.ClockDrift)
	e.deaf = newNodeSet(len(e.ids))
	linksOf := map[NodeID]uint8{}
	for _, n := range cfg.Nodes {
		linksOf[n.ID] = n.Links
	}
	e.links = linksOf[cfg.Self]
	e.peers = make([]*peer, len(e.ids))
	for i, id := range e.ids {
		links := linksOf[id] & e.links
		n := bits.Len8(links)
		e.peers[i] = &peer{id: id, idx: i, links: links, linkHeard: make([]time.Time, n), linkUp: make([]bool, n)}
		if i != e.self {
			e.deaf.set(i) // nobody is heard yet
		}
	}
	return e, nil
}

// Self returns the local node id.
func (e *Engine) Self() NodeID { return e.cfg.Self }

// State returns the node's state.
func (e *Engine) State() State { return e.state }

// Ring returns the current view's ring id and members (nil before the first
// view).
func (e *Engine) Ring() (RingID, []NodeID) {
	return e.ring, memberIDs(e.members)
}

// Installed reports whether the current view finished its sync step.
func (e *Engine) Installed() bool { return e.installed }

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// Ready returns the accumulated output and clears it. See Ready for the
// order in which the driver must act on it.
func (e *Engine) Ready() Ready {
	e.flush()
	r := e.out
	e.out = Ready{}
	return r
}

// Tick tells the engine time has passed. The driver calls it regularly
// (every few milliseconds; at most Heartbeat/4 apart).
func (e *Engine) Tick(now time.Time) {
	if e.state == StateLeft {
		return
	}
	if !e.started {
		e.start(now)
	}
	e.advance(now)
	e.tickDetector()
	e.tickView()
	e.tickOrder()
}

func (e *Engine) start(now time.Time) {
	e.started = true
	e.now = now
	e.epoch = now
	e.lastTick = now
	e.chosenSince = now
	e.viewDirty = true
	e.log.Info("membership engine starting", "incarnation", e.cfg.Incarnation,
		"nodes", len(e.ids), "token", e.cfg.Token, "heartbeat", e.period)
}

// advance moves the clock. A gap much longer than the tick interval means
// this process was not scheduled (paused, starved, suspended): the silence
// of peers during that gap is our own fault, so their deadlines move with it.
func (e *Engine) advance(now time.Time) {
	if now.Before(e.now) {
		return // the driver's clock is monotonic; ignore reordering of calls
	}
	e.now = now
	if !e.started {
		return
	}
	gap := now.Sub(e.lastTick)
	if gap > e.cfg.Token/2 {
		e.log.Warn("this node was not scheduled; not blaming peers for it",
			"ring", e.ring.String(), "paused", gap.Round(time.Millisecond))
		grace := now.Add(-e.cfg.Token + 2*e.period)
		for _, p := range e.peers {
			if p.idx == e.self || p.lastHeard.IsZero() {
				continue
			}
			if p.lastHeard.Before(grace) && !p.gone() {
				p.lastHeard = grace
				e.wake(grace.Add(e.cfg.Token + 1))
				e.refresh(p)
				for l := range p.linkHeard {
					if !p.linkHeard[l].IsZero() && p.linkHeard[l].Before(grace) {
						p.linkHeard[l] = grace
					}
				}
			}
		}
		e.viewDirty = true
	}
	e.lastTick = now
}

// Step hands the engine a message received on link.
func (e *Engine) Step(now time.Time, link int, m *peerpb.Message) {
	if e.state == StateLeft || m == nil {
		return
	}
	if !e.started {
		e.start(now)
	}
	if now.After(e.now) {
		e.now = now
	}
	p := e.peer(NodeID(m.From))
	if p == nil || p.idx == e.self || (m.To != 0 && NodeID(m.To) != e.cfg.Self) || link < 0 || link > 7 {
		e.stats.Dropped++
		return
	}
	if (m.Incarnation <= p.deadInc && !e.revive(p, m.Incarnation)) || m.Incarnation < p.inc {
		e.stats.Dropped++
		return
	}
	if m.Incarnation > p.inc {
		e.restartPeer(p, m.Incarnation)
		e.viewDirty = true
	}
	e.heard(p, link)
	switch b := m.Body.(type) {
	case *peerpb.Message_Heartbeat:
		e.onHeartbeat(p, b.Heartbeat)
	case *peerpb.Message_Leave:
		e.onGone(p, m.Incarnation, true)
	case *peerpb.Message_Prepare:
		e.onPrepare(p, m.Incarnation, b.Prepare)
	case *peerpb.Message_Flush:
		e.onFlush(p, b.Flush)
	case *peerpb.Message_Reject:
		e.onReject(p, b.Reject)
	case *peerpb.Message_Commit:
		e.onCommit(p, m.Incarnation, b.Commit)
	case *peerpb.Message_CommitAck:
		e.onCommitAck(p, b.CommitAck)
	case *peerpb.Message_Submit:
		e.onSubmit(p, b.Submit)
	case *peerpb.Message_Order:
		e.onOrder(p, b.Order)
	case *peerpb.Message_Ack:
		e.onAck(p, b.Ack)
	case *peerpb.Message_Fetch:
		e.onFetch(p, b.Fetch)
	case *peerpb.Message_Retrans:
		e.onRetrans(p, b.Retrans)
	default:
		e.stats.Dropped++
	}
	// View-protocol messages and departures are acted on at once; mere
	// reachability news from heartbeats waits for the next Tick, so a
	// burst of heartbeats costs one evaluation, not one each.
	switch m.Body.(type) {
	case *peerpb.Message_Heartbeat, *peerpb.Message_Submit, *peerpb.Message_Order, *peerpb.Message_Ack:
	default:
		if e.viewDirty {
			e.evaluate()
		}
	}
}

// PeerClosed tells the engine the transport saw the agent process of node
// (incarnation inc) go away: its kernel closed our connection. This is much
// faster than the token timeout and just as certain for that incarnation.
func (e *Engine) PeerClosed(now time.Time, node NodeID, inc uint64) {
	if e.state == StateLeft {
		return
	}
	if now.After(e.now) {
		e.now = now
	}
	p := e.peer(node)
	if p == nil || p.idx == e.self || inc < p.inc || inc == 0 {
		return
	}
	e.onGone(p, inc, false)
	if e.viewDirty && e.started {
		e.evaluate()
	}
}

// Leave announces a graceful shutdown: peers drop this node from their view
// at once instead of waiting for the token timeout. The engine stops; the
// driver sends the returned messages and exits.
func (e *Engine) Leave(now time.Time) {
	if e.state == StateLeft {
		return
	}
	e.now = now
	for _, p := range e.peers {
		if p.idx == e.self {
			continue
		}
		for l := range 8 {
			if p.links&(1<<l) != 0 {
				for range 2 { // twice: a lost datagram should not cost a token timeout
					e.out.Messages = append(e.out.Messages, Outgoing{To: p.id, Link: l, Msg: e.stamp(p.id, &peerpb.Message{Body: &peerpb.Message_Leave{Leave: &peerpb.Leave{}}})})
				}
			}
		}
	}
	e.log.Info("leaving the cluster", "ring", e.ring.String())
	e.state = StateLeft
	e.installed = false
}

// Broadcast queues payload for delivery to every member in total order.
// With sync set, the message belongs to the sync step of the current view
// (between EventNodelist and SyncDone) and is dropped if that view changes
// before it is delivered; otherwise it is sent once a view is installed and
// survives view changes until it is delivered here.
func (e *Engine) Broadcast(payload []byte, sync bool) error {
	switch {
	case e.state == StateLeft:
		return ErrLeft
	case sync:
		if e.state != StateSync || e.cur == nil || e.cur.syncDone {
			return ErrNotSyncing
		}
		e.cur.submitLocal(e, &outMsg{payload: payload, kind: peerpb.Entry_SYNC})
		return nil
	case len(payload) > e.cfg.SendQueue:
		return ErrTooLarge
	case e.queueBytes+len(payload) > e.cfg.SendQueue:
		return ErrQueueFull
	}
	e.stats.Broadcast++
	e.nextMid++
	e.queue = append(e.queue, &outMsg{mid: e.nextMid, payload: payload, kind: peerpb.Entry_APP})
	e.queueBytes += len(payload)
	return nil
}

// QueuedBytes returns the bytes of local messages not yet delivered locally.
func (e *Engine) QueuedBytes() int { return e.queueBytes }

// SyncDone tells the engine the services finished their sync step for ring.
// The view is installed once every member said so.
func (e *Engine) SyncDone(ring RingID) {
	if e.state != StateSync || e.ring != ring || e.cur == nil || e.cur.syncDone {
		return
	}
	e.cur.syncDone = true
	e.cur.submitLocal(e, &outMsg{kind: peerpb.Entry_BARRIER})
}

func (e *Engine) peer(id NodeID) *peer {
	i, ok := e.index[id]
	if !ok {
		return nil
	}
	return e.peers[i]
}

// stamp fills in the header of an outgoing message.
func (e *Engine) stamp(to NodeID, m *peerpb.Message) *peerpb.Message {
	m.From, m.Incarnation, m.To = uint32(e.cfg.Self), e.cfg.Incarnation, uint32(to)
	return m
}

// send queues a message to node on its best link.
func (e *Engine) send(to NodeID, m *peerpb.Message) {
	p := e.peer(to)
	if p == nil || p.idx == e.self {
		return
	}
	e.out.Messages = append(e.out.Messages, Outgoing{To: to, Link: p.bestLink(), Msg: e.stamp(to, m)})
}

func (e *Engine) emit(ev Event) { e.out.Events = append(e.out.Events, ev) }

func memberIDs(ms []Member) []NodeID {
	if ms == nil {
		return nil
	}
	ids := make([]NodeID, len(ms))
	for i, m := range ms {
		ids[i] = m.Node
	}
	return ids
}

func (e *Engine) isMember(id NodeID) (Member, bool) {
	i, ok := slices.BinarySearchFunc(e.members, id, func(m Member, id NodeID) int { return cmpNode(m.Node, id) })
	if !ok {
		return Member{}, false
	}
	return e.members[i], true
}

func cmpNode(a, b NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hasMember reports whether the sorted member list ms holds m.
func hasMember(ms []Member, m Member) bool {
	i, ok := slices.BinarySearchFunc(ms, m.Node, func(x Member, id NodeID) int { return cmpNode(x.Node, id) })
	return ok && ms[i].Incarnation == m.Incarnation
}

// Status is a snapshot for status displays.
type Status struct {
	Self        NodeID
	Incarnation uint64
	State       State
	Ring        RingID
	Members     []NodeID
	Installed   bool
	Peers       []PeerStatus
	QueuedBytes int
	Stats       Stats
}

// PeerStatus describes one peer as this node sees it.
type PeerStatus struct {
	Node        NodeID
	Incarnation uint64
	Reachable   bool   // heard within the token
	Mutual      bool   // and it hears us
	Ring        RingID // the latest ring it reported
	Links       []LinkStatus
	HeldUntil   time.Time
}

// LinkStatus is the state of one configured link to a peer.
type LinkStatus struct {
	Link int
	Up   bool
}

// Status returns a snapshot.
func (e *Engine) Status() Status {
	s := Status{
		Self: e.cfg.Self, Incarnation: e.cfg.Incarnation, State: e.state, Ring: e.ring,
		Members: memberIDs(e.members), Installed: e.installed, QueuedBytes: e.queueBytes, Stats: e.stats,
	}
	for _, p := range e.peers {
		if p.idx == e.self {
			continue
		}
		ps := PeerStatus{Node: p.id, Incarnation: p.inc, Reachable: e.hears(p), Mutual: e.mutual(p), Ring: p.ring}
		if p.heldUntil.After(e.now) {
			ps.HeldUntil = p.heldUntil
		}
		for l := range 8 {
			if p.links&(1<<l) != 0 {
				ps.Links = append(ps.Links, LinkStatus{Link: l, Up: p.linkUp[l]})
			}
		}
		s.Peers = append(s.Peers, ps)
	}
	return s
}

// NextTick says when the engine next needs a Tick if no message arrives
// meanwhile, so a driver can sleep until then instead of ticking at a fixed
// rate (an idle agent then wakes for its heartbeats, not hundreds of times a
// second). Ticking earlier is always safe. While anything is in progress (a
// view change, unacknowledged entries, a deferred join) the answer is a
// quarter of the retransmission timeout; it is never later than a quarter
// of the token, so a gap between ticks still means the process was not
// scheduled.
func (e *Engine) NextTick() time.Time {
	if !e.started {
		return e.now
	}
	next := e.now.Add(e.cfg.Token / 4)
	if !e.nextScan.IsZero() && e.nextScan.Before(next) {
		next = e.nextScan
	}
	if e.busy() {
		if soon := e.now.Add(max(e.cfg.Retransmit/4, time.Millisecond)); soon.Before(next) {
			next = soon
		}
	}
	return next
}

// busy: some timer other than the detector's may be running.
func (e *Engine) busy() bool {
	if e.coord != nil || e.prep != nil || e.recov != nil || e.waitFor != 0 || !e.joinAt.IsZero() ||
		e.viewDirty || len(e.dueList) > 0 || e.state == StateGather || e.state == StatePrepared || e.state == StateRecover {
		return true
	}
	if o := e.cur; o != nil && !o.frozen {
		if len(o.inflight) > 0 || len(o.outbox) > 0 || o.ackDirty || o.stableDirty {
			return true
		}
		if o.isRep && o.nextSeq-1 > o.stable {
			return true // a member may need a resend
		}
		if e.state == StateSync {
			return true // barriers in flight
		}
	}
	return len(e.queue) > 0
}
