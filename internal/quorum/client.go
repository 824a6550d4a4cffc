package quorum

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/conclave/conclave/cs"
)

// cName is what a C daemon sees of a Go string: everything up to the first
// NUL byte.
func cName(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// validName is libvotequorum's check, done here because a Go client talks
// to the engine without that library: 1..254 bytes.
func validName(s string) bool { return len(s) > 0 && len(s) < QdeviceMaxNameLen }

// flagsFor is the Info flags getinfo reports for n: the cluster-wide
// options, the reported quorate state, and n's own device flags.
func (e *Engine) flagsFor(n *node, quorate bool) uint32 {
	var f uint32
	if e.twoNode {
		f |= InfoTwoNode
	}
	if quorate {
		f |= InfoQuorate
	}
	if e.wfa {
		f |= InfoWaitForAll
	}
	if e.lms {
		f |= InfoLastManStanding
	}
	if e.atb != atbNone {
		f |= InfoAutoTieBreaker
	}
	if e.allowDownscale {
		f |= InfoAllowDownscale
	}
	if n.flags&flagQdevRegistered != 0 {
		f |= InfoQdeviceRegistered
	}
	if n.flags&flagQdevAlive != 0 {
		f |= InfoQdeviceAlive
	}
	if n.flags&flagQdevCastVote != 0 {
		f |= InfoQdeviceCastVote
	}
	if n.flags&flagQdevMasterWins != 0 {
		f |= InfoQdeviceMasterWins
	}
	return f
}

// info builds votequorum_info for n.
func (e *Engine) info(n *node, quorate bool) Info {
	var highest, total uint32
	for _, m := range e.nodes {
		if m.state == NodestateMember {
			highest = max(highest, m.expected)
			total += m.votes
		}
	}
	// The device votes count if n's device casts a vote (§4.6).
	if n.flags&flagQdevCastVote != 0 {
		total += e.qdev.votes
	}
	return Info{
		NodeID:            uint32(n.id),
		NodeState:         n.state,
		NodeVotes:         n.votes,
		NodeExpectedVotes: n.expected,
		HighestExpected:   highest,
		TotalVotes:        total,
		Quorum:            uint32(e.quorum),
		Flags:             e.flagsFor(n, quorate),
		QdeviceVotes:      e.qdev.votes,
		QdeviceName:       e.qdevName,
	}
}

// GetInfo is votequorum_getinfo: 0 means the local node. An unknown node
// gives cs.ErrNotExist and a zeroed Info with only NodeID set (Corosync
// returns stack garbage there).
func (e *Engine) GetInfo(now time.Time, nodeid uint32) (Info, error) {
	e.now = now
	id := NodeID(nodeid)
	if id == QdeviceNodeID {
		id = e.self
	}
	n := e.find(id)
	if n == nil {
		return Info{NodeID: nodeid}, cs.ErrNotExist
	}
	return e.info(n, e.reported()), nil
}

// SetExpected is votequorum_setexpected (§4.7): expected votes may not go
// below the votes present, and a quorate cluster may not be made
// inquorate. allow_downscale is ignored for the check. On success every
// member's expected votes are set locally and a RECONFIGURE tells the
// cluster. (The CLI refuses 0 before it gets here; the engine rejects it
// only because it is below the total.)
func (e *Engine) SetExpected(now time.Time, expected uint32) error {
	e.now = now
	ad := e.allowDownscale
	e.allowDownscale = false
	q, total := e.calculateQuorum(true, expected)
	e.allowDownscale = ad
	if expected < total || (e.quorate && q > total) {
		return cs.ErrInvalidParam
	}
	e.updateNodeExpected(expected)
	e.send(encodeReconfigure(e.self, expected, reconfExpectedVotes), false)
	return nil
}

// SetVotes is votequorum_setvotes (§4.8); nodeid 0 is the quorum device,
// not the local node. The new value is tried in place and kept on success
// (restored on failure) before the cluster is told.
func (e *Engine) SetVotes(now time.Time, nodeid, votes uint32) error {
	e.now = now
	n := e.find(NodeID(nodeid))
	if n == nil {
		return cs.ErrNameNotFound
	}
	saved := n.votes
	n.votes = votes
	q, total := e.calculateQuorum(true, 0)
	if q < total/2 || q > total {
		n.votes = saved
		return cs.ErrInvalidParam
	}
	e.send(encodeReconfigure(NodeID(nodeid), votes, reconfNodeVotes), false)
	return nil
}

// CancelWaitForAll is quorum.cancel_wait_for_all: every node stops
// waiting for all expected votes.
func (e *Engine) CancelWaitForAll(now time.Time) error {
	e.now = now
	e.send(encodeReconfigure(e.self, 0, reconfCancelWFA), false)
	return nil
}

// Leave announces a clean shutdown: with allow_downscale the others lower
// expected votes to the members that remain (never below the configured
// floor). It reports whether a message was queued; without allow_downscale
// a leaving node is just a failed one.
func (e *Engine) Leave(now time.Time) bool {
	e.now = now
	if !e.allowDownscale {
		return false
	}
	e.us.flags |= flagLeaving
	e.sendNodeinfo(e.self, false)
	return true
}

// QdeviceRegister is votequorum_qdevice_register (§4.12). A new
// registration is answered later, when its QDEVICE_REG comes back in total
// order (pending = true; the answer is a Ready.Replies entry with token).
func (e *Engine) QdeviceRegister(now time.Time, name string, token uint64) (pending bool, err error) {
	e.now = now
	name = cName(name)
	if !validName(name) {
		return false, cs.ErrInvalidParam
	}
	if !e.qdevCanOperate {
		e.logf(slog.LevelInfo, "Registration of quorum device is disabled by incorrect corosync.conf. See logs for more information")
		return false, cs.ErrAccess
	}
	if e.us.flags&flagQdevRegistered != 0 {
		if name == e.qdevName {
			return false, nil
		}
		e.logf(slog.LevelWarn, "A new qdevice with different name (new: %s old: %s) is trying to re-register!", name, e.qdevName)
		return false, cs.ErrExist
	}
	if e.regPending {
		e.logf(slog.LevelWarn, "Registration request already in progress")
		return false, cs.ErrTryAgain
	}
	e.regPending, e.regToken = true, token
	e.send(encodeQdevReg(qdevOpRegister, name), false)
	return true, nil
}

// QdeviceUnregister is votequorum_qdevice_unregister (§4.13).
func (e *Engine) QdeviceUnregister(now time.Time, name string) error {
	e.now = now
	name = cName(name)
	if !validName(name) {
		return cs.ErrInvalidParam
	}
	if e.us.flags&flagQdevRegistered == 0 {
		return cs.ErrNotExist
	}
	if name != e.qdevName {
		return cs.ErrInvalidParam
	}
	if !e.qdevTimer.IsZero() {
		e.qdevTimer = time.Time{}
		e.syncWait = false
	}
	e.us.flags &^= flagQdevRegistered | flagQdevAlive | flagQdevCastVote | flagQdevMasterWins
	e.sendNodeinfo(e.self, false)
	e.send(encodeQdevReg(qdevOpUnregister, name), false)
	return nil
}

// QdeviceUpdate is votequorum_qdevice_update (§4.14): a cosmetic rename.
func (e *Engine) QdeviceUpdate(now time.Time, oldname, newname string) error {
	e.now = now
	oldname, newname = cName(oldname), cName(newname)
	if !validName(oldname) || !validName(newname) {
		return cs.ErrInvalidParam
	}
	if e.us.flags&flagQdevRegistered == 0 {
		return cs.ErrNotExist
	}
	if oldname != e.qdevName {
		return cs.ErrInvalidParam
	}
	e.send(encodeQdevReconfigure(oldname, newname), false)
	return nil
}

// QdevicePoll is votequorum_qdevice_poll (§4.15): the device says it is
// alive and whether it votes, for the view ring. A poll for any other ring
// than the last one started is stale (cs.ErrMessageError) and ignored.
func (e *Engine) QdevicePoll(now time.Time, name string, castVote bool, ring RingID) error {
	e.now = now
	name = cName(name)
	if !validName(name) {
		return cs.ErrInvalidParam
	}
	if !e.qdevCanOperate {
		return cs.ErrAccess
	}
	if e.us.flags&flagQdevRegistered == 0 {
		return cs.ErrNotExist
	}
	if ring != e.ring {
		e.logf(slog.LevelDebug, "Received poll ring id (%s) != last sync ring id (%s). Ignoring poll call.", ring, e.ring)
		return cs.ErrMessageError
	}
	if name != e.qdevName {
		return cs.ErrInvalidParam
	}
	old := e.us.flags
	e.us.flags |= flagQdevAlive
	if castVote {
		e.us.flags |= flagQdevCastVote
	} else {
		e.us.flags &^= flagQdevCastVote
	}
	if e.us.flags != old {
		e.sendNodeinfo(e.self, e.nodeinfoDuringWait())
	}
	e.qdevTimer = now.Add(e.qdevTimeout)
	e.syncWait = false
	return nil
}

// QdeviceMasterWins is votequorum_qdevice_master_wins (§4.16): sets the
// local MASTER_WINS flag and the global switch.
func (e *Engine) QdeviceMasterWins(now time.Time, name string, allow bool) error {
	e.now = now
	name = cName(name)
	if !validName(name) {
		return cs.ErrInvalidParam
	}
	if !e.qdevCanOperate {
		return cs.ErrAccess
	}
	if e.us.flags&flagQdevRegistered == 0 {
		return cs.ErrNotExist
	}
	if name != e.qdevName {
		return cs.ErrInvalidParam
	}
	old := e.us.flags
	if allow {
		e.us.flags |= flagQdevMasterWins
	} else {
		e.us.flags &^= flagQdevMasterWins
	}
	if e.us.flags != old {
		e.sendNodeinfo(e.self, false)
	}
	e.qdevMasterWins = allow
	return nil
}

// Snapshot is what trackstart(CURRENT|CHANGES) sends first: the nodelist
// event of the last view started and the current quorum event.
func (e *Engine) Snapshot(now time.Time) (nodelist Event, quorum Event) {
	e.now = now
	nodelist = Event{Kind: EventNodelist, Ring: e.ring, Members: slices.Clone(e.members)}
	quorum = Event{Kind: EventQuorum, Quorate: e.reported(), Ring: e.ring, Nodes: e.nodeList()}
	return nodelist, quorum
}

// Status reports the engine's state.
func (e *Engine) Status(now time.Time) Status {
	e.now = now
	rep := e.reported()
	local := e.info(e.us, rep)
	s := Status{
		Quorate:           rep,
		VotequorumQuorate: e.quorate,
		WaitForAllStatus:  e.wfaStatus,
		Ring:              e.ring,
		Members:           slices.Clone(e.members),
		Quorum:            uint32(e.quorum),
		ExpectedVotes:     e.us.expected,
		HighestExpected:   local.HighestExpected,
		TotalVotes:        local.TotalVotes,
		Flags:             local.Flags,
		QdeviceName:       e.qdevName,
		QdeviceVotes:      e.qdev.votes,
		QdeviceCanOperate: e.qdevCanOperate,
		QdeviceMasterWins: e.qdevMasterWins,
		EVBarrier:         e.evBarrier,
		EVTrackingBarrier: e.evTrackingBarrier,
		LowestNodeID:      e.lowestID,
		HighestNodeID:     e.highestID,
		ATBType:           uint32(e.atb),
		LMSTimer:          e.lmsTimer,
		LeaseOK:           e.leaseOK(),
		LeaseTimeout:      e.cfg.LeaseTimeout,
		SyncInProgress:    e.syncInProgress,
	}
	if e.hold != nil {
		s.HeldRing, s.HoldUntil = e.hold.ring, e.hold.until
	}
	for _, n := range e.nodes {
		s.Nodes = append(s.Nodes, NodeInfo{ID: n.id, State: n.state, Votes: n.votes, Expected: n.expected, Flags: e.flagsFor(n, rep)})
	}
	return s
}
