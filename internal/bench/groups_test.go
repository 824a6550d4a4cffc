package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGroupsReport(t *testing.T) {
	r := &GroupsReport{
		Options: GroupsReportOptions{Runs: 5, LatencySamples: gsLatencySamples, LatencyInterval: "5ms", ThroughputWindow: "2s",
			ClientsPerAgent: gsClientsPerAgent, MemoryClients: gsMemoryClients, FailoverCycles: gsFailoverCycles, ThroughputGroups: gsThroughputGroups},
		OnePhase: &GSLatency{All: summarize([]float64{0.5, 0.7, 0.9}, "ms"), Proposer: summarize([]float64{0.4}, "ms")},
		NPhase: &GSLatency{All: summarize([]float64{2.5, 2.6, 3}, "ms"), Phase1: summarize([]float64{0.8}, "ms"),
			Phase2: summarize([]float64{1.6}, "ms")},
		Throughput: map[string]*GSThroughput{
			"100_groups": {Groups: 100, PerSecond: summarize([]float64{3000, 4000}, "protocols/s"), AgentCPU: summarize([]float64{150}, "µs")},
		},
		Failover: &GSFailover{FailureLeave: summarize([]float64{6, 7}, "ms"), View: summarize([]float64{5, 6}, "ms"),
			Extra: summarize([]float64{1, 1}, "ms")},
		Memory: &GSMemory{Groups: gsMemoryGroups, Providers: 3 * gsMemoryGroups, RSSMiB: summarize([]float64{40, 42, 41}, "MiB"),
			KillFailureLeaves: summarize([]float64{42000}, "ms"), KillView: summarize([]float64{780}, "ms")},
		Notes: []string{"a note"},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| one-phase state change, 3 providers on 3 agents, p50 | ≤ 1 ms | 0.70 ms (min 0.50, max 0.90, n=3), p99 0.90 ms | met |",
		"| n-phase, 2 phases, 3 providers on 3 agents, p50 | ≤ 2 ms | 2.60 ms (min 2.50, max 3.00, n=3), p99 2.99 ms | **missed** |",
		"| approved protocols per second, 100 groups, 3 agents | ≥ 20,000 | 3500 protocols/s (min 3000, max 4000, n=2) | **missed** |",
		"| provider killed → failure-leave approved on survivors | ≤ membership failover + 10 ms | 6.50 ms (min 6.00, max 7.00, n=2); membership failover (SIGKILL → view) 5.50 ms (min 5.00, max 6.00, n=2); difference per kill 1.00 ms (min 1.00, max 1.00, n=2) | met |",
		"| 10,000 groups × 3 providers, agent RSS | ≤ 200 MB (190.7 MiB) | 41.0 MiB (min 40.0, max 42.0, n=3) | met |",
		"| call → phase-1 n-phase callback at all 3 | — | 0.80 ms (min 0.80, max 0.80, n=1), p99 0.80 ms |",
		"| 100 | 3500 protocols/s (min 3000, max 4000, n=2) | not measured | 150 µs (min 150, max 150, n=1) | not measured |",
		"SIGKILL → the last of the 20,000 failure leaves approved on the survivors | 42000 ms",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Sections not run say so, and the verdicts stay open.
	empty := (&GroupsReport{Options: GroupsReportOptions{Runs: 1}}).Markdown()
	for _, want := range []string{
		"| one-phase state change, 3 providers on 3 agents, p50 | ≤ 1 ms | not measured | — |",
		"| provider killed → failure-leave approved on survivors | ≤ membership failover + 10 ms | not measured | — |",
		"Not measured in this run.",
	} {
		if !strings.Contains(empty, want) {
			t.Errorf("empty report lacks %q:\n%s", want, empty)
		}
	}
	b, err := r.JSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("JSON: %v", err)
	}
	var back GroupsReport
	if err := json.Unmarshal(b, &back); err != nil || back.Throughput["100_groups"].PerSecond.Median != 3500 || back.Memory.RSSMiB.N != 3 {
		t.Errorf("JSON round trip: %v %s", err, b)
	}
	var raw struct {
		One map[string]json.RawMessage `json:"one_phase_state_change"`
		Two map[string]json.RawMessage `json:"two_phase_state_change"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.One["call_to_phase1_at_all"]; ok {
		t.Errorf("one-phase latency carries an empty phase figure: %s", b)
	}
	if _, ok := raw.Two["call_to_phase1_at_all"]; !ok {
		t.Errorf("2-phase latency lacks its phase figure: %s", b)
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"groups.md", "groups.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 30000: "30,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
