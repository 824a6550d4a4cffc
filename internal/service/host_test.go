package service

import (
	"testing"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

type nopEngine struct{}

func (nopEngine) Broadcast([]byte, bool) error { return nil }
func (nopEngine) SyncDone(RingID)              {}

type countSvc struct {
	repeats   bool
	delivered []string
}

func (s *countSvc) Name() string                          { return "count" }
func (s *countSvc) Nodelist(time.Time, RingID, []NodeID)  {}
func (s *countSvc) Installed(time.Time, RingID, []NodeID) {}
func (s *countSvc) Tick(time.Time)                        {}
func (s *countSvc) NextTick() time.Time                   { return time.Time{} }
func (s *countSvc) Output() (sync, normal [][]byte)       { return nil, nil }
func (s *countSvc) SyncReady(RingID) bool                 { return true }
func (s *countSvc) Deliver(_ time.Time, _ RingID, _ NodeID, payload []byte, _ bool) {
	s.delivered = append(s.delivered, string(payload))
}

type repeatSvc struct{ countSvc }

func (s *repeatSvc) DeliverRepeats() bool { return true }

// Repeats reach only the services that ask for them.
func TestHostRepeats(t *testing.T) {
	plain, rep := &countSvc{}, &repeatSvc{}
	h := NewHost(nopEngine{}, 10, nil, plain, rep)
	now := time.Unix(1, 0)
	for _, ev := range []membership.Event{
		{Kind: membership.EventDeliver, From: 1, Payload: []byte("\x0aa")},
		{Kind: membership.EventDeliver, From: 1, Payload: []byte("\x0ab"), Repeat: true},
		{Kind: membership.EventDeliver, From: 1, Payload: []byte("\x0bc")},
		{Kind: membership.EventDeliver, From: 1, Payload: []byte("\x0bd"), Repeat: true},
	} {
		if !h.Event(now, ev) {
			t.Fatalf("event %q not taken", ev.Payload)
		}
	}
	if got := plain.delivered; len(got) != 1 || got[0] != "a" {
		t.Fatalf("plain service got %q, want [a]", got)
	}
	if got := rep.delivered; len(got) != 2 || got[0] != "c" || got[1] != "d" {
		t.Fatalf("repeat service got %q, want [c d]", got)
	}
}
