package groupsim

import (
	"strings"
	"testing"
)

// Engine bugs the simulator found, as deterministic reproductions, kept as
// regression tests now that they are fixed. Both need a view change that
// is cut short (a node paused for about one token timeout while votes are
// in flight, with some network jitter), which the random test hit in
// roughly one seed in a few hundred.

// interrupted builds ring 1.4 = {1,2,3} with g = {2/1, 3/1, 3/2}
// (n-phase, T=2) running an n-phase state change, then pauses node 1 for
// 798 ms while the three providers vote (3/1 REJECTs), with 2 ms of
// jitter. What follows, deterministically for seed 1:
//
//   - node 1 resumes and delivers the three votes in ring 1.4: its replica
//     ends the protocol (rejected);
//   - nodes 2 and 3 had already started ring 2.8 = {2,3} without node 1
//     and delivered none of them in 1.4;
//   - ring 1.c = {1,2} forms (node 3 drops out for a moment), then ring
//     1.10 = {1,2,3}.
func interrupted(gap, rest string) []string {
	return []string{
		"cluster nodes=3", "net jitter=2ms", "up 1..3", "settle",
		"form 2/1 3/1 3/2 phases=n limit=2", "state 2/1 s phases=n limit=2",
		"pause 1", "vote 2/1 approve nowait", "tick " + gap,
		"vote 3/1 reject nowait", "vote 3/2 approve nowait", "tick " + rest,
		"resume 1", "settle", "tick 5s",
	}
}

func runLines(t *testing.T, lines []string) error {
	t.Helper()
	sc := NewScript()
	for _, l := range lines {
		f := strings.Fields(l)
		if _, err := sc.Run(f[0], f[1:]); err != nil {
			return err
		}
	}
	return sc.H.Final()
}

// Bug A — an outcome was lost after a view change that was cut short.
//
// Node 2 started ring 2.8 (Nodelist) but never installed it, then moved to
// 1.c. The engine tagged the replica it sends in the sync step with the
// last *installed* ring only (e.ring = 1.4), so node 2's copy and node 1's
// copy both claimed ring 1.4 although node 1 delivered three more messages
// of 1.4 than node 2 (the membership layer does not promise node 2 those:
// it left 1.4 for 2.8). reconcile took one copy per previous ring (node
// 1's, the lowest complete one), in which the state change already ended
// rejected; node 2 never produced that outcome for its provider 2/1, which
// next saw the n-phase FAILURE_LEAVE of 3/1 and 3/2: the rejected
// STATE_VALUE_CHANGE notification was lost.
//
// Fixed: a copy names its lineage, the ring and its position in the
// ring's order (how many of its deliveries it applied), so the two copies
// are two lineages and node 2's providers are only valid in node 2's own
// copy, which wins the merge of {1,2}; 2/1 sees its protocol end there.
func TestEngineBugLostOutcomeAfterInterruptedViewChange(t *testing.T) {
	if err := runLines(t, interrupted("0ms", "798ms")); err != nil {
		t.Fatal(err)
	}
}

// Bug B — replicas diverged because repeated deliveries were skipped
// after the local replica was replaced by a merge.
//
// Same start, votes 100 ms apart. Node 1 delivers the three votes in ring
// 1.4 (its copy rejects the state change). Nodes 2 and 3 deliver only 2/1's
// vote, in ring 2.8. In ring 1.10 = {1,2,3} the copy of node 3's lineage
// (2.8, with the protocol still in phase 1) wins the merge, and node 1's
// replica is replaced by it. Node 3 re-sends its two votes in 1.10: nodes
// 2 and 3 applied them (rejected, state ""), but for node 1 they are
// repeats (it delivered them in 1.4) and service.Host dropped repeats, so
// node 1's copy of the protocol waited, timed out, took 2/1's default
// APPROVE and approved state "s": after convergence node 1 held state
// "s", nodes 2 and 3 "".
//
// Fixed: the engine is a service.RepeatDeliverer and every message carries
// an id (sender, engine incarnation, counter); each group records the last
// id of every sender it applied, so a replica applies what its groups'
// lineages have not, repeat or not, and every member decides alike.
func TestEngineBugRepeatsSkippedAfterMerge(t *testing.T) {
	if err := runLines(t, interrupted("100ms", "698ms")); err != nil {
		t.Fatal(err)
	}
}
