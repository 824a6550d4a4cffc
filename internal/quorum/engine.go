package quorum

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/service"
)

// The engine is a service.
var _ service.Service = (*Engine)(nil)

// Per-node flags carried in NODEINFO (votequorum.c NODE_FLAGS_*). They are
// the wire state of a node; clients see them translated into Info* flags.
const (
	flagQuorate        = 1
	flagLeaving        = 2
	flagWFAStatus      = 4
	flagFirst          = 8
	flagQdevRegistered = 16
	flagQdevAlive      = 32
	flagQdevCastVote   = 64
	flagQdevMasterWins = 128
)

// atbType is the auto_tie_breaker mode (runtime.votequorum.atb_type).
type atbType uint32

const (
	atbNone atbType = iota
	atbLowest
	atbHighest
	atbList
)

// maxTableNodes is how many nodes (the local one included, the device
// pseudo node not) the table holds before it recycles a DEAD entry:
// PROCESSOR_COUNT_MAX + 1.
const maxTableNodes = 384 + 1

// node is struct cluster_node.
type node struct {
	id       NodeID
	state    uint32
	votes    uint32
	expected uint32
	flags    uint32
}

// hold is a view change deferred by a lease this node granted.
type hold struct {
	ring     RingID
	members  []NodeID
	dropped  []NodeID // members of the previous view that the new one lacks
	until    time.Time
	buffered []delivery
}

// delivery is a message that arrived for a held ring.
type delivery struct {
	from    NodeID
	payload []byte
}

// Engine is one node's votequorum. It is not safe for concurrent use; the
// driver serialises every call (service.Service).
type Engine struct {
	cfg  Config
	self NodeID

	nodes    []*node // the table, ascending by id; includes us
	us       *node
	qdev     node // the device pseudo node (id 0); its state stays 0
	qdevName string

	// quorum is a uint8 as in votequorum.c ("static uint8_t quorum"): a
	// quorum above 255 wraps, and comparisons use the wrapped value.
	quorum  uint8
	quorate bool // cluster_is_quorate: votequorum's own answer

	members, prevMembers []NodeID // quorum_members / previous_quorum_members
	// syncClaim is what a view change under way tells clients (leases
	// only): the claim before it if it drops nobody, else no claim.
	syncClaim bool
	ring      RingID // quorum_ringid: the ring of the last sync_init

	twoNode, wfa, wfaStatus, wfaAutoset bool
	atb                                 atbType
	atbList                             []uint32
	// lowestID/highestID are ints in C (-1 = never quorate) and compared
	// as signed ints, so node ids above 2^31 count as the lowest.
	lowestID, highestID int32
	lms                 bool
	lmsWindow           time.Duration
	allowDownscale      bool
	evBarrier           uint32
	evTracking          bool
	evTrackingBarrier   uint32
	qdevTimeout         time.Duration
	qdevSyncTimeout     time.Duration
	qdevCanOperate      bool
	qdevMasterWins      bool

	syncInProgress bool
	syncWait       bool      // sync_wait_for_poll_or_timeout
	lmsTimer       time.Time // zero: not armed
	qdevTimer      time.Time // zero: not armed
	regPending     bool      // a QdeviceRegister waits for its QDEVICE_REG
	regToken       uint64

	now          time.Time // of the current call
	hold         *hold
	lastReported bool // the last quorate value told to clients (vsf_quorum's primary_designated)

	syncOut, normalOut [][]byte
	initNodeinfo       []byte // the startup NODEINFO, sent with the first sync step
	rd                 Ready
	warnings           []string
	// hypo marks a throw-away copy used to answer "what if these members
	// were gone": it must not emit anything.
	hypo bool
}

// New validates the configuration (spec §5.2), computes the starting
// quorum and queues the local node's first NODEINFO. A configuration
// votequorum would refuse to start with is a *config.Error whose text is
// "<path>:<line>: <key>: configuration error: …".
func New(cfg Config) (*Engine, error) {
	if cfg.Self == QdeviceNodeID {
		return nil, errSelfZero
	}
	e := &Engine{
		cfg:             cfg,
		self:            cfg.Self,
		lowestID:        -1,
		highestID:       -1,
		lmsWindow:       DefaultLMSWindow,
		qdevTimeout:     DefaultQdeviceTimeout,
		qdevSyncTimeout: DefaultQdeviceSyncTimeout,
		qdevCanOperate:  true,
	}
	// Before the configuration is read the local node is a member with one
	// vote and the FIRST flag (it has not been in a multi-node view yet).
	e.us = &node{id: cfg.Self, state: NodestateMember, votes: 1, flags: flagFirst}
	e.nodes = []*node{e.us}
	if err := e.readConfig(); err != nil {
		return nil, err
	}
	e.recalculate(false, false)
	// votequorum_exec_init_fn multicasts NODEINFO(us) here; totem holds it
	// until the first ring forms and delivers it ahead of that ring's sync
	// messages. The first sync step sends it first, for the same effect.
	e.initNodeinfo = encodeNodeinfo(e.self, e.us.votes, e.us.expected, e.us.flags)
	return e, nil
}

// Name is the service name.
func (e *Engine) Name() string { return "quorum" }

// Warnings are the non-fatal configuration problems New found.
func (e *Engine) Warnings() []string { return slices.Clone(e.warnings) }

// ---- the node table ----

// find is find_node_by_nodeid: the local id is us, 0 is the device.
func (e *Engine) find(id NodeID) *node {
	if id == e.self {
		return e.us
	}
	if id == QdeviceNodeID {
		return &e.qdev
	}
	if i, ok := e.index(id); ok {
		return e.nodes[i]
	}
	return nil
}

func (e *Engine) index(id NodeID) (int, bool) {
	return slices.BinarySearchFunc(e.nodes, id, func(n *node, id NodeID) int {
		switch {
		case n.id < id:
			return -1
		case n.id > id:
			return 1
		}
		return 0
	})
}

// allocate adds a zeroed entry for id. When the table is full it recycles
// the first DEAD entry, or failing that the last one, as allocate_node does
// (C could even recycle the local node there; this never does).
func (e *Engine) allocate(id NodeID) *node {
	if len(e.nodes) >= maxTableNodes {
		victim := -1
		for i, n := range e.nodes {
			if n.state == NodestateDead {
				victim = i
				break
			}
		}
		if victim < 0 {
			for i := len(e.nodes) - 1; i >= 0; i-- {
				if e.nodes[i] != e.us {
					victim = i
					break
				}
			}
		}
		e.nodes = slices.Delete(e.nodes, victim, victim+1)
	}
	n := &node{id: id}
	i, _ := e.index(id)
	e.nodes = slices.Insert(e.nodes, i, n)
	return n
}

// ---- quorum arithmetic (§5.3) ----

// calculateQuorum is calculate_quorum: the strict majority of the highest
// expected votes or of the votes present, whichever is larger; it never
// drops below the current quorum unless allowDecrease, and two_node forces
// 1 while at most two voters are present. It returns the quorum before the
// uint8 truncation the caller applies, and the total votes.
func (e *Engine) calculateQuorum(allowDecrease bool, maxExpected uint32) (q, total uint32) {
	if e.allowDownscale && allowDecrease && maxExpected != 0 {
		maxExpected = max(e.evBarrier, maxExpected)
	}
	var highest, voters uint32
	for _, n := range e.nodes {
		if n.state == NodestateMember {
			highest = max(highest, n.expected)
			total += n.votes
			voters++
		}
	}
	// The device counts only where the local device casts a vote.
	if e.us.flags&flagQdevCastVote != 0 {
		total += e.qdev.votes
		voters++
	}
	if maxExpected > 0 {
		highest = maxExpected
	}
	q = max((highest+2)/2, (total+2)/2)
	if !allowDecrease {
		q = max(uint32(e.quorum), q)
	}
	if e.twoNode && voters <= 2 {
		q = 1
	}
	return q, total
}

// totalVotes is get_total_votes: the members' votes plus the configured
// device votes whether or not a device is registered or voting (it is
// what expected votes must at least be, §11 item 9).
func (e *Engine) totalVotes() (total, members uint32) {
	for _, n := range e.nodes {
		if n.state == NodestateMember {
			members++
			total += n.votes
		}
	}
	if e.qdev.votes != 0 {
		total += e.qdev.votes
		members++
	}
	return total, members
}

// recalculate is recalculate_quorum. byCurrentNodes (last_man_standing,
// allow_downscale) sets every member's expected votes to the number of
// members present.
func (e *Engine) recalculate(allowDecrease, byCurrentNodes bool) {
	total, members := e.totalVotes()
	if !byCurrentNodes {
		members = 0
	}
	// Expected votes only grow by themselves.
	if total > e.us.expected {
		e.us.expected = total
		e.expectedEvent()
	}
	if e.evTracking && e.us.expected > e.evTrackingBarrier {
		e.evTrackingBarrier = e.us.expected
		if !e.hypo {
			e.rd.PersistBarrier = e.evTrackingBarrier
		}
	}
	q, total := e.calculateQuorum(allowDecrease, members)
	e.quorum = uint8(q)
	e.updateNodeExpected(members)
	e.areWeQuorate(total)
}

// updateNodeExpected sets every member's expected votes (0: leave them).
func (e *Engine) updateNodeExpected(v uint32) {
	if v == 0 {
		return
	}
	for _, n := range e.nodes {
		if n.state == NodestateMember {
			n.expected = v
		}
	}
}

// areWeQuorate is are_we_quorate.
func (e *Engine) areWeQuorate(total uint32) {
	if e.wfa && e.wfaStatus {
		if total != e.us.expected {
			e.logf(LevelNotice, "Waiting for all cluster members. Current votes: %d expected_votes: %d",
				int32(total), int32(e.us.expected)) // %d of unsigned values in C
			// Waiting is only ever armed while inquorate, so nothing
			// changes for the clients here.
			e.quorate = false
			return
		}
		e.setWFAStatus(false)
	}
	quorate := uint32(e.quorum) <= total
	if quorate {
		e.rememberTieBreakers()
	}
	// ATB: exactly half the expected votes (integer division), fewer nodes
	// lost than the quorum (so the other side cannot be quorate), and the
	// tie-breaker on our side. C compares int (entries difference) with the
	// uint8 quorum promoted to int: a signed comparison.
	if e.atb != atbNone && total == e.us.expected/2 &&
		len(e.prevMembers)-len(e.members) < int(e.quorum) && e.checkATB() {
		quorate = true
	}
	if e.qdevMasterWins && !quorate && e.checkQdevMaster() {
		quorate = true
	}
	e.quorate = quorate
	if quorate {
		e.us.flags |= flagQuorate
	} else {
		e.us.flags &^= flagQuorate
	}
	// Losing quorum re-arms wait_for_all (S11).
	if e.wfa {
		e.setWFAStatus(!quorate)
	}
	if !e.inTransition() {
		e.notify(false)
	}
}

// rememberTieBreakers is get_lowest_node_id + get_highest_node_id, with
// C's signed int comparisons.
func (e *Engine) rememberTieBreakers() {
	lo, hi := int32(e.self), int32(e.self)
	for _, n := range e.nodes {
		if n.state != NodestateMember {
			continue
		}
		lo = min(lo, int32(n.id))
		hi = max(hi, int32(n.id))
	}
	e.lowestID, e.highestID = lo, hi
}

// memberWithID reports whether a MEMBER entry has the (C int) id.
func (e *Engine) memberWithID(id int32) bool {
	for _, n := range e.nodes {
		if n.state == NodestateMember && int32(n.id) == id {
			return true
		}
	}
	return false
}

// checkATB is check_auto_tie_breaker. LOWEST/HIGHEST look for the node
// remembered from the last quorate moment in the table; LIST walks the list
// in order and grants only if no listed node before the first present one
// was in the previous membership (it could be on the other side).
func (e *Engine) checkATB() bool {
	switch e.atb {
	case atbLowest:
		return e.memberWithID(e.lowestID)
	case atbHighest:
		return e.memberWithID(e.highestID)
	}
	for i, id := range e.atbList {
		if !slices.Contains(e.members, NodeID(id)) {
			continue
		}
		for _, before := range e.atbList[:i] {
			if slices.Contains(e.prevMembers, NodeID(before)) {
				return false
			}
		}
		return true
	}
	return false
}

// checkQdevMaster: some member's device declared master_wins and votes.
func (e *Engine) checkQdevMaster() bool {
	for _, n := range e.nodes {
		if n.state == NodestateMember && n.flags&flagQdevMasterWins != 0 && n.flags&flagQdevCastVote != 0 {
			return true
		}
	}
	return false
}

func (e *Engine) setWFAStatus(on bool) {
	e.wfaStatus = on
	if on {
		e.us.flags |= flagWFAStatus
	} else {
		e.us.flags &^= flagWFAStatus
	}
}

// ---- message handlers (§5.4) ----

// onNodeinfo is message_handler_req_exec_votequorum_nodeinfo.
func (e *Engine) onNodeinfo(from NodeID, m message) {
	n := e.find(m.nodeid)
	newNode := n == nil
	if newNode {
		n = e.allocate(m.nodeid)
	}
	oldVotes, oldExpected, oldFlags, oldState := n.votes, n.expected, n.flags, n.state
	if newNode {
		oldVotes, oldExpected, oldFlags, oldState = 0, 0, 0, NodestateDead
	}
	allowDecrease, byNode := false, false

	if m.nodeid == QdeviceNodeID {
		// Device votes are one cluster-wide number: an inquorate node takes
		// a quorate node's word for it, otherwise the larger value wins.
		if s := e.find(from); !e.quorate && s != nil && s.flags&flagQuorate != 0 {
			n.votes = m.votes
		} else {
			n.votes = max(n.votes, m.votes)
		}
	} else {
		n.flags = m.flags
		n.votes = m.votes
		n.state = NodestateMember
		if n.flags&flagLeaving != 0 {
			n.state = NodestateLeaving
			allowDecrease, byNode = true, true
		}
		// An inquorate node adopts a quorate node's expected votes: this
		// is how a rebooted node learns a value lowered by LMS or
		// setexpected.
		if !e.quorate && n.flags&flagQuorate != 0 {
			allowDecrease = true
			e.us.expected = m.expected
		}
		if n.flags&flagQuorate != 0 || e.evTracking {
			n.expected = m.expected
		} else {
			n.expected = e.us.expected
		}
		if e.lms && n.votes > 1 {
			// The message is Corosync's, whose C string literal lacks the
			// space between "all" and "cluster"; we print the words.
			e.logf(slog.LevelWarn, "Last Man Standing feature is supported only when all cluster nodes votes are set to 1. Disabling LMS.")
			e.lms = false
			e.lmsTimer = time.Time{}
		}
	}
	if newNode || m.nodeid == e.self || n.flags&flagFirst != 0 ||
		oldVotes != n.votes || oldExpected != n.expected || oldFlags != n.flags || oldState != n.state {
		e.recalculate(allowDecrease, byNode)
	}
	// A node joining a quorate partition that is not itself waiting does
	// not wait for all.
	if e.wfa && n.flags&flagWFAStatus == 0 && n.flags&flagQuorate != 0 {
		e.setWFAStatus(false)
	}
}

// RECONFIGURE parameters.
const (
	reconfExpectedVotes = 1
	reconfNodeVotes     = 2
	reconfCancelWFA     = 3
)

// onReconfigure is message_handler_req_exec_votequorum_reconfigure.
func (e *Engine) onReconfigure(m message) {
	switch m.param {
	case reconfExpectedVotes:
		e.updateNodeExpected(m.value)
		e.expectedEvent()
		e.evBarrier = m.value
		if e.evTracking {
			e.us.expected = max(e.us.expected, e.evTrackingBarrier)
		}
		e.recalculate(true, false)
	case reconfNodeVotes:
		n := e.find(m.nodeid)
		if n == nil {
			return
		}
		n.votes = m.value
		e.recalculate(true, false)
	case reconfCancelWFA:
		e.setWFAStatus(false)
		e.logf(slog.LevelInfo, "wait_for_all_status reset by user on node %d.", uint32(m.nodeid))
		e.recalculate(false, false)
	}
}

// QDEVICE_REG operations.
const (
	qdevOpUnregister = 0
	qdevOpRegister   = 1
)

// onQdevReg is message_handler_req_exec_votequorum_qdevice_reg. The local
// node's own REGISTER is the deferred answer to QdeviceRegister; note that
// the re-announcement every sync step sends also counts as that answer if a
// registration is pending, as in Corosync.
func (e *Engine) onQdevReg(from NodeID, m message) {
	switch m.op {
	case qdevOpRegister:
		if from != e.self {
			if e.qdevName == "" {
				e.qdevName = m.name
			}
			return
		}
		if e.us.flags&flagQdevRegistered != 0 {
			return
		}
		if !e.regPending {
			e.logf(slog.LevelWarn, "Unable to determine origin of the qdevice register call!")
			return
		}
		if e.qdevName == "" {
			e.qdevName = m.name
		}
		var err error
		if m.name == e.qdevName {
			e.us.flags |= flagQdevRegistered
			e.sendNodeinfo(QdeviceNodeID, false)
			e.sendNodeinfo(e.self, false)
		} else {
			e.logf(slog.LevelWarn, "A new qdevice with different name (new: %s old: %s) is trying to register!", m.name, e.qdevName)
			err = cs.ErrExist
		}
		e.reply(e.regToken, err)
		e.regPending, e.regToken = false, 0
	case qdevOpUnregister:
		for _, n := range e.nodes {
			if n.state == NodestateMember && n.flags&flagQdevRegistered != 0 {
				return
			}
		}
		e.qdevName = ""
	}
}

// onQdevReconfigure renames the device where the old name matches.
func (e *Engine) onQdevReconfigure(m message) {
	if m.name == e.qdevName {
		e.qdevName = m.newname
	}
}

// deliver dispatches one message.
func (e *Engine) deliver(from NodeID, payload []byte) {
	m, ok := decode(payload)
	if !ok {
		e.logf(slog.LevelDebug, "ignoring a malformed message of %d bytes from node %d", len(payload), uint32(from))
		return
	}
	switch m.kind {
	case msgNodeinfo:
		e.onNodeinfo(from, m)
	case msgReconfigure:
		e.onReconfigure(m)
	case msgQdevReg:
		e.onQdevReg(from, m)
	case msgQdevReconfigure:
		e.onQdevReconfigure(m)
	}
}

// ---- output ----

// send queues a message; sync messages belong to the sync step of the
// latest Nodelist ring.
func (e *Engine) send(b []byte, sync bool) {
	if e.hypo {
		return
	}
	if sync {
		e.syncOut = append(e.syncOut, b)
	} else {
		e.normalOut = append(e.normalOut, b)
	}
}

// sendNodeinfo is votequorum_exec_send_nodeinfo: the entry's state as it
// is now (the receiver, us included, takes these values, so a flag that
// changes before delivery is briefly overwritten as in Corosync).
func (e *Engine) sendNodeinfo(id NodeID, sync bool) {
	n := e.find(id)
	if n == nil {
		return
	}
	e.send(encodeNodeinfo(id, n.votes, n.expected, n.flags), sync)
}

// nodeinfoDuringWait is where a NODEINFO sent while the sync step waits for
// the device goes: into the sync step, so it is delivered before the view
// is installed, as Corosync's barrier would order it.
func (e *Engine) nodeinfoDuringWait() bool { return e.syncInProgress && e.syncWait }

func (e *Engine) logf(level slog.Level, format string, args ...any) {
	if e.hypo {
		return
	}
	e.rd.Logs = append(e.rd.Logs, Log{Level: level, Msg: fmt.Sprintf(format, args...)})
}

func (e *Engine) event(ev Event) {
	if e.hypo {
		return
	}
	e.rd.Events = append(e.rd.Events, ev)
}

func (e *Engine) reply(token uint64, err error) {
	if e.hypo {
		return
	}
	e.rd.Replies = append(e.rd.Replies, Reply{Token: token, Err: err})
}

func (e *Engine) expectedEvent() {
	e.event(Event{Kind: EventExpected, Expected: e.us.expected})
}

// nodeList is the quorum event's node list.
func (e *Engine) nodeList() []NodeState {
	l := make([]NodeState, 0, len(e.nodes)+1)
	for _, n := range e.nodes {
		l = append(l, NodeState{ID: n.id, State: n.state, Votes: n.votes})
	}
	if e.us.flags&flagQdevRegistered != 0 {
		l = append(l, NodeState{ID: QdeviceNodeID, State: e.qdev.state})
	}
	return l
}

// notify is quorum_callback + the quorum notification: it tells clients
// the reported quorate state when it changed, or always when force (the end
// of a view change). The primary/non-primary line is logged on change only,
// the member list every time, as vsf_quorum does.
func (e *Engine) notify(force bool) {
	if e.hypo {
		return
	}
	r := e.reported()
	if !force && r == e.lastReported {
		return
	}
	if r != e.lastReported {
		if r {
			e.logf(LevelNotice, "This node is within the primary component and will provide service.")
		} else {
			e.logf(LevelNotice, "This node is within the non-primary component and will NOT provide any services.")
		}
	}
	e.lastReported = r
	e.logf(LevelNotice, "%s", viewList("Members", e.members))
	e.event(Event{Kind: EventQuorum, Quorate: r, Ring: e.ring, Nodes: e.nodeList()})
}

// viewList formats "Members[3]: 1 2 3" as vsf_quorum's log_view_list.
func viewList(what string, ids []NodeID) string {
	var b strings.Builder
	b.WriteString(what)
	b.WriteByte('[')
	b.WriteString(strconv.Itoa(len(ids)))
	b.WriteString("]:")
	for _, id := range ids {
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}

// Output takes the messages to broadcast.
func (e *Engine) Output() (sync, normal [][]byte) {
	sync, normal = e.syncOut, e.normalOut
	e.syncOut, e.normalOut = nil, nil
	return sync, normal
}

// Ready drains what the engine produced for clients and the operator.
func (e *Engine) Ready() Ready {
	rd := e.rd
	e.rd = Ready{}
	return rd
}
