package bench

import (
	"encoding/json"
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
