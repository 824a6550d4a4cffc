// Package quorum is Conclave's votequorum: the vote-counting quorum service
// of Corosync 3.1.x (exec/votequorum.c), re-implemented as a pure state
// machine that runs as a service.Service on the membership engine's views.
//
// Every node keeps its own table of the nodes it has heard from (votes,
// expected votes, state, flags) and computes quorum from that table alone;
// nodes exchange state only through totally ordered broadcasts (NODEINFO,
// RECONFIGURE, QDEVICE_REG, QDEVICE_RECONFIGURE). Because every member sees
// the same messages in the same order, every member of a partition reaches
// the same answer without a vote round. The rules, including the odd ones,
// are Corosync's: operators and tools (pacemaker, corosync-qdevice,
// corosync-quorumtool) depend on the exact numbers, so this package follows
// docs/spec votequorum.md §5 to the letter, quirks included, and says so
// where it does.
//
// The engine does no I/O and reads no clock: time comes in as arguments,
// timers are deadlines that NextTick reports and Tick fires, messages go out
// through Output, and everything a client should see (events, deferred
// replies, log lines, the expected-votes barrier to persist) comes out of
// Ready. The agent and the simulator drive it the same way.
//
// Beyond Corosync, an optional quorum lease (Config.Leases) lets a node stop
// claiming quorum as soon as it can no longer be sure the others have not
// moved on without it, and makes a node hold back a view change that drops
// a peer it promised to wait for; see Leases.
package quorum

import (
	"log/slog"
	"time"

	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/membership"
)

// NodeID and RingID are the membership engine's.
type (
	NodeID = membership.NodeID
	RingID = membership.RingID
)

// The VOTEQUORUM_INFO_* flags of votequorum.h, with the C values, so a C
// library can pass them through unchanged.
const (
	InfoTwoNode           = 1
	InfoQuorate           = 2
	InfoWaitForAll        = 4
	InfoLastManStanding   = 8
	InfoAutoTieBreaker    = 16
	InfoAllowDownscale    = 32
	InfoQdeviceRegistered = 64
	InfoQdeviceAlive      = 128
	InfoQdeviceCastVote   = 256
	InfoQdeviceMasterWins = 512
)

// Node states (VOTEQUORUM_NODESTATE_*). A node never leaves the table: a
// node that was a member and is not in the new view is DEAD, one that
// announced a clean shutdown (allow_downscale) is LEAVING.
const (
	NodestateMember  = 1
	NodestateDead    = 2
	NodestateLeaving = 3
)

// QdeviceNodeID is the pseudo node id of the quorum device. GetInfo(0)
// means the local node, but SetVotes(0, …) changes the device's votes (as in
// Corosync, §11 item 1).
const QdeviceNodeID = 0

// QdeviceMaxNameLen is the C buffer size of a device name; usable names are
// 1..QdeviceMaxNameLen-1 bytes.
const QdeviceMaxNameLen = 255

// Defaults of the timing options, as in votequorum.c.
const (
	// DefaultLMSWindow is quorum.last_man_standing_window: how long a
	// membership must be stable before last_man_standing lowers expected
	// votes.
	DefaultLMSWindow = 10000 * time.Millisecond
	// DefaultQdeviceTimeout is quorum.device.timeout: the longest gap between
	// two polls of the quorum device before it is considered dead.
	DefaultQdeviceTimeout = 10000 * time.Millisecond
	// DefaultQdeviceSyncTimeout is quorum.device.sync_timeout: how long a
	// view change waits for the device to poll with the new ring id.
	DefaultQdeviceSyncTimeout = 30000 * time.Millisecond
)

// Log levels Corosync uses that slog has no name for.
const (
	LevelNotice = slog.LevelInfo + 2  // LOGSYS_LEVEL_NOTICE
	LevelCrit   = slog.LevelError + 4 // LOGSYS_LEVEL_CRIT
)

// Info is struct votequorum_info: what votequorum_getinfo returns.
type Info struct {
	NodeID            uint32
	NodeState         uint32
	NodeVotes         uint32
	NodeExpectedVotes uint32
	HighestExpected   uint32
	TotalVotes        uint32
	Quorum            uint32
	Flags             uint32
	QdeviceVotes      uint32
	QdeviceName       string
}

// NodeVotes is one nodelist entry as the quorum engine needs it.
type NodeVotes struct {
	ID    NodeID
	Votes uint32 // quorum_votes as configured (the config parser defaults it to 1)
}

// Leases is the quorum lease, implemented by the membership engine. A lease
// is a promise between two nodes: "I will not install a view without you
// before this time". While a node holds a lease from every other member it
// knows no other partition can have formed, so it may keep claiming quorum;
// when a lease runs out it answers as if the peer were gone.
type Leases interface {
	// LeaseExpiry is until when peer has promised not to install a view
	// without us (our clock). Zero: no lease.
	LeaseExpiry(peer NodeID) time.Time
	// GrantExpiry is until when we promised peer not to install a view
	// without it. Zero: none, or the peer is known dead.
	GrantExpiry(peer NodeID) time.Time
}

// Config is what the engine needs to start.
type Config struct {
	// Self is the local node id (non-zero: 0 is the quorum device).
	Self NodeID
	// Nodes is the nodelist (nodeid, quorum_votes); empty = no nodelist, in
	// which case quorum.expected_votes is required. The local node counts
	// as "having a nodelist" only if Self is in it (corosync's
	// nodelist.local_node_pos).
	Nodes []NodeVotes
	// Quorum is the quorum section; its Line map gives error messages a
	// line number.
	Quorum config.Quorum
	// Path is the configuration file, for "path:line: key: message".
	Path string
	// EVBarrier is the stored expected_votes_tracking barrier (the agent's
	// ev_tracking file; 0 = none or absent). Only read when
	// expected_votes_tracking (or allow_downscale) is on.
	EVBarrier uint32
	// Leases turns the quorum lease on (nil = off, plain Corosync).
	Leases Leases
	// LeaseTimeout is the lease length the membership engine uses (the
	// token timeout); informative, reported by Status.
	LeaseTimeout time.Duration
}

// EventKind says what an Event reports.
type EventKind int

// The three votequorum callbacks.
const (
	// EventQuorum: the quorate state (at the end of every view change, and
	// whenever it flips outside one).
	EventQuorum EventKind = iota + 1
	// EventNodelist: a new membership, at the start of its sync step.
	EventNodelist
	// EventExpected: the local expected votes changed (raised by total
	// votes, or set by setexpected); not sent when last_man_standing or
	// allow_downscale lower them, as in Corosync.
	EventExpected
)

// String names the kind, for logs and test failures.
func (k EventKind) String() string {
	switch k {
	case EventQuorum:
		return "quorum"
	case EventNodelist:
		return "nodelist"
	case EventExpected:
		return "expected"
	}
	return "unknown"
}

// NodeState is one entry of a quorum event's node list.
type NodeState struct {
	ID    NodeID
	State uint32
	Votes uint32 // the node's votes (0 for the device entry); a Conclave addition
}

// Event is a client-facing notification, in the order it happened.
type Event struct {
	Kind    EventKind
	Quorate bool        // EventQuorum
	Ring    RingID      // EventQuorum and EventNodelist
	Nodes   []NodeState // EventQuorum: every node of the local table ascending, + {0,0} if a device is registered locally
	Members []NodeID    // EventNodelist: the new membership, in the order the membership engine gave it
	// Expected is the new local expected votes (EventExpected).
	Expected uint32
}

// Reply is the deferred answer to a QdeviceRegister that returned pending.
type Reply struct {
	Token uint64
	Err   error // nil = CS_OK
}

// Log is a line for the operator's log (the agent adds the subsystem
// prefix, the node id and the ring id).
type Log struct {
	Level slog.Level
	Msg   string
}

// Ready is what the engine produced for the outside since the last call.
type Ready struct {
	// PersistBarrier, when non-zero, is a new expected_votes_tracking
	// barrier: write it durably (fdatasync) BEFORE delivering the events or
	// sending anything else, so that a crash cannot forget an expected
	// votes value some client has already acted on.
	PersistBarrier uint32
	// Events go to the trackers in this order (nodelist before quorum).
	Events []Event
	// Replies answer pending QdeviceRegister calls.
	Replies []Reply
	// Logs are the operator-visible log lines (§5.14 and warnings).
	Logs []Log
}

// NodeInfo is one row of Status.Nodes.
type NodeInfo struct {
	ID       NodeID
	State    uint32
	Votes    uint32
	Expected uint32
	// Flags are the Info* flags GetInfo would report for this node.
	Flags uint32
}

// Status is the engine's state for the CLI and the agent's status call.
type Status struct {
	// Quorate is the reported answer (votequorum AND the lease check);
	// VotequorumQuorate is Corosync's answer alone.
	Quorate, VotequorumQuorate bool
	// WaitForAllStatus is runtime.votequorum.wait_for_all_status: the
	// partition is still waiting to see all expected votes at once.
	WaitForAllStatus bool
	Ring             RingID
	Members          []NodeID
	Nodes            []NodeInfo // every known node, dead and leaving ones included, ascending
	Quorum           uint32
	ExpectedVotes    uint32 // the local node's
	HighestExpected  uint32
	TotalVotes       uint32
	Flags            uint32 // GetInfo(0).Flags
	QdeviceName      string
	QdeviceVotes     uint32
	// QdeviceCanOperate is false when a configuration conflict disabled the
	// device; QdeviceMasterWins is the global master_wins switch.
	QdeviceCanOperate, QdeviceMasterWins bool
	// EVBarrier is runtime.votequorum.ev_barrier (the floor allow_downscale
	// keeps); EVTrackingBarrier the persisted expected_votes_tracking value.
	EVBarrier, EVTrackingBarrier uint32
	// LowestNodeID and HighestNodeID are the tie-breaker candidates
	// remembered from the last time this node was quorate (-1 = never).
	LowestNodeID, HighestNodeID int32
	// ATBType is runtime.votequorum.atb_type: 0 none, 1 lowest, 2 highest, 3 list.
	ATBType uint32
	// LMSTimer is when last_man_standing next lowers expected votes (zero: not armed).
	LMSTimer time.Time
	// LeaseOK: every other member's lease is valid (always true without leases).
	LeaseOK      bool
	LeaseTimeout time.Duration
	// HeldRing and HoldUntil describe a view change held back by a lease
	// this node granted (HoldUntil zero: none).
	HeldRing  RingID
	HoldUntil time.Time
	// SyncInProgress: a view's sync step started and is not installed yet.
	SyncInProgress bool
}
