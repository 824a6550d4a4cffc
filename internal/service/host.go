package service

import (
	"errors"
	"log/slog"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

// Engine is what a Host needs of the membership engine.
type Engine interface {
	Broadcast(payload []byte, sync bool) error
	SyncDone(ring RingID)
}

// Host drives a set of services on one membership engine. Service i owns
// byte First+i at the head of every payload on the ordered channel. The
// driver hands the Host every engine event (Event), then calls Pump once
// per round of input; Pump ticks the services, sends what they produced,
// and ends the sync step when every service is ready.
type Host struct {
	eng   Engine
	first byte
	svcs  []Service
	log   *slog.Logger

	syncing bool // between a nodelist event and SyncDone
	ring    RingID
	queued  [][]byte // normal messages waiting for room in the engine's queue
}

// NewHost hosts svcs on eng, the first on byte first.
func NewHost(eng Engine, first byte, log *slog.Logger, svcs ...Service) *Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{eng: eng, first: first, svcs: svcs, log: log}
}

// Services returns the hosted services.
func (h *Host) Services() []Service { return h.svcs }

// Event hands the host one engine event; it returns false for a delivery
// that is not for one of its services.
func (h *Host) Event(now time.Time, ev membership.Event) bool {
	switch ev.Kind {
	case membership.EventNodelist:
		h.syncing, h.ring = true, ev.Ring
		for _, s := range h.svcs {
			s.Nodelist(now, ev.Ring, ev.Members)
		}
	case membership.EventInstalled:
		h.syncing = false
		for _, s := range h.svcs {
			s.Installed(now, ev.Ring, ev.Members)
		}
	case membership.EventDeliver:
		if len(ev.Payload) == 0 {
			return false
		}
		i := int(ev.Payload[0]) - int(h.first)
		if i < 0 || i >= len(h.svcs) {
			return false
		}
		if !ev.Repeat || wantsRepeats(h.svcs[i]) {
			h.svcs[i].Deliver(now, ev.Ring, ev.From, ev.Payload[1:], ev.Sync)
		}
	default:
		return false
	}
	return true
}

func wantsRepeats(s Service) bool {
	r, ok := s.(RepeatDeliverer)
	return ok && r.DeliverRepeats()
}

// Pump ticks every service, broadcasts their output, and ends the sync
// step once all of them are ready.
func (h *Host) Pump(now time.Time) {
	for i, s := range h.svcs {
		s.Tick(now)
		sync, normal := s.Output()
		tag := h.first + byte(i)
		for _, m := range sync {
			if !h.syncing {
				break // the step it belonged to is over
			}
			if err := h.eng.Broadcast(append([]byte{tag}, m...), true); err != nil {
				h.log.Warn("sync step cut short", "service", s.Name(), "ring", h.ring.String(), "err", err)
				break
			}
		}
		for _, m := range normal {
			h.queued = append(h.queued, append([]byte{tag}, m...))
		}
	}
	h.flush()
	if !h.syncing {
		return
	}
	for _, s := range h.svcs {
		if !s.SyncReady(h.ring) {
			return
		}
	}
	h.syncing = false
	h.eng.SyncDone(h.ring)
}

// flush broadcasts queued messages while the engine has room; the rest
// wait for the next Pump. A message the engine refuses for good (it left
// the cluster, or the message can never fit) is dropped and logged.
func (h *Host) flush() {
	for len(h.queued) > 0 {
		err := h.eng.Broadcast(h.queued[0], false)
		if errors.Is(err, membership.ErrQueueFull) {
			return
		}
		if err != nil {
			h.log.Warn("service message dropped", "err", err)
		}
		h.queued = h.queued[1:]
	}
}

// NextTick is the earliest time a service wants Tick (zero: none).
func (h *Host) NextTick() time.Time {
	var t time.Time
	for _, s := range h.svcs {
		if n := s.NextTick(); !n.IsZero() && (t.IsZero() || n.Before(t)) {
			t = n
		}
	}
	return t
}

// Leaver is a service that says goodbye before its node leaves the cluster
// gracefully (the quorum service announces a clean shutdown). Leave reports
// whether it queued a message.
type Leaver interface {
	Leave(now time.Time) bool
}

// Leave lets every Leaver say goodbye and sends what they said. It reports
// whether the driver should wait, before the engine's Leave, until that is
// delivered (Pending is false and the engine's queue is empty).
func (h *Host) Leave(now time.Time) bool {
	wait := false
	for _, s := range h.svcs {
		if l, ok := s.(Leaver); ok && l.Leave(now) {
			wait = true
		}
	}
	h.Pump(now)
	return wait
}

// Pending says messages wait for room in the engine's queue.
func (h *Host) Pending() bool { return len(h.queued) > 0 }
