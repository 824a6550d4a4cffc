package agent

import (
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/membership"
)

// Service is a replicated service running on the agent's views and ordered
// delivery (the quorum and group services are two). Each service has its own
// byte on the ordered channel; it sees every view change and each of its own
// messages, in the same total order on every member. All calls happen with
// the agent's lock held, so a service needs no locking of its own, and must
// not block.
type Service interface {
	// Name is for logs.
	Name() string
	// Nodelist starts the sync step of a new view: the service returns the
	// state it must exchange before the view is installed (nil for none).
	// Those messages are delivered, marked sync, to every member before
	// Installed.
	Nodelist(ring membership.RingID, members []membership.NodeID) (sync [][]byte)
	// Deliver is one of the service's messages in total order.
	Deliver(ring membership.RingID, from membership.NodeID, payload []byte, sync bool, at time.Time)
	// Installed says every member finished the sync step of ring.
	Installed(ring membership.RingID, members []membership.NodeID)
}

// svcMessages is the byte of the built-in messages service (Publish and
// Subscribe); registered services follow.
const svcMessages = 1

// messages is the built-in service behind Publish and Subscribe. It batches
// the deliveries of one round of engine output, so subscribers get one
// batch per round rather than one channel send per message.
type messages struct {
	a     *Agent
	batch []*clientpb.Delivery
	bytes uint64
}

func (*messages) Name() string { return "messages" }

func (*messages) Nodelist(membership.RingID, []membership.NodeID) [][]byte { return nil }

func (*messages) Installed(membership.RingID, []membership.NodeID) {}

func (m *messages) Deliver(ring membership.RingID, from membership.NodeID, payload []byte, sync bool, at time.Time) {
	if sync {
		return
	}
	m.batch = append(m.batch, &clientpb.Delivery{From: uint32(from), RingId: ringPB(ring), Payload: payload, UnixNano: at.UnixNano()})
	m.bytes += uint64(len(payload))
}

// flush hands the batch to the subscribers.
func (m *messages) flush() {
	if len(m.batch) > 0 {
		m.a.deliver(m.batch, m.bytes)
		m.batch, m.bytes = nil, 0
	}
}
