package membership

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

func TestRingIDString(t *testing.T) {
	for _, tc := range []struct {
		r    RingID
		want string
	}{
		{RingID{1, 0x1c}, "1.1c"},
		{RingID{0xff, 4}, "ff.4"},
		{RingID{}, "0.0"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%#v: got %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestNodeSet(t *testing.T) {
	s := newNodeSet(130)
	for _, i := range []int{0, 63, 64, 129} {
		s.set(i)
	}
	for i := range 130 {
		want := i == 0 || i == 63 || i == 64 || i == 129
		if s.has(i) != want {
			t.Fatalf("has(%d) = %v", i, !want)
		}
	}
	if s.count() != 4 {
		t.Fatalf("count %d", s.count())
	}
	if got := nodeSetFrom(s.bytes(), 130); !got.equal(s) {
		t.Fatal("wire round trip")
	}
	o := newNodeSet(130)
	o.set(5)
	if s.intersects(o) {
		t.Fatal("intersects")
	}
	o.set(64)
	if !s.intersects(o) {
		t.Fatal("does not intersect")
	}
	s.clear(64)
	if s.has(64) {
		t.Fatal("clear")
	}
	// bits beyond the nodelist are ignored on decode
	if nodeSetFrom([]byte{0xff}, 3).count() != 3 {
		t.Fatal("decode should mask bits beyond n")
	}
}

func TestEntryLog(t *testing.T) {
	var l entryLog
	en := func(s uint64) *peerpb.Entry { return &peerpb.Entry{Seq: s} }
	for _, tc := range []struct {
		name string
		put  uint64
		ok   bool
	}{
		{"first", 1, true},
		{"gap", 3, true},
		{"duplicate", 3, false},
		{"fill", 2, true},
		{"zero", 0, false},
		{"absurdly far", maxLogSpan + 10, false},
	} {
		if got := l.put(en(tc.put)); got != tc.ok {
			t.Errorf("%s: put(%d) = %v", tc.name, tc.put, got)
		}
	}
	l.trim(2)
	if l.get(1) != nil || l.get(2) != nil || l.get(3) == nil {
		t.Fatal("trim(2) should drop 1 and 2 only")
	}
	if l.put(en(2)) {
		t.Fatal("an entry below the trimmed base must be refused")
	}
}

func tr(node uint32, ring RingID, delivered uint64, held ...[2]uint64) *peerpb.Transition {
	t := &peerpb.Transition{Node: node, OldRing: ringPB(ring), Delivered: delivered}
	for _, h := range held {
		t.Held = append(t.Held, &peerpb.Range{First: h[0], Last: h[1]})
	}
	return t
}

// TestCut: the cut of an old view is the longest prefix some survivor holds.
func TestCut(t *testing.T) {
	r := RingID{1, 8}
	for _, tc := range []struct {
		name  string
		group []*peerpb.Transition
		want  uint64
	}{
		{"all equal", []*peerpb.Transition{tr(1, r, 5), tr(2, r, 5)}, 5},
		{"one behind", []*peerpb.Transition{tr(1, r, 5), tr(2, r, 3)}, 5},
		{"held beyond delivered extends", []*peerpb.Transition{tr(1, r, 5, [2]uint64{6, 8}), tr(2, r, 3)}, 8},
		{"gap stops the cut", []*peerpb.Transition{tr(1, r, 5, [2]uint64{7, 8}), tr(2, r, 5)}, 5},
		{"another member fills the gap", []*peerpb.Transition{tr(1, r, 5, [2]uint64{7, 8}), tr(2, r, 4, [2]uint64{6, 6})}, 8},
		{"nothing delivered", []*peerpb.Transition{tr(1, r, 0), tr(2, r, 0)}, 0},
	} {
		if got := cutOf(tc.group); got != tc.want {
			t.Errorf("%s: cut %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestHolder(t *testing.T) {
	r := RingID{1, 8}
	g := []*peerpb.Transition{tr(1, r, 5), tr(2, r, 3, [2]uint64{6, 7}), tr(3, r, 9)}
	for _, tc := range []struct {
		seq  uint64
		self NodeID
		want NodeID
	}{
		{4, 2, 1},  // lowest that delivered it
		{6, 1, 2},  // held beyond delivered
		{8, 1, 3},  // only 3 has it
		{4, 1, 3},  // not ourselves
		{10, 1, 0}, // nobody
	} {
		if got := holder(g, tc.seq, tc.self); got != tc.want {
			t.Errorf("holder(%d) from %d = %d, want %d", tc.seq, tc.self, got, tc.want)
		}
	}
}

// chooseEngine builds node `self`'s engine with the given peers heard
// mutually, and the given deaf sets reported by them.
func chooseEngine(t *testing.T, self NodeID, n int, mutual []NodeID, deaf map[NodeID][]NodeID) *Engine {
	var nodes []NodeConfig
	for i := 1; i <= n; i++ {
		nodes = append(nodes, NodeConfig{ID: NodeID(i), Links: 1})
	}
	e, err := New(Config{Self: self, Incarnation: 1, Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(100, 0)
	e.Tick(now)
	for _, id := range mutual {
		p := e.peer(id)
		p.inc = 1
		p.lastHeard, p.heardYou = now, true
		p.deaf = newNodeSet(n)
		for _, d := range deaf[id] {
			p.deaf.set(e.index[d])
		}
		e.refresh(p)
	}
	return e
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		self   NodeID
		n      int
		mutual []NodeID
		deaf   map[NodeID][]NodeID
		setup  func(e *Engine)
		want   []NodeID
	}{
		{name: "everyone", self: 1, n: 3, mutual: []NodeID{2, 3}, want: []NodeID{1, 2, 3}},
		{name: "alone", self: 2, n: 3, want: []NodeID{2}},
		{name: "pair that cannot hear each other: lower kept", self: 1, n: 3, mutual: []NodeID{2, 3},
			deaf: map[NodeID][]NodeID{2: {3}}, want: []NodeID{1, 2}},
		{name: "deafness reported by either end counts", self: 1, n: 3, mutual: []NodeID{2, 3},
			deaf: map[NodeID][]NodeID{3: {2}}, want: []NodeID{1, 2}},
		{name: "a peer that does not hear us is left out", self: 2, n: 3, mutual: []NodeID{1, 3},
			deaf: map[NodeID][]NodeID{3: {2}}, want: []NodeID{1, 2}},
		{name: "held out for flapping", self: 1, n: 3, mutual: []NodeID{2, 3},
			setup: func(e *Engine) { e.peer(3).heldUntil = e.now.Add(time.Minute) }, want: []NodeID{1, 2}},
		{name: "unresponsive coordinator skipped", self: 3, n: 3, mutual: []NodeID{1, 2},
			setup: func(e *Engine) { e.peer(1).unresponsiveUntil = e.now.Add(time.Minute) }, want: []NodeID{2, 3}},
		{name: "no pulling members out of a lower-led view", self: 2, n: 3, mutual: []NodeID{3},
			setup: func(e *Engine) {
				e.peer(3).ring = RingID{1, 8}
				e.peer(1).inc, e.peer(1).lastHeard = 1, e.now // alive, but not mutual with us
			}, want: []NodeID{2}},
		{name: "even when we do not hear that leader (a one-way link)", self: 2, n: 3, mutual: []NodeID{3},
			setup: func(e *Engine) { e.peer(3).ring = RingID{1, 8} }, want: []NodeID{2}},
		{name: "unless that leader is known gone", self: 2, n: 3, mutual: []NodeID{3},
			setup: func(e *Engine) {
				e.peer(3).ring = RingID{1, 8}
				e.peer(1).inc, e.peer(1).deadInc = 1, 1
			}, want: []NodeID{2, 3}},
		{name: "but its leader itself is fine", self: 2, n: 3, mutual: []NodeID{1, 3},
			setup: func(e *Engine) { e.peer(3).ring, e.peer(1).ring = RingID{1, 8}, RingID{1, 8} }, want: []NodeID{1, 2, 3}},
		{name: "current members before newcomers", self: 1, n: 4, mutual: []NodeID{2, 3, 4},
			deaf:  map[NodeID][]NodeID{2: {4}},
			setup: func(e *Engine) { e.members = []Member{{1, 1}, {4, 1}} }, want: []NodeID{1, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := chooseEngine(t, tc.self, tc.n, tc.mutual, tc.deaf)
			if tc.setup != nil {
				tc.setup(e)
			}
			if got := e.choose(); !slices.Equal(got, tc.want) {
				t.Fatalf("chose %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	three := []NodeConfig{{ID: 1, Links: 1}, {ID: 2, Links: 1}, {ID: 3, Links: 1}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"self missing", Config{Self: 4, Nodes: three}, "not in the nodelist"},
		{"self zero", Config{Self: 0, Nodes: three}, "self node id is 0"},
		{"duplicate", Config{Self: 1, Nodes: append(three, NodeConfig{ID: 2, Links: 1})}, "appears twice"},
		{"no links", Config{Self: 1, Nodes: []NodeConfig{{ID: 1}}}, "no link"},
		{"token too short", Config{Self: 1, Nodes: three, Token: time.Second, Heartbeat: 500 * time.Millisecond}, "shorter than 3 heartbeat periods"},
		{"batch too small", Config{Self: 1, Nodes: three, MaxBatch: 100}, "max batch"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// deliveries collects app deliveries per node of a trio.
func (tr *trio) collect() [][]string {
	out := make([][]string, len(tr.engs))
	return out
}

func formedTrio(t *testing.T) (*trio, [][]string) {
	tr := newTrio(t)
	got := tr.collect()
	tr.onDeliver = func(i int, ev Event) {
		if !ev.Sync && !ev.Repeat {
			got[i] = append(got[i], fmt.Sprintf("%d:%s", ev.From, ev.Payload))
		}
	}
	tr.run(200 * time.Millisecond)
	for _, e := range tr.engs {
		if e.State() != StateOperational {
			t.Fatalf("node %d is %v after 200ms", e.Self(), e.State())
		}
	}
	return tr, got
}

func TestTotalOrder(t *testing.T) {
	tr, got := formedTrio(t)
	for i := range 30 {
		e := tr.engs[i%3]
		if err := e.Broadcast(fmt.Appendf(nil, "m%d", i), false); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			tr.drain()
		}
	}
	tr.run(50 * time.Millisecond)
	if len(got[0]) != 30 || !slices.Equal(got[0], got[1]) || !slices.Equal(got[0], got[2]) {
		t.Fatalf("deliveries differ or are missing:\n%v\n%v\n%v", got[0], got[1], got[2])
	}
}

func TestFragmentation(t *testing.T) {
	tr, got := formedTrio(t)
	big := bytes.Repeat([]byte("0123456789"), 20000) // 200 kB: ~150 fragments
	if err := tr.engs[1].Broadcast(big, false); err != nil {
		t.Fatal(err)
	}
	tr.engs[2].Broadcast([]byte("small"), false)
	tr.run(100 * time.Millisecond)
	for i := range 3 {
		if len(got[i]) != 2 {
			t.Fatalf("node %d delivered %d messages", i+1, len(got[i]))
		}
		for _, d := range got[i] {
			if strings.HasPrefix(d, "2:") && d != "2:"+string(big) {
				t.Fatalf("node %d: the large message was corrupted", i+1)
			}
		}
	}
}

func TestFlowControl(t *testing.T) {
	nodes := []NodeConfig{{ID: 1, Links: 1}, {ID: 2, Links: 1}}
	e, err := New(Config{Self: 1, Incarnation: 1, Nodes: nodes, SendQueue: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(time.Unix(1, 0))
	if err := e.Broadcast(make([]byte, 1001), false); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for i := range 10 {
		if err := e.Broadcast(make([]byte, 100), false); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := e.Broadcast(make([]byte, 1), false); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
	if err := e.Broadcast([]byte("x"), true); !errors.Is(err, ErrNotSyncing) {
		t.Fatalf("sync outside the sync step: %v", err)
	}
	e.Leave(time.Unix(2, 0))
	if err := e.Broadcast([]byte("x"), false); !errors.Is(err, ErrLeft) {
		t.Fatalf("after leave: %v", err)
	}
}

func TestLeaveIsImmediate(t *testing.T) {
	tr, _ := formedTrio(t)
	tr.engs[2].Leave(tr.now)
	left := tr.engs[2]
	tr.down[2] = true
	// Deliver node 3's Leave messages.
	for _, o := range left.Ready().Messages {
		if o.To != 3 {
			tr.engs[o.To-1].Step(tr.now, o.Link, o.Msg)
		}
	}
	tr.run(20 * time.Millisecond) // far below the 800ms token
	for _, e := range tr.engs[:2] {
		if _, m := e.Ring(); !slices.Equal(m, []NodeID{1, 2}) || e.State() != StateOperational {
			t.Fatalf("node %d: %v %v", e.Self(), e.State(), m)
		}
	}
}

// TestPauseAwareness: a node that was not scheduled for longer than the token
// does not accuse its peers on its first tick back.
func TestPauseAwareness(t *testing.T) {
	tr, _ := formedTrio(t)
	e := tr.engs[0]
	ring, _ := e.Ring()
	tr.now = tr.now.Add(3 * time.Second) // nothing ran on any node
	e.Tick(tr.now)
	r := e.Ready()
	for _, o := range r.Messages {
		if _, ok := o.Msg.Body.(*peerpb.Message_Prepare); ok {
			t.Fatal("paused node started a view change against peers it could not have heard")
		}
	}
	if now, _ := e.Ring(); now != ring || e.State() != StateOperational {
		t.Fatalf("view changed: %v %v", now, e.State())
	}
}

func TestPeerClosedIsImmediate(t *testing.T) {
	tr, _ := formedTrio(t)
	for _, e := range tr.engs[:2] {
		e.PeerClosed(tr.now, 3, 1)
	}
	tr.down[2] = true
	tr.drain()
	for _, e := range tr.engs[:2] {
		if _, m := e.Ring(); !slices.Equal(m, []NodeID{1, 2}) {
			t.Fatalf("node %d members %v", e.Self(), m)
		}
	}
}

// TestRecoveryGivesUp: a member that cannot get the old view's entries up
// to the cut (no holder answers) gives up after 2 x consensus and starts
// over, instead of holding the new view's sync step hostage.
func TestRecoveryGivesUp(t *testing.T) {
	nodes := []NodeConfig{{ID: 1, Links: 1}, {ID: 2, Links: 1}, {ID: 3, Links: 1}}
	e, err := New(Config{Self: 3, Incarnation: 1, Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(100, 0)
	e.Tick(now)
	from1 := func(body *peerpb.Message) {
		body.From, body.To, body.Incarnation = 1, 3, 1
		now = now.Add(time.Millisecond)
		e.Step(now, 0, body)
		for _, ev := range e.Ready().Events {
			if ev.Kind == EventNodelist {
				e.SyncDone(ev.Ring)
			}
		}
	}
	members := []*peerpb.Member{{Node: 1, Incarnation: 1}, {Node: 2, Incarnation: 1}, {Node: 3, Incarnation: 1}}
	ring := func(seq uint64) *peerpb.RingID { return &peerpb.RingID{Rep: 1, Seq: seq} }
	var hbSeq uint64
	heartbeats := func() { // nodes 1 and 2 hear us, and each other
		hbSeq++
		for _, id := range []uint32{1, 2} {
			now = now.Add(time.Millisecond)
			e.Step(now, 0, &peerpb.Message{From: id, To: 3, Incarnation: 1, Body: &peerpb.Message_Heartbeat{Heartbeat: &peerpb.Heartbeat{
				HeardYou: true, NodelistDigest: e.digest, Deaf: newNodeSet(3).bytes(), Seq: hbSeq,
				Ring: ringPB(e.committed), State: uint32(e.state)}}})
		}
		e.Tick(now)
		e.Ready()
	}
	heartbeats()
	// View 1.4: nothing to recover.
	from1(&peerpb.Message{Body: &peerpb.Message_Prepare{Prepare: &peerpb.Prepare{Attempt: 1, Members: members}}})
	from1(&peerpb.Message{Body: &peerpb.Message_Commit{Commit: &peerpb.Commit{Attempt: 1, Ring: ring(4), Members: members}}})
	if r, _ := e.Ring(); r != (RingID{1, 4}) || e.State() != StateSync {
		t.Fatalf("not in view 1.4: %v %v", r, e.State())
	}
	// View 1.8: node 1 claims it delivered 5 entries of 1.4 that we lack,
	// and then never answers our fetches.
	from1(&peerpb.Message{Body: &peerpb.Message_Prepare{Prepare: &peerpb.Prepare{Attempt: 2, Members: members}}})
	from1(&peerpb.Message{Body: &peerpb.Message_Commit{Commit: &peerpb.Commit{Attempt: 2, Ring: ring(8), Members: members,
		Transitions: []*peerpb.Transition{
			{Node: 1, OldRing: ring(4), Delivered: 5},
			{Node: 2, OldRing: ring(4)},
			{Node: 3, OldRing: ring(4)},
		}}}})
	if e.State() != StateRecover {
		t.Fatalf("state %v, want recovering", e.State())
	}
	fetched := false
	for i, end := 0, now.Add(2*e.cfg.Consensus+50*time.Millisecond); now.Before(end); i, now = i+1, now.Add(5*time.Millisecond) {
		if i%10 == 0 {
			heartbeats() // the peers stay alive (and silent about the fetch)
		}
		e.Tick(now)
		for _, o := range e.Ready().Messages {
			if _, ok := o.Msg.Body.(*peerpb.Message_Fetch); ok && o.To == 1 {
				fetched = true
			}
		}
		if e.State() != StateRecover {
			break
		}
	}
	if !fetched {
		t.Fatal("never asked node 1 for the missing entries")
	}
	if e.State() != StateGather {
		t.Fatalf("still %v after 2 x consensus", e.State())
	}
}

// TestFalseCloseIsUndone: a peer whose connection closed but which keeps
// sending after the token is taken back; stale packets right after a close
// are not enough, and a graceful leave is final.
func TestFalseCloseIsUndone(t *testing.T) {
	tr, _ := formedTrio(t)
	a := tr.engs[0]
	a.PeerClosed(tr.now, 3, 1)
	if m := a.Status().Peers[1]; m.Reachable {
		t.Fatal("peer 3 still reachable right after its close")
	}
	tr.run(100 * time.Millisecond) // node 3 keeps sending: still too soon
	if p := a.peer(3); !p.gone() {
		t.Fatal("taken back before the token passed")
	}
	tr.run(a.cfg.Token + 200*time.Millisecond)
	if p := a.peer(3); p.gone() {
		t.Fatal("peer 3 keeps sending long after its close, but is still considered gone")
	}
	tr.run(300 * time.Millisecond)
	if _, m := a.Ring(); !slices.Equal(m, []NodeID{1, 2, 3}) {
		t.Fatalf("node 3 not back in the view: %v", m)
	}
	// A graceful leave is final, even if packets follow.
	p := a.peer(2)
	a.Step(tr.now, 0, &peerpb.Message{From: 2, To: 1, Incarnation: 1, Body: &peerpb.Message_Leave{Leave: &peerpb.Leave{}}})
	tr.run(a.cfg.Token + 200*time.Millisecond)
	if !p.gone() {
		t.Fatal("a node that left gracefully was taken back")
	}
}

func TestNextTick(t *testing.T) {
	tr, _ := formedTrio(t)
	e := tr.engs[1]
	tr.run(time.Second) // quiet
	if e.busy() {
		t.Fatal("an idle engine asks for the fast tick cadence")
	}
	if idle := e.NextTick().Sub(e.now); idle > e.cfg.Token/4 {
		t.Fatalf("idle: next tick in %v, beyond a quarter token", idle)
	}
	e.Broadcast([]byte("x"), false)
	e.Ready()
	if busy := e.NextTick().Sub(e.now); !e.busy() || busy > e.cfg.Retransmit/4 {
		t.Fatalf("with an entry in flight: next tick in %v, want within %v", busy, e.cfg.Retransmit/4)
	}
	// Alone, with nothing to do, it still ticks often enough to tell its own
	// pauses from silence: at least every quarter token.
	e.PeerClosed(tr.now, 1, 1)
	e.PeerClosed(tr.now, 3, 1)
	tr.down[0], tr.down[2] = true, true
	tr.run(5 * time.Second)
	if alone := e.NextTick().Sub(e.now); alone > e.cfg.Token/4 {
		t.Fatalf("alone: next tick in %v, beyond a quarter token", alone)
	}
}

// TestHugeRangesStayCheap: a Fetch or a Commit naming absurd sequence
// ranges (a corrupt or buggy peer) must not make the engine walk them.
func TestHugeRangesStayCheap(t *testing.T) {
	tr, _ := formedTrio(t)
	e := tr.engs[0]
	ring, _ := e.Ring()
	done := make(chan struct{})
	go func() { // the engine is not shared: this goroutine is its only user now
		e.Step(tr.now, 0, &peerpb.Message{From: 2, To: 1, Incarnation: 1, Body: &peerpb.Message_Fetch{Fetch: &peerpb.Fetch{
			Ring: ringPB(ring), Ranges: []*peerpb.Range{{First: 0, Last: 1 << 62}}}}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // it takes microseconds; without the bound, forever
		t.Fatal("a Fetch of a huge range does not return")
	}
	if got := len(e.cur.ranges(1, 1<<62, false)); got != 1 {
		t.Fatalf("ranges over a huge span: %d ranges", got)
	}
}
