package quorum

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/config"
)

// Unit tests of the §5.3/§5.4 rules, driving one engine with hand-made
// messages where the rule is about a single handler, and the harness
// where it is about a cluster.

var t0 = time.Unix(2_000_000, 0)

func mustNew(t *testing.T, c Config) *Engine {
	t.Helper()
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	e.Output()
	e.Ready()
	return e
}

// view starts and finishes a view on a lone engine, delivering only its
// own sync messages (the test delivers the others' by hand).
func view(e *Engine, seq uint64, members ...NodeID) RingID {
	r := RingID{Rep: slices.Min(members), Seq: seq}
	e.Nodelist(t0, r, members)
	s, _ := e.Output()
	for _, b := range s {
		e.Deliver(t0, r, e.self, b, true)
	}
	return r
}

func nodeinfo(e *Engine, from, id NodeID, votes, expected, flags uint32) {
	e.Deliver(t0, e.ring, from, encodeNodeinfo(id, votes, expected, flags), true)
}

func infoOf(t *testing.T, e *Engine, id uint32) Info {
	t.Helper()
	in, err := e.GetInfo(t0, id)
	if err != nil {
		t.Fatalf("GetInfo(%d): %v", id, err)
	}
	return in
}

func TestNodeinfoNewNode(t *testing.T) {
	e := mustNew(t, nodelist(3)(1))
	view(e, 4, 1, 2)
	if _, err := e.GetInfo(t0, 2); err == nil {
		t.Fatal("node 2 known before its NODEINFO")
	}
	nodeinfo(e, 2, 2, 1, 3, 0)
	e.Installed(t0, e.ring, e.members)
	in := infoOf(t, e, 2)
	if in.NodeState != NodestateMember || in.NodeVotes != 1 || in.TotalVotes != 2 || in.Flags&InfoQuorate == 0 {
		t.Errorf("node 2: %+v", in)
	}
}

func TestNodeinfoDeviceVotes(t *testing.T) {
	// Inquorate receiver, quorate sender: the sender's value is adopted,
	// even a lower one.
	e := mustNew(t, nodelist(4, device(u32p(2)))(1))
	view(e, 4, 1, 2)
	nodeinfo(e, 2, 2, 1, 5, flagQuorate)
	if e.quorate {
		t.Fatal("quorate with 2 of 6 votes")
	}
	nodeinfo(e, 2, QdeviceNodeID, 1, 0, 0)
	if v := infoOf(t, e, 0).QdeviceVotes; v != 1 {
		t.Errorf("inquorate node: device votes %d, want the quorate sender's 1", v)
	}
	// Otherwise the larger value wins.
	nodeinfo(e, 2, 2, 1, 5, 0)
	nodeinfo(e, 2, QdeviceNodeID, 3, 0, 0)
	nodeinfo(e, 2, QdeviceNodeID, 2, 0, 0)
	if v := infoOf(t, e, 0).QdeviceVotes; v != 3 {
		t.Errorf("device votes %d, want max 3", v)
	}
	// A device NODEINFO from an unknown sender takes the max rule.
	nodeinfo(e, 9, QdeviceNodeID, 1, 0, 0)
	if v := infoOf(t, e, 0).QdeviceVotes; v != 3 {
		t.Errorf("device votes %d after unknown sender", v)
	}
	if _, err := e.GetInfo(t0, 9); err == nil {
		t.Error("the sender of a device NODEINFO became a node")
	}
}

func TestNodeinfoAdoptsExpectedFromQuorate(t *testing.T) {
	e := mustNew(t, nodelist(5)(1))
	view(e, 4, 1, 2)
	// Node 2 belongs to a partition where LMS lowered expected votes to 2.
	nodeinfo(e, 2, 2, 1, 2, flagQuorate)
	e.Installed(t0, e.ring, e.members)
	in := infoOf(t, e, 0)
	if in.NodeExpectedVotes != 2 || in.Quorum != 2 || in.Flags&InfoQuorate == 0 {
		t.Errorf("after adopting: %+v", in)
	}
}

func TestNodeinfoRecordedExpected(t *testing.T) {
	// Not quorate and no tracking: the local value is recorded.
	e := mustNew(t, nodelist(5)(1))
	view(e, 4, 1, 2)
	nodeinfo(e, 2, 2, 1, 9, 0)
	if x := infoOf(t, e, 2).NodeExpectedVotes; x != 5 {
		t.Errorf("recorded %d, want our own 5", x)
	}
	// A quorate sender's value is recorded as advertised.
	nodeinfo(e, 2, 2, 1, 4, flagQuorate)
	if x := infoOf(t, e, 2).NodeExpectedVotes; x != 4 {
		t.Errorf("quorate sender: recorded %d, want 4", x)
	}
	// With tracking the advertised value is recorded.
	e = mustNew(t, nodelist(5, evtOn)(1))
	view(e, 4, 1, 2)
	nodeinfo(e, 2, 2, 1, 9, 0)
	if x := infoOf(t, e, 2).NodeExpectedVotes; x != 9 {
		t.Errorf("tracking: recorded %d, want 9", x)
	}
	if x := infoOf(t, e, 0).HighestExpected; x != 9 {
		t.Errorf("tracking: highest %d, want 9", x)
	}
}

func TestNodeinfoLeaving(t *testing.T) {
	e := mustNew(t, nodelist(3, adOn)(1))
	view(e, 4, 1, 2, 3)
	nodeinfo(e, 2, 2, 1, 3, 0)
	nodeinfo(e, 3, 3, 1, 3, 0)
	e.Installed(t0, e.ring, e.members)
	e.Ready()
	nodeinfo(e, 3, 3, 1, 3, flagLeaving|flagQuorate)
	in := infoOf(t, e, 3)
	if in.NodeState != NodestateLeaving {
		t.Errorf("state %d, want LEAVING", in.NodeState)
	}
	me := infoOf(t, e, 0)
	if me.NodeExpectedVotes != 2 || me.Quorum != 2 || me.TotalVotes != 2 {
		t.Errorf("after the leave: %+v", me)
	}
	// The leaving node shows up as state 3 in the next quorum event.
	e.Tick(t0)
	r := view(e, 8, 1, 2)
	nodeinfo(e, 2, 2, 1, 2, flagQuorate)
	e.Installed(t0, r, []NodeID{1, 2})
	var last Event
	for _, ev := range e.Ready().Events {
		if ev.Kind == EventQuorum {
			last = ev
		}
	}
	want := []NodeState{{1, NodestateMember, 1}, {2, NodestateMember, 1}, {3, NodestateDead, 1}}
	if !slices.Equal(last.Nodes, want) {
		t.Errorf("nodes %v, want %v", last.Nodes, want)
	}
}

func TestNodeinfoDisablesLMS(t *testing.T) {
	e := mustNew(t, nodelist(4, lmsOn)(1))
	if infoOf(t, e, 0).Flags&InfoLastManStanding == 0 {
		t.Fatal("LMS not reported")
	}
	view(e, 4, 1, 2)
	nodeinfo(e, 2, 2, 2, 4, 0)
	if infoOf(t, e, 0).Flags&InfoLastManStanding != 0 {
		t.Error("LMS still on after a node with 2 votes")
	}
	if l := logsWith(e.Ready(), "Last Man Standing"); len(l) != 1 ||
		l[0] != "Last Man Standing feature is supported only when all cluster nodes votes are set to 1. Disabling LMS." {
		t.Errorf("logs %q", l)
	}
}

func TestWaitForAllClearedByQuorateSender(t *testing.T) {
	e := mustNew(t, nodelist(3, wfaOn)(1))
	view(e, 4, 1, 2)
	if !e.wfaStatus {
		t.Fatal("not waiting")
	}
	// A quorate sender that is itself waiting does not release us.
	nodeinfo(e, 2, 2, 1, 3, flagQuorate|flagWFAStatus)
	if !e.wfaStatus {
		t.Error("released by a waiting sender")
	}
	nodeinfo(e, 2, 2, 1, 3, flagQuorate)
	if e.wfaStatus {
		t.Error("still waiting after a quorate, non-waiting sender")
	}
	e.Installed(t0, e.ring, e.members)
	if !e.quorate {
		t.Error("not quorate with 2 of 3 after the wait was released")
	}
}

func TestWaitForAllLog(t *testing.T) {
	e, _ := New(nodelist(3, wfaOn)(1))
	l := logsWith(e.Ready(), "Waiting")
	if len(l) == 0 || l[0] != "Waiting for all cluster members. Current votes: 1 expected_votes: 3" {
		t.Errorf("logs %q", l)
	}
}

// S10/S11/S12: cancel, re-arm on quorum loss, a restarted node joining a
// quorate partition.
func TestWaitForAllRules(t *testing.T) {
	h := newHarness(t, nodelist(3, wfaOn))
	h.boot(1, 2)
	h.check("2 of 3, waiting", q(false, 3, 2, 2), 1, 2)
	if err := h.eng[1].CancelWaitForAll(h.now); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.check("cancelled", q(true, 3, 2, 2), 1, 2)
	if l := logsWith(h.drain(2), "reset by user"); len(l) != 1 || l[0] != "wait_for_all_status reset by user on node 1." {
		t.Errorf("logs %q", l)
	}

	h = newHarness(t, nodelist(3, wfaOn))
	h.boot(1, 2, 3)
	h.check("all up", q(true, 3, 3, 2), 1, 2, 3)
	h.kill(3)
	h.check("one down (S12 setup)", q(true, 3, 2, 2), 1, 2)
	h.boot(3)
	h.check("restarted node joins a quorate partition (S12)", q(true, 3, 3, 2), 1, 2, 3)

	h.kill(2, 3)
	h.check("quorum lost", q(false, 3, 1, 2), 1)
	if !h.eng[1].Status(h.now).WaitForAllStatus {
		t.Error("wait_for_all not re-armed (S11)")
	}
	h.boot(2)
	h.check("majority back, still waiting (S11)", q(false, 3, 2, 2), 1, 2)
	h.boot(3)
	h.check("all back", q(true, 3, 3, 2), 1, 2, 3)
}

// Expected votes only grow by themselves, and each growth is an event;
// quorum does not drop when nodes leave (S27, §11 item 5).
func TestExpectedGrowsQuorumStays(t *testing.T) {
	three := nodelist(3)
	h := newHarness(t, func(id NodeID) Config {
		if id == 4 {
			return expectedOnly(3)(id)
		}
		return three(id)
	})
	h.boot(1, 2, 3)
	h.drain(1)
	h.boot(4)
	h.check("a node outside the nodelist joins", q(true, 4, 4, 3), 1, 2, 3, 4)
	rd := h.drain(1)
	var exp []uint32
	for _, ev := range rd.Events {
		if ev.Kind == EventExpected {
			exp = append(exp, ev.Expected)
		}
	}
	if !slices.Equal(exp, []uint32{4}) {
		t.Errorf("expected-votes events %v, want [4]", exp)
	}
	h.kill(4)
	h.check("it leaves: expected and quorum stay", q(true, 4, 3, 3), 1, 2, 3)
	h.kill(3)
	h.check("one more", q(false, 4, 2, 3), 1, 2)
}

// Events: nodelist at the start of a view, quorum at the end of every
// view even when nothing changed; the table includes dead nodes.
func TestEvents(t *testing.T) {
	h := newHarness(t, nodelist(3))
	h.boot(1, 2, 3)
	h.drain(1)
	h.kill(3)
	rd := h.drain(1)
	var kinds []EventKind
	for _, ev := range rd.Events {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Equal(kinds, []EventKind{EventNodelist, EventQuorum}) {
		t.Fatalf("events %v", kinds)
	}
	nl, qe := rd.Events[0], rd.Events[1]
	if !slices.Equal(nl.Members, []NodeID{1, 2}) || nl.Ring != h.ring(1) {
		t.Errorf("nodelist event %+v", nl)
	}
	want := []NodeState{{1, 1, 1}, {2, 1, 1}, {3, 2, 1}}
	if !qe.Quorate || qe.Ring != h.ring(1) || !slices.Equal(qe.Nodes, want) {
		t.Errorf("quorum event %+v", qe)
	}
	// The operator's log: members every time, primary only on change.
	if l := logsWith(rd, "Members["); !slices.Equal(l, []string{"Members[2]: 1 2"}) {
		t.Errorf("members log %q", l)
	}
	if l := logsWith(rd, "component"); len(l) != 0 {
		t.Errorf("primary logged without a change: %q", l)
	}
	if l := logsWith(rd, "Sync "); !slices.Equal(l, []string{"Sync members[2]: 1 2", "Sync left[1]: 3"}) {
		t.Errorf("sync log %q", l)
	}
	h.kill(2)
	rd = h.drain(1)
	if l := logsWith(rd, "component"); !slices.Equal(l, []string{"This node is within the non-primary component and will NOT provide any services."}) {
		t.Errorf("primary log %q", l)
	}
	h.boot(2)
	if l := logsWith(h.drain(1), "component"); !slices.Equal(l, []string{"This node is within the primary component and will provide service."}) {
		t.Errorf("primary log %q", l)
	}
	// Snapshot: the last view and the current quorum state.
	nl, qe = h.eng[1].Snapshot(h.now)
	if !slices.Equal(nl.Members, []NodeID{1, 2}) || !qe.Quorate || len(qe.Nodes) != 3 {
		t.Errorf("snapshot %+v %+v", nl, qe)
	}
}

// Outside a view change the quorum event goes out when (and only when)
// the quorate state flips.
func TestQuorumEventOnFlipOnly(t *testing.T) {
	h := newHarness(t, nodelist(3, wfaOn))
	h.boot(1, 2)
	h.drain(1)
	h.eng[1].CancelWaitForAll(h.now)
	h.settle()
	var qs []bool
	for _, ev := range h.drain(1).Events {
		if ev.Kind == EventQuorum {
			qs = append(qs, ev.Quorate)
		}
	}
	if !slices.Equal(qs, []bool{true}) {
		t.Errorf("quorum events %v", qs)
	}
	h.eng[1].CancelWaitForAll(h.now)
	h.settle()
	for _, ev := range h.drain(1).Events {
		if ev.Kind == EventQuorum {
			t.Errorf("event without a flip: %+v", ev)
		}
	}
}

// last_man_standing: a change inside the window restarts it (S14); the
// window does nothing while inquorate.
func TestLMSWindowRestarts(t *testing.T) {
	h := newHarness(t, nodelist(6, lmsOn))
	h.boot(ids(1, 6)...)
	h.kill(6)
	h.advance(6 * time.Second)
	h.kill(5)
	h.advance(6 * time.Second)
	h.check("12 s after the first failure, 6 s after the second", q(true, 6, 4, 4), ids(1, 4)...)
	h.advance(4 * time.Second)
	h.check("window after the second failure", q(true, 4, 4, 3), ids(1, 4)...)

	h = newHarness(t, nodelist(5, lmsOn))
	h.boot(ids(1, 5)...)
	h.form([]NodeID{1, 2}, []NodeID{3, 4, 5})
	h.advance(10 * time.Second)
	h.check("majority side lowered", q(true, 3, 3, 2), 3, 4, 5)
	h.check("minority side unchanged", q(false, 5, 2, 3), 1, 2)
}

// setvotes: the new total raises expected votes.
func TestSetVotesRaisesExpected(t *testing.T) {
	h := newHarness(t, nodelist(3))
	h.boot(1, 2, 3)
	if err := h.eng[1].SetVotes(h.now, 2, 3); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.check("node 2 has 3 votes", q(true, 5, 5, 3), 1, 2, 3)
	if v := infoOf(t, h.eng[3], 2).NodeVotes; v != 3 {
		t.Errorf("node 3 sees node 2 with %d votes", v)
	}
}

// The quorum is stored in a uint8, as in votequorum.c.
func TestQuorumIsUint8(t *testing.T) {
	e := mustNew(t, expectedOnly(600, func(q *config.Quorum) { q.Votes = u32p(50) })(1))
	in := infoOf(t, e, 0)
	if in.Quorum != 301%256 || in.Flags&InfoQuorate == 0 {
		t.Errorf("quorum %d quorate %v; want the wrapped 45 and quorate with 50 votes", in.Quorum, in.Flags&InfoQuorate != 0)
	}
	// calculateQuorum itself is exact.
	if q, _ := e.calculateQuorum(true, 600); q != 301 {
		t.Errorf("calculateQuorum %d", q)
	}
}

// Tie-breaker ids are C ints: an id above 2^31 is "lower" than 1.
func TestTieBreakerIDsAreSigned(t *testing.T) {
	big := NodeID(3_000_000_000)
	c := Config{Self: 1, Nodes: []NodeVotes{{1, 1}, {big, 1}}}
	e := mustNew(t, c)
	view(e, 4, 1, big)
	nodeinfo(e, big, big, 1, 2, 0)
	e.Installed(t0, e.ring, e.members)
	st := e.Status(t0)
	if st.LowestNodeID != int32(-1294967296) || st.HighestNodeID != 1 {
		t.Errorf("lowest %d highest %d", st.LowestNodeID, st.HighestNodeID)
	}
}

// ATB list at cold start: the first listed node present decides, and a
// growing membership passes the "fewer than quorum lost" test (the
// difference is negative).
func TestATBListColdStart(t *testing.T) {
	h := newHarness(t, nodelist(4, atbOn, atbNode("1")))
	h.boot(1)
	h.check("alone", q(false, 4, 1, 3), 1)
	h.boot(2)
	h.check("half with node 1", q(true, 4, 2, 3), 1, 2)

	h = newHarness(t, nodelist(4, atbOn))
	h.boot(1, 2)
	h.check("lowest never remembered", q(false, 4, 2, 3), 1, 2)
}

// The table holds 385 nodes and then recycles a DEAD entry.
func TestTableRecycling(t *testing.T) {
	e := mustNew(t, expectedOnly(3)(1))
	members := []NodeID{1}
	for id := NodeID(2); id <= 385; id++ {
		members = append(members, id)
	}
	view(e, 4, members...)
	for _, id := range members[1:] {
		nodeinfo(e, id, id, 1, 3, 0)
	}
	if len(e.nodes) != 385 {
		t.Fatalf("table %d", len(e.nodes))
	}
	view(e, 8, members[:384]...) // node 385 is dead now
	nodeinfo(e, 400, 400, 1, 3, 0)
	if len(e.nodes) != 385 || e.find(385) != nil || e.find(400) == nil {
		t.Errorf("DEAD entry not recycled: %d entries", len(e.nodes))
	}
	if !slices.IsSortedFunc(e.nodes, func(a, b *node) int { return int(a.id) - int(b.id) }) {
		t.Error("table not sorted")
	}
	// Full of live nodes: the last entry goes, never the local one.
	nodeinfo(e, 401, 401, 1, 3, 0)
	if len(e.nodes) != 385 || e.find(1) == nil || e.find(401) == nil {
		t.Errorf("recycling a live entry: %d entries", len(e.nodes))
	}
}

func TestReconfigureUnknownNodeIgnored(t *testing.T) {
	e := mustNew(t, nodelist(3)(1))
	view(e, 4, 1)
	before := e.Status(t0)
	e.Deliver(t0, e.ring, 1, encodeReconfigure(7, 5, reconfNodeVotes), false)
	e.Deliver(t0, e.ring, 1, encodeReconfigure(1, 5, 99), false)
	after := e.Status(t0)
	if before.TotalVotes != after.TotalVotes || before.Quorum != after.Quorum {
		t.Errorf("changed: %+v → %+v", before, after)
	}
}

func TestViewList(t *testing.T) {
	if s := viewList("Members", nil); s != "Members[0]:" {
		t.Error(s)
	}
	if s := viewList("Members", []NodeID{3, 1}); s != "Members[2]: 3 1" {
		t.Error(s)
	}
	if !strings.HasPrefix(EventQuorum.String(), "quorum") || EventKind(9).String() != "unknown" {
		t.Error("EventKind.String")
	}
}

// S17: nodes rejoining after last_man_standing lowered expected votes adopt
// the reduced value from a quorate member, and expected grows again with
// the votes present.
func TestLMSRejoinAdoptsReducedExpected(t *testing.T) {
	h := newHarness(t, expectedOnly(8, lmsOn))
	h.boot(ids(1, 8)...)
	h.kill(6, 7, 8)
	h.advance(10 * time.Second)
	h.check("lowered", q(true, 5, 5, 3), ids(1, 5)...)
	h.drain(1)
	h.boot(6)
	h.check("node 6 back", q(true, 6, 6, 4), ids(1, 6)...)
	var exp []uint32
	for _, ev := range h.drain(1).Events {
		if ev.Kind == EventExpected {
			exp = append(exp, ev.Expected)
		}
	}
	if !slices.Equal(exp, []uint32{6}) {
		t.Errorf("expected-votes events on node 1: %v", exp)
	}
}
