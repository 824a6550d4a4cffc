package membership

import (
	"errors"
	"time"

	"github.com/conclave/conclave/api/peerpb"
)

// Errors returned by the engine's local calls.
var (
	// ErrQueueFull: the local send queue holds Config.SendQueue bytes; the
	// caller should wait for deliveries and retry (flow control).
	ErrQueueFull = errors.New("membership: send queue full")
	// ErrNotSyncing: a sync message was sent outside the sync step of a view.
	ErrNotSyncing = errors.New("membership: not in a sync step")
	// ErrLeft: the node has left the cluster.
	ErrLeft = errors.New("membership: node has left the cluster")
	// ErrTooLarge: a message is larger than the send queue.
	ErrTooLarge = errors.New("membership: message larger than the send queue")
)

// Outgoing is a message the driver must send.
type Outgoing struct {
	To NodeID
	// Link is the link to send on, chosen by the engine from link state.
	Link int
	Msg  *peerpb.Message
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds, in the order a view change produces them.
const (
	// EventNodelist starts a view: Ring and Members are the new view, every
	// message of the previous view has been delivered. Services now run
	// their sync step: broadcast their state with Broadcast(…, true) and
	// call SyncDone.
	EventNodelist EventKind = iota + 1
	// EventDeliver delivers one message in total order: Ring, From,
	// Payload, Sync (sent during the sync step), Repeat (this node already
	// delivered the message in an earlier view; services skip it).
	EventDeliver
	// EventInstalled: every member finished its sync step; the view is in
	// service. Joined and Left are relative to the previous installed view.
	EventInstalled
	// EventLink: the link Link to node Node went up or down.
	EventLink
	// EventHeldOut: Node flaps and is held out of views until Until.
	EventHeldOut
)

func (k EventKind) String() string {
	switch k {
	case EventNodelist:
		return "nodelist"
	case EventDeliver:
		return "deliver"
	case EventInstalled:
		return "installed"
	case EventLink:
		return "link"
	case EventHeldOut:
		return "held-out"
	}
	return "unknown"
}

// Event is something the engine tells the driver.
type Event struct {
	Kind    EventKind
	Ring    RingID
	Members []NodeID
	Joined  []NodeID
	Left    []NodeID
	From    NodeID
	Payload []byte
	Sync    bool
	Repeat  bool
	Node    NodeID
	Link    int
	Up      bool
	Until   time.Time
}

// Ready is the engine's output since the previous call to Ready. The driver
// must handle it in this order:
//
//  1. if PersistSeq is non-zero, store it durably (fsync) BEFORE anything
//     else: a ring id must never be used before its seq survives a crash;
//  2. send Messages;
//  3. hand Events to the services, in order (nodelist before deliveries of
//     the new view, before installed).
type Ready struct {
	PersistSeq uint64
	Messages   []Outgoing
	Events     []Event
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return r.PersistSeq == 0 && len(r.Messages) == 0 && len(r.Events) == 0
}
