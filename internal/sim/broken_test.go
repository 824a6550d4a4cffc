package sim

import (
	"strings"
	"testing"

	"github.com/conclave/conclave/internal/membership"
)

// TestBrokenEngineIsCaught shows the invariants have teeth: an engine that
// skips the old view's flush at a view change (each node delivers only what
// it happens to hold, not the agreed cut) must be caught by the checker
// within the seeds CI runs.
func TestBrokenEngineIsCaught(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		_, err := randomRun(seed, membership.TestingKnobs{SkipFlush: true})
		if err == nil {
			continue
		}
		if !strings.Contains(err.Error(), "virtual synchrony") && !strings.Contains(err.Error(), "never delivered") {
			t.Fatalf("seed %d: caught, but by an unexpected check: %v", seed, err)
		}
		t.Logf("caught at seed %d: %v", seed, err)
		return
	}
	t.Fatal("500 seeds with the flush skipped passed the invariants: the checker is too weak")
}
