package quorum

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/cs"
)

const dev = "Qdevice"

// register registers the device on a node and waits for the answer.
func (h *harness) register(id NodeID, name string) error {
	h.t.Helper()
	pending, err := h.eng[id].QdeviceRegister(h.now, name, uint64(id)*100)
	if err != nil || !pending {
		return err
	}
	h.settle()
	rd := h.drain(id)
	for _, r := range rd.Replies {
		if r.Token == uint64(id)*100 {
			return r.Err
		}
	}
	h.t.Fatalf("no reply to the registration on node %d", id)
	return nil
}

// poll polls the device on a node with the node's current ring.
func (h *harness) poll(id NodeID, vote bool) error {
	h.t.Helper()
	err := h.eng[id].QdevicePoll(h.now, dev, vote, h.eng[id].ring)
	h.settle()
	return err
}

func TestQdeviceRegister(t *testing.T) {
	h := newHarness(t, nodelist(2, device(u32p(1))))
	h.boot(1, 2)
	h.check("2 nodes, device configured", q(true, 3, 2, 2), 1, 2)
	if err := h.register(1, dev); err != nil {
		t.Fatalf("register: %v", err)
	}
	in := h.info(1)
	if in.Flags&InfoQdeviceRegistered == 0 || in.Flags&InfoQdeviceAlive != 0 || in.QdeviceName != dev {
		t.Errorf("after register: %+v", in)
	}
	if n := h.info(2).QdeviceName; n != dev {
		t.Errorf("node 2 learned name %q", n)
	}
	if r := infoOf(t, h.eng[2], 1); r.Flags&InfoQdeviceRegistered == 0 {
		t.Errorf("node 2 does not see node 1's device: %+v", r)
	}
	// Same name again: OK at once; another name: EXIST.
	if p, err := h.eng[1].QdeviceRegister(h.now, dev, 1); p || err != nil {
		t.Errorf("re-register: %v %v", p, err)
	}
	if _, err := h.eng[1].QdeviceRegister(h.now, "Other", 1); !errors.Is(err, cs.ErrExist) {
		t.Errorf("other name: %v", err)
	}
	// Node 2 registering another name gets EXIST from the cluster.
	if err := h.register(2, "Other"); !errors.Is(err, cs.ErrExist) {
		t.Errorf("node 2 with another name: %v", err)
	}
	// A registration in flight: TRY_AGAIN.
	if p, err := h.eng[2].QdeviceRegister(h.now, dev, 7); !p || err != nil {
		t.Fatalf("node 2: %v %v", p, err)
	}
	if _, err := h.eng[2].QdeviceRegister(h.now, dev, 8); !errors.Is(err, cs.ErrTryAgain) {
		t.Errorf("second registration in flight: %v", err)
	}
	h.settle()
	if rd := h.drain(2); len(rd.Replies) != 1 || rd.Replies[0] != (Reply{Token: 7}) {
		t.Errorf("replies %+v", rd.Replies)
	}
	// The quorum event lists the device as {0, 0} where it is registered.
	h.form([]NodeID{1, 2})
	h.poll(1, true)
	h.poll(2, true)
	var last Event
	for _, ev := range h.drain(1).Events {
		if ev.Kind == EventQuorum {
			last = ev
		}
	}
	if want := []NodeState{{1, 1, 1}, {2, 1, 1}, {0, 0, 0}}; !slices.Equal(last.Nodes, want) {
		t.Errorf("quorum event nodes %v, want %v", last.Nodes, want)
	}
}

// Registration without any device section is accepted; the device has no
// votes then.
func TestQdeviceRegisterWithoutDeviceSection(t *testing.T) {
	h := newHarness(t, nodelist(3))
	h.boot(1, 2, 3)
	if err := h.register(1, dev); err != nil {
		t.Fatal(err)
	}
	h.poll(1, true)
	in := h.info(1)
	if in.Flags&InfoQdeviceCastVote == 0 || in.TotalVotes != 3 || in.QdeviceVotes != 0 {
		t.Errorf("%+v", in)
	}
}

func TestQdevicePollAndTimeout(t *testing.T) {
	h := newHarness(t, nodelist(2, device(u32p(1))))
	h.boot(1, 2)
	e := h.eng[1]
	if err := e.QdevicePoll(h.now, dev, true, h.ring(1)); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("poll before register: %v", err)
	}
	h.register(1, dev)
	if err := e.QdevicePoll(h.now, dev, true, RingID{Rep: 1, Seq: 1}); !errors.Is(err, cs.ErrMessageError) {
		t.Errorf("stale ring: %v", err)
	}
	if err := e.QdevicePoll(h.now, "Other", true, h.ring(1)); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("wrong name: %v", err)
	}
	if err := h.poll(1, true); err != nil {
		t.Fatal(err)
	}
	in := h.info(1)
	if in.Flags&(InfoQdeviceAlive|InfoQdeviceCastVote) != InfoQdeviceAlive|InfoQdeviceCastVote || in.TotalVotes != 3 {
		t.Errorf("after a voting poll: %+v", in)
	}
	// Only where the local device votes: node 2 does not count it (S30).
	if in := h.info(2); in.TotalVotes != 2 {
		t.Errorf("node 2 total %d, want 2", in.TotalVotes)
	}
	if in := infoOf(t, h.eng[2], 1); in.TotalVotes != 3 {
		t.Errorf("getinfo(1) on node 2: total %d, want 3 (node 1's device votes)", in.TotalVotes)
	}
	// Polls keep it alive; a missed poll drops it after the timeout (1 s).
	h.advance(600 * time.Millisecond)
	h.poll(1, true)
	h.advance(600 * time.Millisecond)
	if h.info(1).Flags&InfoQdeviceAlive == 0 {
		t.Error("device dead despite polls")
	}
	h.drain(1)
	h.advance(500 * time.Millisecond)
	in = h.info(1)
	if in.Flags&(InfoQdeviceAlive|InfoQdeviceCastVote) != 0 || in.Flags&InfoQdeviceRegistered == 0 || in.TotalVotes != 2 {
		t.Errorf("after the timeout: %+v", in)
	}
	if l := logsWith(h.drain(1), "lost contact"); !slices.Equal(l, []string{"lost contact with quorum device Qdevice"}) {
		t.Errorf("logs %q", l)
	}
	if infoOf(t, h.eng[2], 1).Flags&InfoQdeviceAlive != 0 {
		t.Error("node 2 still sees the device alive")
	}
	// A poll that stops voting.
	h.poll(1, true)
	h.poll(1, false)
	if in := h.info(1); in.Flags&InfoQdeviceCastVote != 0 || in.Flags&InfoQdeviceAlive == 0 {
		t.Errorf("after a non-voting poll: %+v", in)
	}
}

// 2 nodes + device: the node whose device votes survives a split.
func TestQdeviceTwoNodeSplit(t *testing.T) {
	h := newHarness(t, nodelist(2, device(u32p(1))))
	h.boot(1, 2)
	h.register(1, dev)
	h.register(2, dev)
	h.poll(1, true)
	h.poll(2, true)
	h.check("both up, device voting", q(true, 3, 3, 2), 1, 2)
	h.form([]NodeID{1}, []NodeID{2})
	// Both are waiting for their device's poll with the new ring.
	for _, id := range []NodeID{1, 2} {
		if h.eng[id].SyncReady(h.ring(id)) {
			t.Errorf("node %d: sync not held for the device", id)
		}
		if l := logsWith(h.drain(id), "waiting for quorum device"); !slices.Equal(l, []string{"waiting for quorum device Qdevice poll (but maximum for 3000 ms)"}) {
			t.Errorf("node %d logs %q", id, l)
		}
	}
	// A poll with the old ring is stale now.
	if err := h.eng[1].QdevicePoll(h.now, dev, true, RingID{Rep: 1, Seq: 4}); !errors.Is(err, cs.ErrMessageError) {
		t.Errorf("old ring during sync: %v", err)
	}
	h.poll(1, true)  // qnetd gives node 1 the vote
	h.poll(2, false) // and not node 2
	h.check("winner", q(true, 3, 2, 2), 1)
	h.check("loser", q(false, 3, 1, 2), 2)
}

// The sync step waits at most sync_timeout; then the device is dead.
func TestQdeviceSyncTimeout(t *testing.T) {
	h := newHarness(t, nodelist(3, device(u32p(1))))
	h.boot(1, 2, 3)
	h.register(1, dev)
	h.poll(1, true)
	h.kill(3)
	if h.eng[1].SyncReady(h.ring(1)) {
		t.Fatal("not waiting for the device")
	}
	h.advance(2900 * time.Millisecond)
	if h.eng[1].SyncReady(h.ring(1)) {
		t.Fatal("stopped waiting early")
	}
	h.advance(100 * time.Millisecond)
	if !h.eng[1].SyncReady(h.ring(1)) {
		t.Fatal("still waiting after sync_timeout")
	}
	in := h.info(1)
	if in.Flags&InfoQdeviceAlive != 0 || in.TotalVotes != 2 || in.Flags&InfoQuorate != 0 { // 2 < quorum 3 without the device
		t.Errorf("after the sync timeout: %+v", in)
	}
	// A registered but dead device does not hold the next view.
	h.boot(3)
	if !h.eng[1].SyncReady(h.ring(1)) {
		t.Error("dead device holds sync")
	}
}

// The device votes are configured even before anything registers (S32),
// and setvotes(0, n) changes them cluster-wide.
func TestQdeviceVotes(t *testing.T) {
	h := newHarness(t, nodelist(4, device(u32p(1))))
	h.boot(1, 2, 3, 4)
	h.check("4 nodes + device votes 1", q(true, 5, 4, 3), 1, 2, 3, 4)
	if err := h.eng[1].SetVotes(h.now, 0, 2); err != nil {
		t.Fatal(err)
	}
	h.settle()
	for _, id := range ids(1, 4) {
		in := h.info(id)
		if in.QdeviceVotes != 2 || in.NodeExpectedVotes != 6 || in.Quorum != 4 {
			t.Errorf("node %d after setvotes(0, 2): %+v", id, in)
		}
	}
	// A restarted node learns the device votes through NODEINFO(0).
	h.kill(4)
	h.boot(4)
	if v := h.info(4).QdeviceVotes; v != 2 {
		t.Errorf("restarted node: device votes %d", v)
	}
}

func TestQdeviceMasterWins(t *testing.T) {
	h := newHarness(t, nodelist(4, device(u32p(1))))
	h.boot(1, 2, 3, 4)
	for _, id := range ids(1, 4) {
		h.register(id, dev)
		h.poll(id, true)
	}
	if err := h.eng[1].QdeviceMasterWins(h.now, "Other", true); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("wrong name: %v", err)
	}
	for _, id := range ids(1, 4) {
		if err := h.eng[id].QdeviceMasterWins(h.now, dev, true); err != nil {
			t.Fatal(err)
		}
	}
	h.settle()
	if in := h.info(2); in.Flags&InfoQdeviceMasterWins == 0 {
		t.Errorf("flags %#x", in.Flags)
	}
	h.form([]NodeID{1}, []NodeID{2, 3, 4})
	h.poll(1, true)
	for _, id := range ids(2, 4) {
		h.poll(id, false)
	}
	// Node 1 alone has 1+1 votes < quorum 3, but its device is the master.
	h.check("master side", q(true, 5, 2, 3), 1)
	h.check("other side: 3 votes", q(true, 5, 3, 3), 2, 3, 4)
	if !h.eng[1].Status(h.now).QdeviceMasterWins {
		t.Error("switch not reported")
	}
	// Without the vote the master does not win.
	h.poll(1, false)
	h.check("master without its vote", q(false, 5, 1, 3), 1)
}

func TestQdeviceUnregisterAndUpdate(t *testing.T) {
	h := newHarness(t, nodelist(2, device(u32p(1))))
	h.boot(1, 2)
	if err := h.eng[1].QdeviceUnregister(h.now, dev); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("unregister unregistered: %v", err)
	}
	if err := h.eng[1].QdeviceUpdate(h.now, dev, "New"); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("update unregistered: %v", err)
	}
	h.register(1, dev)
	h.register(2, dev)
	h.poll(1, true)
	if err := h.eng[1].QdeviceUpdate(h.now, "Other", "New"); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("update wrong old name: %v", err)
	}
	if err := h.eng[1].QdeviceUpdate(h.now, dev, "New"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	for _, id := range []NodeID{1, 2} {
		if n := h.info(id).QdeviceName; n != "New" {
			t.Errorf("node %d name %q", id, n)
		}
	}
	if err := h.eng[1].QdeviceUnregister(h.now, dev); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("unregister wrong name: %v", err)
	}
	if err := h.eng[1].QdeviceUnregister(h.now, "New"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if in := h.info(1); in.Flags&(InfoQdeviceRegistered|InfoQdeviceAlive|InfoQdeviceCastVote) != 0 || in.TotalVotes != 2 {
		t.Errorf("after unregister: %+v", in)
	}
	// Node 2 still has it registered: the name stays.
	if n := h.info(1).QdeviceName; n != "New" {
		t.Errorf("name wiped while node 2 is registered: %q", n)
	}
	h.eng[2].QdeviceUnregister(h.now, "New")
	h.settle()
	for _, id := range []NodeID{1, 2} {
		if n := h.info(id).QdeviceName; n != "" {
			t.Errorf("node %d: name %q after the last unregister", id, n)
		}
	}
}

func TestQdeviceNames(t *testing.T) {
	e := mustNew(t, nodelist(2)(1))
	long := strings.Repeat("q", 255)
	if _, err := e.QdeviceRegister(t0, long, 1); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("255-byte name: %v", err)
	}
	if _, err := e.QdeviceRegister(t0, "", 1); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := e.QdeviceRegister(t0, "\x00abc", 1); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("name empty as a C string: %v", err)
	}
	if p, err := e.QdeviceRegister(t0, long[:254], 1); !p || err != nil {
		t.Errorf("254-byte name: %v %v", p, err)
	}
	for name, err := range map[string]error{
		"unregister": e.QdeviceUnregister(t0, long),
		"update old": e.QdeviceUpdate(t0, long, "x"),
		"update new": e.QdeviceUpdate(t0, "x", long),
		"poll":       e.QdevicePoll(t0, long, true, e.ring),
		"masterwins": e.QdeviceMasterWins(t0, long, true),
	} {
		if !errors.Is(err, cs.ErrInvalidParam) {
			t.Errorf("%s with a 255-byte name: %v", name, err)
		}
	}
}

// A configuration conflict found at reload disables the device
// (qdevice_can_operate); the calls that check it answer ACCESS.
func TestQdeviceCannotOperate(t *testing.T) {
	e := mustNew(t, nodelist(2)(1))
	e.qdevCanOperate = false
	if _, err := e.QdeviceRegister(t0, dev, 1); !errors.Is(err, cs.ErrAccess) {
		t.Errorf("register: %v", err)
	}
	if err := e.QdevicePoll(t0, dev, true, e.ring); !errors.Is(err, cs.ErrAccess) {
		t.Errorf("poll: %v", err)
	}
	if err := e.QdeviceMasterWins(t0, dev, true); !errors.Is(err, cs.ErrAccess) {
		t.Errorf("master wins: %v", err)
	}
	// unregister does not check it
	if err := e.QdeviceUnregister(t0, dev); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("unregister: %v", err)
	}
}

// The sync re-announcement of the device name answers a pending
// registration, as in Corosync.
func TestQdeviceReannouncementAnswersPending(t *testing.T) {
	e := mustNew(t, nodelist(2)(1))
	r := view(e, 4, 1, 2)
	e.Deliver(t0, r, 2, encodeQdevReg(qdevOpRegister, "Remote"), true)
	if p, err := e.QdeviceRegister(t0, "Mine", 5); !p || err != nil {
		t.Fatal(p, err)
	}
	e.Output() // the REGISTER(Mine) is lost with the view
	r = view(e, 8, 1, 2)
	rd := e.Ready()
	if len(rd.Replies) != 1 || rd.Replies[0].Token != 5 || rd.Replies[0].Err != nil {
		t.Fatalf("replies %+v", rd.Replies)
	}
	if in := infoOf(t, e, 0); in.QdeviceName != "Remote" || in.Flags&InfoQdeviceRegistered == 0 {
		t.Errorf("%+v", in)
	}
	// An own REGISTER with nothing pending is ignored with a warning.
	e2 := mustNew(t, nodelist(2)(1))
	view(e2, 4, 1)
	e2.Deliver(t0, e2.ring, 1, encodeQdevReg(qdevOpRegister, "X"), false)
	if l := logsWith(e2.Ready(), "Unable to determine origin"); len(l) != 1 {
		t.Errorf("logs %q", l)
	}
}
