// Package sim runs many membership engines in one goroutine on virtual time
// with a seeded random source. It delivers, drops, delays, duplicates and
// reorders their messages, partitions and heals the network, cuts links one
// way, crashes, pauses and restarts nodes (keeping what they persisted), and
// checks the protocol's invariants after every step. A failing seed is a
// reproducible bug.
package sim

import (
	"container/heap"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/conclave/conclave/api/peerpb"
	"github.com/conclave/conclave/internal/membership"
	"github.com/conclave/conclave/internal/service"
)

// NodeID is a node number.
type NodeID = membership.NodeID

// Options configure a simulation.
type Options struct {
	Seed  uint64
	Nodes int // node ids 1..Nodes
	Links int // links per node, default 1

	// Engine timing; zero takes the engine's defaults.
	Token, Heartbeat, Consensus, Join time.Duration
	FlapCount                         int
	FlapHolddown                      time.Duration

	// Tick is how often each engine's Tick runs (default 5ms).
	Tick time.Duration
	// Latency and Jitter: a message takes Latency plus a uniform random
	// share of Jitter (which also reorders messages).
	Latency, Jitter time.Duration
	// Loss and Dup are per-message probabilities.
	Loss, Dup float64

	// SyncMessages makes every node broadcast one sync message per view, to
	// exercise the sync step.
	SyncMessages bool

	// Adaptive, if set, says which nodes are ticked when their engine asks
	// (Engine.NextTick), as the agent does, rather than every Tick. A
	// deadline NextTick forgets then shows up as a liveness failure.
	Adaptive func(NodeID) bool

	// Breaks applies testing knobs to every engine.
	Breaks membership.TestingKnobs

	// Services, if set, builds the replicated services a node runs on its
	// engine (n.Eng is set), each time it starts. They are hosted as the
	// agent hosts them, from payload byte ServiceByte.
	Services func(n *Node) []service.Service
	// Invariant, if set, is checked after every step; an error fails the
	// run (the hosted services' own invariants).
	Invariant func(s *Sim) error

	// Logger receives the engines' logs (nil: discarded).
	Logger *slog.Logger
}

// ServiceByte leads the payloads of the first hosted service; app messages
// of Send are text and never start with it.
const ServiceByte = 2

// Epoch is virtual time zero.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Node is one simulated agent.
type Node struct {
	ID          NodeID
	Up          bool
	Paused      bool
	Eng         *membership.Engine
	Host        *service.Host // nil without Options.Services
	Incarnation uint64
	Persisted   uint64 // ring seq on "disk"
	inbox       []item // arrived while paused
	adaptive    bool
	tickGen     uint64    // only the latest scheduled tick is live
	tickAt      time.Time // when it is due
	sent        []string  // app messages broadcast by the current incarnation
	delivered   map[string]bool
}

// Sim is a simulated cluster.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	now   time.Time
	queue itemHeap
	seq   uint64
	nodes []*Node

	group   []int           // partition label per node index
	blocked map[[2]int]bool // directed: packets from a to b dropped
	linkOff map[[2]int]bool // node index, link: down
	loss    float64
	dup     float64
	latency time.Duration
	jitter  time.Duration

	Check   *Checker
	observe func(*Node, membership.Event)
	msgSeq  int
	Trace   io.Writer // if set, events are printed as they happen
	nSteps  uint64
}

type itemKind int

const (
	itemTick itemKind = iota
	itemMsg
	itemClosed
)

type item struct {
	at   time.Time
	seq  uint64
	kind itemKind
	to   int // node index
	link int
	msg  *peerpb.Message
	inc  uint64 // itemClosed: incarnation of the closed peer; itemTick: incarnation the tick belongs to
	gen  uint64 // itemTick: the node's tick generation
	from NodeID
}

type itemHeap []item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// New builds a simulation with every node down.
func New(o Options) *Sim {
	if o.Links == 0 {
		o.Links = 1
	}
	if o.Tick == 0 {
		o.Tick = 5 * time.Millisecond
	}
	if o.Latency == 0 {
		o.Latency = 200 * time.Microsecond
	}
	s := &Sim{
		opts:    o,
		rng:     rand.New(rand.NewPCG(o.Seed, 0x636f6e636c617665)),
		now:     Epoch,
		group:   make([]int, o.Nodes),
		blocked: map[[2]int]bool{},
		linkOff: map[[2]int]bool{},
		loss:    o.Loss,
		dup:     o.Dup,
		latency: o.Latency,
		jitter:  o.Jitter,
	}
	s.Check = newChecker(s)
	for i := range o.Nodes {
		s.nodes = append(s.nodes, &Node{ID: NodeID(i + 1)})
	}
	return s
}

// Now returns the virtual time.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed returns the virtual time since Epoch.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(Epoch) }

// Node returns node id.
func (s *Sim) Node(id NodeID) *Node { return s.nodes[id-1] }

// Nodes returns all nodes.
func (s *Sim) Nodes() []*Node { return s.nodes }

func (s *Sim) push(it item) {
	s.seq++
	it.seq = s.seq
	heap.Push(&s.queue, it)
}

func (s *Sim) engineConfig(n *Node) membership.Config {
	var nodes []membership.NodeConfig
	links := uint8(1<<s.opts.Links - 1)
	for _, m := range s.nodes {
		nodes = append(nodes, membership.NodeConfig{ID: m.ID, Links: links})
	}
	lg := s.opts.Logger
	if lg != nil {
		lg = lg.With("inc", n.Incarnation)
	}
	return membership.Config{
		Self: n.ID, Incarnation: n.Incarnation, Nodes: nodes,
		Token: s.opts.Token, Heartbeat: s.opts.Heartbeat, Consensus: s.opts.Consensus, Join: s.opts.Join,
		FlapCount: s.opts.FlapCount, FlapHolddown: s.opts.FlapHolddown,
		MaxSeq: n.Persisted, Logger: lg, Testing: s.opts.Breaks,
	}
}

// Up starts node id (a new incarnation, with what it persisted).
func (s *Sim) Up(id NodeID) error {
	n := s.Node(id)
	if n.Up {
		return fmt.Errorf("node %d is already up", id)
	}
	n.Incarnation++
	eng, err := membership.New(s.engineConfig(n))
	if err != nil {
		return err
	}
	n.Eng, n.Up, n.Paused, n.inbox = eng, true, false, nil
	n.Host = nil
	if s.opts.Services != nil {
		n.Host = service.NewHost(eng, ServiceByte, s.opts.Logger, s.opts.Services(n)...)
	}
	n.sent, n.delivered = nil, map[string]bool{}
	n.adaptive = s.opts.Adaptive != nil && s.opts.Adaptive(id)
	s.Check.nodeStarted(n)
	// A random phase, so nodes do not tick in lockstep.
	s.scheduleTick(n, s.now.Add(time.Duration(s.rng.Int64N(int64(s.opts.Tick)))))
	return nil
}

// scheduleTick makes at the node's next (and only live) tick.
func (s *Sim) scheduleTick(n *Node, at time.Time) {
	n.tickGen++
	n.tickAt = at
	s.push(item{at: at, kind: itemTick, to: int(n.ID - 1), inc: n.Incarnation, gen: n.tickGen})
}

// retick moves an adaptive node's next tick earlier when its engine now
// needs one sooner.
func (s *Sim) retick(n *Node) {
	if !n.adaptive || !n.Up || n.Paused {
		return
	}
	if at := n.nextTick(); at.Before(n.tickAt) {
		s.scheduleTick(n, later(at, s.now))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Poke runs node id's driver loop once, as the agent does after a local
// request: what its services queued goes out.
func (s *Sim) Poke(id NodeID) {
	n := s.Node(id)
	if !n.Up || n.Paused {
		return
	}
	s.drain(n)
	s.retick(n)
}

// nextTick is when the node's engine or services want a tick.
func (n *Node) nextTick() time.Time {
	t := n.Eng.NextTick()
	if n.Host != nil {
		if h := n.Host.NextTick(); !h.IsZero() && h.Before(t) {
			t = h
		}
	}
	return t
}

// Down kills node id's agent. Its host stays up, so peers whose network
// reaches it learn at once that its port closed (as the transport's TCP
// tripwire tells them).
func (s *Sim) Down(id NodeID) { s.kill(id, true) }

// Halt makes node id vanish silently (power off, cable cut).
func (s *Sim) Halt(id NodeID) { s.kill(id, false) }

func (s *Sim) kill(id NodeID, tell bool) {
	n := s.Node(id)
	if !n.Up {
		return
	}
	n.Up, n.Paused, n.Eng, n.Host, n.inbox = false, false, nil, nil, nil
	s.Check.nodeStopped(n)
	if !tell {
		return
	}
	for _, m := range s.nodes {
		if m.ID != id && s.reaches(int(id-1), int(m.ID-1), 0) {
			// Peers learn it at slightly different times, as real ones do.
			d := s.latency + time.Duration(s.rng.Int64N(int64(3*time.Millisecond)))
			s.push(item{at: s.now.Add(d), kind: itemClosed, to: int(m.ID - 1), from: id, inc: n.Incarnation})
		}
	}
}

// Stop leaves gracefully.
func (s *Sim) Stop(id NodeID) {
	n := s.Node(id)
	if !n.Up {
		return
	}
	if n.Host != nil && n.Host.Leave(s.now) {
		// Let the services' goodbyes be delivered first, as the agent does.
		s.drain(n)
		token := s.opts.Token
		if token == 0 {
			token = membership.DefaultToken
		}
		s.RunUntil(token, func() bool { return !n.Up || (!n.Host.Pending() && n.Eng.QueuedBytes() == 0) })
		if !n.Up {
			return
		}
	}
	n.Eng.Leave(s.now)
	s.drain(n)
	s.kill(id, true)
}

// Pause stops scheduling node id: it neither ticks nor reads its socket.
func (s *Sim) Pause(id NodeID) { s.Node(id).Paused = true }

// Resume schedules a paused node again; what queued up meanwhile arrives.
func (s *Sim) Resume(id NodeID) {
	n := s.Node(id)
	if !n.Up || !n.Paused {
		return
	}
	n.Paused = false
	inbox := n.inbox
	n.inbox = nil
	for _, it := range inbox {
		it.at = s.now
		s.push(it)
	}
}

// Split partitions the network into the given groups; nodes not named form
// one more group.
func (s *Sim) Split(groups ...[]NodeID) {
	for i := range s.group {
		s.group[i] = -1
	}
	for g, ids := range groups {
		for _, id := range ids {
			s.group[id-1] = g
		}
	}
	for i := range s.group {
		if s.group[i] == -1 {
			s.group[i] = len(groups)
		}
	}
}

// Join merges the partitions holding a and b.
func (s *Sim) Join(a, b NodeID) {
	ga, gb := s.group[a-1], s.group[b-1]
	for i := range s.group {
		if s.group[i] == gb {
			s.group[i] = ga
		}
	}
}

// Heal removes every partition, one-way block and downed link.
func (s *Sim) Heal() {
	for i := range s.group {
		s.group[i] = 0
	}
	s.blocked = map[[2]int]bool{}
	s.linkOff = map[[2]int]bool{}
}

// Block drops every packet from a to b (one way).
func (s *Sim) Block(a, b NodeID) { s.blocked[[2]int{int(a - 1), int(b - 1)}] = true }

// Unblock undoes Block.
func (s *Sim) Unblock(a, b NodeID) { delete(s.blocked, [2]int{int(a - 1), int(b - 1)}) }

// LinkDown takes link l of node id down (both directions).
func (s *Sim) LinkDown(id NodeID, l int) { s.linkOff[[2]int{int(id - 1), l}] = true }

// LinkUp undoes LinkDown.
func (s *Sim) LinkUp(id NodeID, l int) { delete(s.linkOff, [2]int{int(id - 1), l}) }

// SetNet changes loss, duplication, latency and jitter.
func (s *Sim) SetNet(loss, dup float64, latency, jitter time.Duration) {
	s.loss, s.dup, s.latency, s.jitter = loss, dup, latency, jitter
}

// Quiet restores a perfect network (keeps partitions).
func (s *Sim) Quiet() { s.SetNet(0, 0, s.opts.Latency, 0) }

func (s *Sim) reaches(a, b, link int) bool {
	return s.group[a] == s.group[b] && !s.blocked[[2]int{a, b}] && !s.linkOff[[2]int{a, link}] && !s.linkOff[[2]int{b, link}]
}

// Send broadcasts payload from node id. It returns the message key.
func (s *Sim) Send(id NodeID, payload string) (string, error) {
	n := s.Node(id)
	if !n.Up {
		return "", fmt.Errorf("node %d is down", id)
	}
	if err := n.Eng.Broadcast([]byte(payload), false); err != nil {
		return "", err
	}
	n.sent = append(n.sent, payload)
	s.drain(n)
	s.retick(n)
	return payload, nil
}

// SendAuto broadcasts a unique message from id.
func (s *Sim) SendAuto(id NodeID) error {
	s.msgSeq++
	_, err := s.Send(id, fmt.Sprintf("m%d.%d", id, s.msgSeq))
	return err
}

// drain runs the driver loop for n: act on Ready until it is empty.
func (s *Sim) drain(n *Node) {
	for range 100 {
		if !n.Up {
			return
		}
		r := n.Eng.Ready()
		if r.Empty() && n.Host != nil {
			// The services act on the round's input, as the agent has them.
			n.Host.Pump(s.now)
			r = n.Eng.Ready()
		}
		if r.Empty() {
			return
		}
		if r.PersistSeq != 0 {
			if r.PersistSeq < n.Persisted {
				s.Check.fail("node %d persisted ring seq %d below %d", n.ID, r.PersistSeq, n.Persisted)
			}
			n.Persisted = r.PersistSeq
		}
		for _, m := range r.Messages {
			s.transmit(n, m)
		}
		for _, ev := range r.Events {
			s.Check.event(n, ev)
			if s.observe != nil {
				s.observe(n, ev)
			}
			if s.Trace != nil && ev.Kind != membership.EventDeliver {
				fmt.Fprintf(s.Trace, "%8v node %d %s ring %s members %v\n", s.Elapsed(), n.ID, ev.Kind, ev.Ring, ev.Members)
			}
			switch ev.Kind {
			case membership.EventNodelist:
				if s.opts.SyncMessages {
					err := n.Eng.Broadcast(fmt.Appendf(nil, "sync.%d.%s", n.ID, ev.Ring), true)
					r, _ := n.Eng.Ring()
					if err != nil && r == ev.Ring && n.Eng.State() == membership.StateSync {
						// (the engine may already have left that view within
						// the same step; then refusing is right)
						s.Check.fail("node %d: sync broadcast: %v", n.ID, err)
					}
				}
				if n.Host != nil {
					n.Host.Event(s.now, ev) // the host ends the sync step
				} else {
					n.Eng.SyncDone(ev.Ring)
				}
			case membership.EventInstalled:
				if n.Host != nil {
					n.Host.Event(s.now, ev)
				}
			case membership.EventDeliver:
				if n.Host != nil && n.Host.Event(s.now, ev) {
					continue
				}
				if !ev.Sync && !ev.Repeat {
					n.delivered[string(ev.Payload)] = true
				}
			}
		}
	}
	s.Check.fail("node %d: Ready did not settle", n.ID)
}

func (s *Sim) transmit(from *Node, m membership.Outgoing) {
	a, b := int(from.ID-1), int(m.To-1)
	if b < 0 || b >= len(s.nodes) || !s.reaches(a, b, m.Link) {
		return
	}
	if s.loss > 0 && s.rng.Float64() < s.loss {
		return
	}
	copies := 1
	if s.dup > 0 && s.rng.Float64() < s.dup {
		copies = 2
	}
	for range copies {
		d := s.latency
		if s.jitter > 0 {
			d += time.Duration(s.rng.Int64N(int64(s.jitter)))
		}
		s.push(item{at: s.now.Add(d), kind: itemMsg, to: b, link: m.Link, msg: m.Msg})
	}
}

// step runs the next event. It returns false when there is none.
func (s *Sim) step() bool {
	if s.queue.Len() == 0 {
		return false
	}
	it := heap.Pop(&s.queue).(item)
	if it.at.After(s.now) {
		s.now = it.at
	}
	n := s.nodes[it.to]
	switch it.kind {
	case itemTick:
		if !n.Up || it.inc != n.Incarnation || it.gen != n.tickGen {
			return true // a stale tick, or one of a gone incarnation
		}
		next := s.now.Add(s.opts.Tick)
		if !n.Paused {
			n.Eng.Tick(s.now)
			s.drain(n)
			if n.adaptive {
				next = later(n.nextTick(), s.now.Add(time.Microsecond))
			}
		}
		s.scheduleTick(n, next)
	case itemMsg, itemClosed:
		if !n.Up {
			return true
		}
		if n.Paused {
			n.inbox = append(n.inbox, it) // like a socket buffer
			return true
		}
		if it.kind == itemMsg {
			n.Eng.Step(s.now, it.link, it.msg)
		} else {
			n.Eng.PeerClosed(s.now, it.from, it.inc)
		}
		s.drain(n)
		s.retick(n)
	}
	s.nSteps++
	if s.opts.Invariant != nil {
		if err := s.opts.Invariant(s); err != nil {
			s.Check.fail("%v", err)
		}
	}
	return true
}

// RunFor advances virtual time by d.
func (s *Sim) RunFor(d time.Duration) error {
	end := s.now.Add(d)
	for s.queue.Len() > 0 && !s.queue[0].at.After(end) {
		s.step()
		if err := s.Check.Err(); err != nil {
			return err
		}
	}
	s.now = end
	return s.Check.Err()
}

// RunUntil advances time until cond holds (checked every Tick) or limit
// passes. It returns whether cond held.
func (s *Sim) RunUntil(limit time.Duration, cond func() bool) (bool, error) {
	end := s.now.Add(limit)
	for {
		if cond() {
			return true, s.Check.Err()
		}
		if !s.now.Before(end) {
			return false, s.Check.Err()
		}
		if err := s.RunFor(min(s.opts.Tick, end.Sub(s.now))); err != nil {
			return false, err
		}
	}
}

// Converged reports whether every up node is operational in one view whose
// members are exactly the up nodes.
func (s *Sim) Converged() bool {
	var ring membership.RingID
	var up []NodeID
	for _, n := range s.nodes {
		if !n.Up {
			continue
		}
		up = append(up, n.ID)
		if n.Paused || n.Eng.State() != membership.StateOperational {
			return false
		}
		r, _ := n.Eng.Ring()
		if ring.IsZero() {
			ring = r
		} else if r != ring {
			return false
		}
	}
	for _, n := range s.nodes {
		if n.Up {
			_, members := n.Eng.Ring()
			return slices.Equal(members, up)
		}
	}
	return true
}

// PartitionsConverged reports whether every up node is operational in the
// view made of exactly the up nodes of its partition (no blocks, no downed
// links assumed).
func (s *Sim) PartitionsConverged() bool {
	for _, n := range s.nodes {
		if !n.Up {
			continue
		}
		if n.Paused || n.Eng.State() != membership.StateOperational {
			return false
		}
		_, members := n.Eng.Ring()
		var want []NodeID
		for _, m := range s.nodes {
			if m.Up && !m.Paused && s.group[m.ID-1] == s.group[n.ID-1] {
				want = append(want, m.ID)
			}
		}
		if !slices.Equal(members, want) {
			return false
		}
	}
	return true
}

// Undelivered lists, per up node, its own messages it has not delivered.
func (s *Sim) Undelivered() map[NodeID][]string {
	out := map[NodeID][]string{}
	for _, n := range s.nodes {
		if !n.Up {
			continue
		}
		for _, m := range n.sent {
			if !n.delivered[m] {
				out[n.ID] = append(out[n.ID], m)
			}
		}
	}
	return out
}

// Steps returns how many events ran.
func (s *Sim) Steps() uint64 { return s.nSteps }

// Describe prints each node's state, for failure messages.
func (s *Sim) Describe() string {
	var b []byte
	for _, n := range s.nodes {
		switch {
		case !n.Up:
			b = fmt.Appendf(b, "[%d down] ", n.ID)
		default:
			r, m := n.Eng.Ring()
			b = fmt.Appendf(b, "[%d %s ring %s %v paused=%v] ", n.ID, n.Eng.State(), r, m, n.Paused)
		}
	}
	return string(b)
}

// LogTo sends the engines' logs to w, stamped with virtual time, for nodes
// started after the call.
func (s *Sim) LogTo(w io.Writer, level slog.Level) {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Duration("t", s.Elapsed())
		}
		return a
	}})
	s.opts.Logger = slog.New(h)
}
