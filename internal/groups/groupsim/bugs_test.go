package groupsim

import (
	"strings"
	"testing"
)

// Engine bugs the simulator found, as deterministic reproductions. Each
// test fails today; it skips, naming the bug, when the failure is the
// known one, so that the suite stays green until the engine is fixed and
// any other failure still shows. Both need a view change that is cut short
// (a node paused for about one token timeout while votes are in flight,
// with some network jitter), which the random test hits in roughly one
// seed in a few hundred.

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

// Bug A — an outcome is lost after a view change that was cut short.
//
// Node 2 started ring 2.8 (Nodelist) but never installed it, then moved to
// 1.c. The engine tags the replica it sends in the sync step with the last
// *installed* ring (e.ring = 1.4), so node 2's copy and node 1's copy both
// claim ring 1.4 although node 1 delivered three more messages of 1.4 than
// node 2 (the membership layer does not promise node 2 those: it left 1.4
// for 2.8). reconcile takes one copy per previous ring (node 1's, the
// lowest complete one), in which the state change already ended rejected;
// node 2 never produces that outcome for its provider 2/1, which next sees
// the n-phase FAILURE_LEAVE of 3/1 and 3/2: the rejected STATE_VALUE_CHANGE
// notification is lost. (Tagging the copy with the last Nodelist ring
// instead would make node 2's copy its own lineage; see bug B for what
// then goes wrong.)
func TestEngineBugLostOutcomeAfterInterruptedViewChange(t *testing.T) {
	err := runLines(t, interrupted("0ms", "798ms"))
	const symptom = "g 2/1: phase 1 of HA_GS_FAILURE_LEAVE after phase 1 of HA_GS_STATE_VALUE_CHANGE"
	if err != nil && strings.Contains(err.Error(), symptom) {
		t.Skipf("known engine bug A (sync copy tagged with the last installed ring; outcome lost after an interrupted view change): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Bug B — replicas diverge because repeated deliveries are skipped after
// the local replica was replaced by a merge.
//
// Same start, votes 100 ms apart. Node 1 delivers the three votes in ring
// 1.4 (its copy rejects the state change). Nodes 2 and 3 deliver only 2/1's
// vote, in ring 2.8. In ring 1.10 = {1,2,3} the copy of node 3's lineage
// (2.8, with the protocol still in phase 1) wins the merge, and node 1's
// replica is replaced by it. Node 3 re-sends its two votes in 1.10: nodes
// 2 and 3 apply them (rejected, state ""), but for node 1 they are repeats
// (it delivered them in 1.4) and service.Host drops repeats
// (internal/service/host.go: "if !ev.Repeat"), so node 1's copy of the
// protocol waits, times out, takes 2/1's default APPROVE and approves
// state "s": after convergence node 1 holds state "s", nodes 2 and 3 hold
// "". Skipping a repeat is only right while the replica is the one that
// delivered it; once reconcile replaced it with another lineage's copy,
// the engine must apply what that lineage has not.
func TestEngineBugRepeatsSkippedAfterMerge(t *testing.T) {
	err := runLines(t, interrupted("100ms", "698ms"))
	const symptom = `replicas differ after convergence:
node 1:
g n-phase,limit=2 members=[3/1 3/2] state="s" idle
node 2:
g n-phase,limit=2 members=[3/1 3/2] state="" idle`
	if err != nil && strings.Contains(err.Error(), symptom) {
		t.Skipf("known engine bug B (repeats dropped after reconcile replaced the replica; replicas diverge): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}
