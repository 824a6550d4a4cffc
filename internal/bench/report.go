package bench

import (
	"encoding/json"
	"fmt"
	"strings"
)

// JSON renders the report.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (s Summary) text() string {
	if s.N == 0 {
		return "not measured"
	}
	f := func(v float64) string {
		switch {
		case s.Unit == "msg/s":
			return fmt.Sprintf("%.0f", v)
		case v >= 100:
			return fmt.Sprintf("%.0f", v)
		case v >= 10:
			return fmt.Sprintf("%.1f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	}
	return fmt.Sprintf("%s %s (min %s, max %s, n=%d)", f(s.Median), s.Unit, f(s.Min), f(s.Max), s.N)
}

func verdict(ok bool, measured bool) string {
	switch {
	case !measured:
		return "—"
	case ok:
		return "met"
	}
	return "**missed**"
}

// Markdown renders the report, opening with the target table.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Membership benchmark\n\n")
	w("Produced by `conclave bench membership` on %s: %d CPUs (%s), Linux %s, %s. ", r.Date, r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion)
	w("Every figure is the median over %d runs (fresh clusters of real agent processes), with min and max; ", r.Options.Runs)
	w("the machine is shared, so single runs mean little. Corosync figures are those measured on this kind of machine for the issue (Corosync 3.1.7, default configuration unless noted).\n\n")

	three := r.Sizes["3"]
	w("## Targets\n\n")
	w("| figure | Corosync 3.1.7 | Conclave target | Conclave measured | |\n|---|---|---|---|---|\n")
	if three != nil {
		w("| start → quorate/full view, 3 nodes | 2.64 s | ≤ 0.2 s | %s | %s |\n", three.Form.text(), verdict(three.Form.Median <= 200, three.Form.N > 0))
		w("| SIGKILL of a daemon → new view on survivors | 7.7 s (default), 2.0 s (token 300) | ≤ 0.1 s | %s | %s |\n", three.Kill.text(), verdict(three.Kill.Median <= 100, three.Kill.N > 0))
	}
	lc, lcOK := r.LinkCut["3_nodes"]
	w("| silent node (link cut) → new view, default config | 7.6 s | ≤ 1.0 s | %s | %s |\n", lc.text(), verdict(lc.Median <= 1000, lcOK && lc.N > 0))
	lt, ltOK := r.LinkCut["3_nodes_token_300ms"]
	w("| same, at equal `token` (300 ms) | token + consensus (660 ms) | ≤ token + 50 ms (350 ms) | %s | %s |\n", lt.text(), verdict(lt.Median <= 350, ltOK && lt.N > 0))
	o1 := r.Ordered["64B_1sender"]
	w("| ordered delivery, 3 nodes, 1 sender, 64 B | 26,900 msg/s | ≥ 50,000 msg/s | %s | %s |\n", o1.text(), verdict(o1.Median >= 50000, o1.N > 0))
	l := r.Latency["from_member_at_sender"]
	w("| ordered delivery p50 latency at 100 msg/s (sender is not the sequencer) | 0.46 ms | ≤ 0.3 ms | %s | %s |\n", l.text(), verdict(l.Median <= 0.3, l.N > 0))
	if r.Idle != nil {
		w("| idle RSS per daemon | 77 MB | ≤ 20 MB | %s | %s |\n", r.Idle.RSSMiB.text(), verdict(r.Idle.RSSMiB.Median <= 20, r.Idle.RSSMiB.N > 0))
	}
	if s := r.Saturated; s != nil {
		w("| false view changes in %s with both cores saturated by another process | — | 0 | %d | %s |\n", s.Duration, s.FalseChanges, verdict(s.FalseChanges == 0, true))
	} else {
		w("| false view changes in 10 min with both cores saturated by another process | — | 0 | not measured in this run (`--saturate 10m`) | — |\n")
	}

	w("\n## Membership, per cluster size (ms)\n\n| nodes | start → full view | SIGKILL → new view | restart → rejoined view |\n|---|---|---|---|\n")
	for _, n := range []string{"3", "5", "7", "9"} {
		if s := r.Sizes[n]; s != nil {
			w("| %s | %s | %s | %s |\n", n, s.Form.text(), s.Kill.text(), s.Restart.text())
		}
	}
	if len(r.LinkCut) > 0 {
		w("\n## Link cut in network namespaces (ms)\n\nThe last node's only link goes down (its veth, in a private namespace); nothing tells the others but silence.\n\n| nodes | token | link down → survivors' new view |\n|---|---|---|\n")
		for _, k := range []string{"3_nodes", "5_nodes", "3_nodes_token_300ms"} {
			if s, ok := r.LinkCut[k]; ok {
				tok := "800 ms (default)"
				if strings.Contains(k, "token") {
					tok = "300 ms"
				}
				w("| %s | %s | %s |\n", k[:1], tok, s.text())
			}
		}
	}
	w("\n## Ordered delivery, 3 nodes on loopback\n\nThroughput is messages delivered at every node per second, from the first publish to the last delivery at the slowest node, with the publishers held back only by flow control.\n\n| payload | 1 sender | 3 senders |\n|---|---|---|\n")
	for _, size := range []string{"64B", "1024B"} {
		w("| %s | %s | %s |\n", size, r.Ordered[size+"_1sender"].text(), r.Ordered[size+"_3sender"].text())
	}
	w("\nLatency at 100 msg/s (64 B, one sender), from the client's publish call to delivery by the agent. The view's representative (node 1) sequences every message, so a message from another node crosses the network twice more.\n\n")
	w("| sender | at the sender | at the last of the three nodes |\n|---|---|---|\n")
	for _, who := range []string{"sequencer", "member"} {
		a, b := r.Latency["from_"+who+"_at_sender"], r.Latency["from_"+who+"_at_all_nodes"]
		w("| %s | %s, p99 %.2f ms | %s, p99 %.2f ms |\n", who, a.text(), a.P99, b.text(), b.P99)
	}
	if r.Idle != nil {
		w("\n## Idle agent (3-node cluster, %s window, per agent)\n\n- RSS: %s\n- CPU: %s\n", r.Idle.Window, r.Idle.RSSMiB.text(), r.Idle.CPUPercent.text())
	}
	if s := r.Saturated; s != nil {
		w("\n## Saturated CPUs\n\n%d busy-loop threads in another process for %s: view changes per agent %v.\n", s.Burners, s.Duration, s.ViewsPerAgent)
	}
	if len(r.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	w("\nReproduce: `go run ./cmd/conclave bench membership --out docs/benchmarks` (as root for the link-cut rows; add `--saturate 10m` for the false-alarm run).\n")
	return b.String()
}
