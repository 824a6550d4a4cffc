// Package service runs replicated services (quorum, groups) on the
// membership engine's views and ordered delivery. A service is a pure state
// machine like the engine itself; the Host multiplexes the services over the
// engine's one ordered channel (one leading byte per service), drives their
// sync step (hold the barrier until each is ready), and ticks them. The
// agent and the simulator both drive services through a Host, so what the
// simulator proves about a service holds for the agent too.
package service

import (
	"time"

	"github.com/conclave/conclave/internal/membership"
)

// NodeID and RingID are the membership engine's.
type (
	NodeID = membership.NodeID
	RingID = membership.RingID
)

// Service is a replicated service. Every member sees every view change and
// each of the service's messages in the same total order. All calls happen
// under the driver's lock, so a service needs no locking of its own; it must
// not block, and must take time only from its arguments.
type Service interface {
	// Name is for logs.
	Name() string
	// Nodelist starts the sync step of a new view (the nodelist event).
	Nodelist(now time.Time, ring RingID, members []NodeID)
	// Deliver is one of the service's messages in total order; sync
	// messages were sent during the sync step of ring. Repeats (messages
	// this node delivered in an earlier view) are left out, unless the
	// service is a RepeatDeliverer.
	Deliver(now time.Time, ring RingID, from NodeID, payload []byte, sync bool)
	// Installed says every member finished the sync step of ring.
	Installed(now time.Time, ring RingID, members []NodeID)
	// Tick lets time pass. The host calls it at NextTick and after every
	// round of input, so a service may re-evaluate anything there.
	Tick(now time.Time)
	// NextTick is when the service wants Tick at the latest (zero: never).
	NextTick() time.Time
	// Output takes the messages the service wants broadcast. Sync
	// messages belong to the sync step of the last Nodelist ring: the host
	// sends them while that step runs and drops them after it.
	Output() (sync, normal [][]byte)
	// SyncReady says the service sent everything it has for ring's sync
	// step; the barrier that installs the view waits for every service.
	SyncReady(ring RingID) bool
}

// RepeatDeliverer is a Service that wants repeats too. The membership
// engine marks a delivery a repeat when this node already delivered the
// message in an earlier view (the sender's partition lost it and re-sent
// it); the Host drops repeats, which is right for a service whose state
// is the one that delivered the message the first time. A service whose
// state can be replaced at a view change (by another partition's copy,
// which may not hold the message) needs every delivery, and deduplicates
// them itself against what its state has applied.
type RepeatDeliverer interface {
	Service
	// DeliverRepeats says Deliver is also to be called for repeats.
	DeliverRepeats() bool
}
