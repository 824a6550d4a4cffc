package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

// TestLeaseLapsesBeforeExclusion: when a node is cut off, its leases from
// every peer lapse strictly before any peer installs a view without it, for
// symmetric cuts, one-way cuts in either direction, and a range of seeds.
func TestLeaseLapsesBeforeExclusion(t *testing.T) {
	cuts := map[string]func(s *Sim){
		"split":    func(s *Sim) { s.Split([]NodeID{1}) },
		"deaf":     func(s *Sim) { s.Block(2, 1); s.Block(3, 1) },
		"mute":     func(s *Sim) { s.Block(1, 2); s.Block(1, 3) },
		"halfdeaf": func(s *Sim) { s.Block(2, 1) },
	}
	for name, cut := range cuts {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				s := New(Options{Seed: seed, Nodes: 3, Jitter: time.Millisecond})
				for id := NodeID(1); id <= 3; id++ {
					if err := s.Up(id); err != nil {
						t.Fatal(err)
					}
				}
				if ok, err := s.RunUntil(10*time.Second, s.Converged); !ok || err != nil {
					t.Fatalf("no view: %v %s", err, s.Describe())
				}
				if err := s.RunFor(time.Second); err != nil {
					t.Fatal(err)
				}
				for _, p := range []NodeID{2, 3} {
					if !s.Node(1).Eng.LeaseExpiry(p).After(s.Now()) {
						t.Fatalf("node 1 holds no lease from %d in a healthy view", p)
					}
				}
				// Note, for each peer's first view without node 1, when that
				// peer may act on it: not before its promise to node 1 ends.
				holdEnd := map[NodeID]time.Time{}
				s.observe = func(n *Node, ev membership.Event) {
					if ev.Kind != membership.EventNodelist || n.ID == 1 || slices.Contains(ev.Members, 1) {
						return
					}
					if _, ok := holdEnd[n.ID]; !ok {
						holdEnd[n.ID] = later(n.Eng.GrantExpiry(1), s.Now())
					}
				}
				cut(s)
				if _, err := s.RunUntil(20*time.Second, func() bool { return len(holdEnd) == 2 }); err != nil {
					t.Fatal(err)
				}
				if err := s.RunFor(2 * time.Second); err != nil {
					t.Fatal(err)
				}
				for p, end := range holdEnd {
					// Leases only grow, so the last one is the longest.
					if l := s.Node(1).Eng.LeaseExpiry(p); !l.Before(end) {
						t.Errorf("node %d may act on a view without node 1 at %v, but node 1 holds its lease until %v",
							p, end.Sub(Epoch), l.Sub(Epoch))
					}
				}
			})
		}
	}
}
