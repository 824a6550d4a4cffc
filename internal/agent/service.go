package agent

import (
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/membership"
)

// The bytes that lead every payload on the ordered channel: the built-in
// messages service (Publish and Subscribe), then the hosted services.
const (
	svcMessages = 1
	svcFirst    = 2
)

// messages is the built-in service behind Publish and Subscribe. It batches
// the deliveries of one round of engine output, so subscribers get one
// batch per round rather than one channel send per message.
type messages struct {
	a     *Agent
	batch []*clientpb.Delivery
	bytes uint64
}

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
