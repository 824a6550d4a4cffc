package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in                    []float64
		median, min, max, p99 float64
	}{
		{[]float64{5}, 5, 5, 5, 5},
		{[]float64{3, 1, 2}, 2, 1, 3, 2.98},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 3.97},
	} {
		s := summarize(tc.in, "ms")
		if s.Median != tc.median || s.Min != tc.min || s.Max != tc.max || s.N != len(tc.in) {
			t.Errorf("%v: got %+v", tc.in, s)
		}
		if d := s.P99 - tc.p99; d > 1e-9 || d < -1e-9 {
			t.Errorf("%v: p99 %v, want %v", tc.in, s.P99, tc.p99)
		}
	}
	if s := summarize(nil, "ms"); s.N != 0 || s.text() != "not measured" {
		t.Errorf("empty: %+v %q", s, s.text())
	}
}

func TestReportVerdicts(t *testing.T) {
	r := &Report{
		Options: ReportOptions{Runs: 5},
		Sizes:   map[string]*Sizing{"3": {Form: summarize([]float64{150, 90, 120}, "ms"), Kill: summarize([]float64{250}, "ms")}},
		LinkCut: map[string]Summary{"3_nodes": summarize([]float64{800}, "ms")},
		Ordered: map[string]Summary{"64B_1sender": summarize([]float64{40000}, "msg/s")},
		Latency: map[string]Summary{},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| start → quorate/full view, 3 nodes | 2.64 s | ≤ 0.2 s | 120 ms (min 90.0, max 150, n=3) | met |",
		"| SIGKILL of a daemon → new view on survivors | 7.7 s (default), 2.0 s (token 300) | ≤ 0.1 s | 250 ms (min 250, max 250, n=1) | **missed** |",
		"| silent node (link cut) → new view, default config | 7.6 s | ≤ 1.0 s | 800 ms",
		"40000 msg/s (min 40000, max 40000, n=1) | **missed** |",
		"not measured in this run",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	b, err := r.JSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("JSON: %v", err)
	}
}

func TestQuorumReport(t *testing.T) {
	r := &QuorumReport{
		Options:  QuorumReportOptions{Runs: 5, Cycles: quorumCycles, FanoutClients: fanoutClients, GetInfoWindow: "2s"},
		Callback: summarize([]float64{0.4, 0.5, 2}, "ms"),
		GetInfo:  &GetInfoFigures{PerSecond: summarize([]float64{15000, 18000}, "calls/s"), RoundTrip: summarize([]float64{0.05}, "ms")},
		Failover: map[string]*FailoverFigures{
			"default_token": {Token: "default 800ms", CorosyncSec: corosyncFailoverDefault, Callback: summarize([]float64{6, 7}, "ms"), View: summarize([]float64{5}, "ms")},
		},
		Notes: []string{"a note"},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| view installed → quorum callback in a client, p50 | ≤ 1 ms | 0.50 ms (min 0.40, max 2.00, n=3), p99 1.97 ms | met |",
		"| `GetInfo` round trips per second, one client | ≥ 20,000 | 16500 calls/s (min 15000, max 18000, n=2) | **missed** |",
		"| quorum callback delivered to 100 clients (slowest client) | ≤ 10 ms | not measured | — |",
		"| SIGKILL of an agent → quorum callback on a survivor, default token (Corosync 3.1.7: 7.7 s) | ≤ 0.1 s | 6.50 ms (min 6.00, max 7.00, n=2) | met |",
		"| same, token 300 ms (Corosync 3.1.7: 2.0 s) | ≤ 0.1 s | not measured | — |",
		"| default 800ms | 7.7 s | 6.50 ms",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	b, err := r.JSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("JSON: %v", err)
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"quorum.md", "quorum.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
