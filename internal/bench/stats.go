// Package bench measures local Conclave clusters (real agent processes on
// loopback, or in network namespaces when root) and writes the report the
// benchmark command produces. Figures are medians with min and max over
// several runs: this machine is shared and noisy, so single runs mean
// little and timed assertions would be luck.
package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is a set of samples reduced to what the report shows.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	P99    float64 `json:"p99,omitempty"`
	Unit   string  `json:"unit"`
}

// summarize reduces samples (in unit) to median, min, max and p99.
func summarize(samples []float64, unit string) Summary {
	if len(samples) == 0 {
		return Summary{Unit: unit}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Summary{N: len(s), Median: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1], P99: quantile(s, 0.99), Unit: unit}
}

// quantile of sorted samples, by linear interpolation.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
