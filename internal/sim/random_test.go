package sim

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

var (
	flagSeeds = flag.Int("sim.seeds", 2000, "number of random simulation seeds to run")
	flagSeed  = flag.Uint64("sim.seed", 1, "first random simulation seed")
	flagTrace = flag.Bool("sim.trace", false, "print view events of random runs")
	flagLog   = flag.Bool("sim.log", false, "print engine logs (debug level) of random runs")
)

// randomRun drives one cluster through random faults, then heals the network
// and checks that it converges and that every surviving sender delivered its
// own messages. Safety invariants are checked throughout by the Checker.
func randomRun(seed uint64, breaks membership.TestingKnobs) (*Sim, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := 2 + rng.IntN(6)
	o := Options{
		Seed: seed, Nodes: n, Links: 1 + rng.IntN(2), SyncMessages: true, Breaks: breaks,
		Jitter: time.Duration(rng.IntN(3)) * time.Millisecond,
	}
	adaptive := rng.Uint64()
	o.Adaptive = func(id NodeID) bool { return adaptive>>(id%64)&1 == 1 } // as the agent does, on about half the nodes
	s := New(o)
	if *flagTrace {
		s.Trace = os.Stdout
	}
	if *flagLog {
		s.LogTo(os.Stdout, slog.LevelDebug)
	}
	for i := 1; i <= n; i++ {
		if rng.IntN(4) > 0 {
			s.Up(NodeID(i))
		}
	}
	id := func() NodeID { return NodeID(1 + rng.IntN(n)) }
	for range 25 {
		switch rng.IntN(14) {
		case 0:
			s.Down(id())
		case 1:
			s.Halt(id())
		case 2:
			s.Stop(id())
		case 3, 4:
			for i := 1; i <= n; i++ {
				if !s.Node(NodeID(i)).Up && rng.IntN(2) == 0 {
					s.Up(NodeID(i))
				}
			}
		case 5:
			s.Pause(id())
		case 6:
			for _, nd := range s.Nodes() {
				s.Resume(nd.ID)
			}
		case 7:
			var a, b []NodeID
			for i := 1; i <= n; i++ {
				if rng.IntN(2) == 0 {
					a = append(a, NodeID(i))
				} else {
					b = append(b, NodeID(i))
				}
			}
			s.Split(a, b)
		case 8:
			s.Heal()
		case 9:
			s.Block(id(), id())
		case 10:
			s.LinkDown(id(), rng.IntN(o.Links))
		case 11:
			s.SetNet(float64(rng.IntN(4))*0.1, float64(rng.IntN(2))*0.05, 200*time.Microsecond, time.Duration(rng.IntN(20))*time.Millisecond)
		case 12:
			s.Quiet()
		case 13:
			a := id()
			s.Join(a, id())
		}
		// Traffic while the fault is in place.
		steps := 1 + rng.IntN(40)
		for range steps {
			for range rng.IntN(4) {
				if nd := s.Node(id()); nd.Up && !nd.Paused {
					if err := s.SendAuto(nd.ID); err != nil && err != membership.ErrQueueFull {
						return s, err
					}
				}
			}
			if err := s.RunFor(time.Duration(rng.IntN(100)) * time.Millisecond); err != nil {
				return s, err
			}
		}
	}
	// Heal everything and check liveness.
	s.Heal()
	s.Quiet()
	for _, nd := range s.Nodes() {
		s.Resume(nd.ID)
	}
	if !anyUp(s) {
		s.Up(1)
	}
	bound := 30 * time.Second
	ok, err := s.RunUntil(bound, s.Converged)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("seed %d: no single view %v after healing: %s", seed, bound, s.Describe())
	}
	if err := s.RunFor(2 * time.Second); err != nil {
		return s, err
	}
	if u := s.Undelivered(); len(u) > 0 {
		return s, fmt.Errorf("seed %d: own messages never delivered: %v", seed, u)
	}
	return s, nil
}

func anyUp(s *Sim) bool {
	for _, n := range s.Nodes() {
		if n.Up {
			return true
		}
	}
	return false
}

// TestRandomSeeds runs -sim.seeds random clusters (2,000 by default, 200
// with -short), sharded over the CPUs. Run millions with e.g.
// go test ./internal/sim -run TestRandomSeeds -sim.seeds=1000000 -timeout=0
func TestRandomSeeds(t *testing.T) {
	seeds := *flagSeeds
	if testing.Short() {
		seeds = min(seeds, 200)
	}
	shards := max(runtime.GOMAXPROCS(0), 1)
	var views, deliveries atomic.Uint64
	t.Run("shards", func(t *testing.T) {
		for sh := range shards {
			t.Run(fmt.Sprint(sh), func(t *testing.T) {
				t.Parallel()
				for i := sh; i < seeds; i += shards {
					seed := *flagSeed + uint64(i)
					s, err := randomRun(seed, membership.TestingKnobs{})
					if err != nil {
						t.Fatalf("%v\nreproduce: go test ./internal/sim -run TestRandomSeeds -sim.seed=%d -sim.seeds=1 -sim.trace", err, seed)
					}
					v, _, d := s.Check.Counts()
					views.Add(v)
					deliveries.Add(d)
				}
			})
		}
	})
	t.Logf("%d seeds: %d views started, %d deliveries checked", seeds, views.Load(), deliveries.Load())
}
