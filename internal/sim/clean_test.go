package sim

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

// TestCleanFaultsNoSplits checks a quality property the safety invariants
// do not cover: after one clean fault in a settled cluster (kill the
// representative or other agents, halt a host, pause the representative past
// the token, split the network in two), the first view every survivor starts
// is already the right one. Survivors that learn of the fault a few
// milliseconds apart must not form pieces that merge later.
func TestCleanFaultsNoSplits(t *testing.T) {
	seeds := *flagCleanSeeds
	if testing.Short() {
		seeds = min(seeds, 50)
	}
	// Reproduce one seed with -sim.seed=N -sim.cleanseeds=1 -sim.log.
	for seed := *flagSeed; seed < *flagSeed+uint64(seeds); seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := 3 + rng.IntN(7)
		s := New(Options{Seed: seed, Nodes: n, Jitter: time.Duration(rng.IntN(3)) * time.Millisecond,
			Adaptive: func(NodeID) bool { return seed%2 == 0 }})
		if *flagLog {
			s.LogTo(os.Stdout, slog.LevelDebug)
		}
		for i := 1; i <= n; i++ {
			s.Up(NodeID(i))
		}
		if ok, err := s.RunUntil(10*time.Second, s.Converged); !ok || err != nil {
			t.Fatalf("seed %d: did not form: %v %s", seed, err, s.Describe())
		}
		if err := s.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		firstView := map[NodeID][]NodeID{}
		s.observe = func(nd *Node, ev membership.Event) {
			if _, seen := firstView[nd.ID]; ev.Kind == membership.EventNodelist && !seen {
				firstView[nd.ID] = ev.Members
			}
		}
		all := make([]NodeID, n)
		for i := range all {
			all[i] = NodeID(i + 1)
		}
		want := map[NodeID][]NodeID{} // survivor -> expected view
		var fault string
		switch k := rng.IntN(5); k {
		case 0, 1:
			victims := []NodeID{1} // the representative
			if k == 1 {
				victims = pick(rng, all[1:], 1+rng.IntN(max((n-1)/2, 1)))
			}
			fault = fmt.Sprintf("kill %v", victims)
			for _, v := range victims {
				s.Down(v)
			}
			surv := without(all, victims)
			for _, id := range surv {
				want[id] = surv
			}
		case 2:
			v := pick(rng, all, 1)
			fault = fmt.Sprintf("halt %v", v)
			s.Halt(v[0])
			surv := without(all, v)
			for _, id := range surv {
				want[id] = surv
			}
		case 3:
			fault = "pause 1 past the token"
			s.Pause(1)
			surv := all[1:]
			for _, id := range surv {
				want[id] = surv
			}
		case 4:
			a := pick(rng, all, 1+rng.IntN(n-1))
			slices.Sort(a)
			b := without(all, a)
			fault = fmt.Sprintf("split %v | %v", a, b)
			s.Split(a, b)
			for _, id := range a {
				want[id] = a
			}
			for _, id := range b {
				want[id] = b
			}
		}
		if err := s.RunFor(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		for id, w := range want {
			if got := firstView[id]; !slices.Equal(got, w) {
				t.Fatalf("seed %d, %d nodes, %s: node %d's first new view was %v, want %v", seed, n, fault, id, got, w)
			}
		}
	}
}

var flagCleanSeeds = flag.Int("sim.cleanseeds", 500, "number of clean-fault seeds to run")

func pick(rng *rand.Rand, from []NodeID, k int) []NodeID {
	c := slices.Clone(from)
	rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return c[:min(k, len(c))]
}

func without(all, drop []NodeID) []NodeID {
	var out []NodeID
	for _, id := range all {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}
