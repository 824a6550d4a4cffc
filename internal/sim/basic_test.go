package sim

import (
	"os"
	"testing"
	"time"
)

func TestFormThree(t *testing.T) {
	s := New(Options{Seed: 1, Nodes: 3})
	if testing.Verbose() {
		s.Trace = os.Stdout
	}
	for _, id := range []NodeID{1, 2, 3} {
		if err := s.Up(id); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := s.RunUntil(5*time.Second, s.Converged)
	if err != nil || !ok {
		t.Fatalf("converged=%v err=%v", ok, err)
	}
	t.Logf("converged after %v", s.Elapsed())
	for i := range 10 {
		s.SendAuto(NodeID(i%3 + 1))
	}
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if u := s.Undelivered(); len(u) > 0 {
		t.Fatalf("undelivered: %v", u)
	}
	s.Down(2)
	start := s.Elapsed()
	ok, err = s.RunUntil(5*time.Second, s.Converged)
	if err != nil || !ok {
		t.Fatalf("converged=%v err=%v", ok, err)
	}
	t.Logf("failover %v", s.Elapsed()-start)
}
