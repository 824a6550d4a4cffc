package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// JSON renders the report.
func (r *Report) JSON() ([]byte, error) { return jsonIndent(r) }

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeReport writes dir/name.json and dir/name.md.
func writeReport(dir, name string, js []byte, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), js, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644)
}

// num formats one figure: rates (units per second) whole, else three
// significant digits or two decimals.
func (s Summary) num(v float64) string {
	switch {
	case strings.HasSuffix(s.Unit, "/s"):
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (s Summary) text() string {
	if s.N == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%s %s (min %s, max %s, n=%d)", s.num(s.Median), s.Unit, s.num(s.Min), s.num(s.Max), s.N)
}

// textP99 is text with the 99th percentile, for figures with many samples.
func (s Summary) textP99() string {
	if s.N == 0 {
		return s.text()
	}
	return fmt.Sprintf("%s, p99 %s %s", s.text(), s.num(s.P99), s.Unit)
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

// JSON renders the quorum report.
func (r *QuorumReport) JSON() ([]byte, error) { return jsonIndent(r) }

// Markdown renders the quorum report, opening with the target table.
func (r *QuorumReport) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Quorum benchmark\n\n")
	w("Produced by `conclave bench quorum` on %s: %d CPUs (%s), Linux %s, %s. ", r.Date, r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion)
	w("Every cluster is a fresh one of 3 real agent processes on loopback (127.0.0.1-3), started %d times per figure, default configuration (token 800 ms) unless noted. ", r.Options.Runs)
	w("Figures are medians with min and max, and the 99th percentile where there is one sample per event; the machine is shared, so single runs mean little.\n\n")

	fo := func(key string) Summary {
		if f := r.Failover[key]; f != nil {
			return f.Callback
		}
		return Summary{}
	}
	w("## Targets\n\n| figure | target | measured | |\n|---|---|---|---|\n")
	w("| view installed → quorum callback in a client, p50 | ≤ 1 ms | %s | %s |\n", r.Callback.textP99(), verdict(r.Callback.Median <= 1, r.Callback.N > 0))
	var gi, fan Summary
	if r.GetInfo != nil {
		gi = r.GetInfo.PerSecond
	}
	if r.FanOut != nil {
		fan = r.FanOut.Slowest
	}
	w("| `GetInfo` round trips per second, one client | ≥ 20,000 | %s | %s |\n", gi.text(), verdict(gi.Median >= 20000, gi.N > 0))
	w("| quorum callback delivered to %d clients (slowest client) | ≤ 10 ms | %s | %s |\n", fanoutClients, fan.text(), verdict(fan.Median <= 10, fan.N > 0))
	d, t := fo("default_token"), fo("token_300ms")
	w("| SIGKILL of an agent → quorum callback on a survivor, default token (Corosync 3.1.7: %.1f s) | ≤ 0.1 s | %s | %s |\n", corosyncFailoverDefault, d.text(), verdict(d.Median <= 100, d.N > 0))
	w("| same, token 300 ms (Corosync 3.1.7: %.1f s) | ≤ 0.1 s | %s | %s |\n", corosyncFailover300, t.text(), verdict(t.Median <= 100, t.N > 0))

	w("\n## View installed → quorum callback\n\n")
	w("A `votequorum` client on node 1 tracks changes (`TrackStart(0, TrackChanges)`, callbacks dispatched by `Run` on their own goroutine) and stamps `time.Now()` on entry to its quorum callback; a membership watch on node 1 gives the agent's stamp of the `INSTALLED` event. Node 3 is killed and restarted %d times per cluster; each view change is one sample: callback − installed, for the same ring.\n\n", r.Options.Cycles)
	w("- %s\n", r.Callback.textP99())

	w("\n## `GetInfo` on one connection\n\n")
	w("One `votequorum` handle on node 1 calls `GetInfo(0)` back to back for %s per cluster (after 200 calls of warm-up).\n\n", r.Options.GetInfoWindow)
	if g := r.GetInfo; g != nil {
		w("- rate per run: %s\n- round trip per call: %s\n", g.PerSecond.text(), g.RoundTrip.textP99())
	} else {
		w("- not measured in this run\n")
	}

	w("\n## Fan-out to %d clients\n\n", r.Options.FanoutClients)
	w("%d raw `Votequorum.Session` streams on node 1, each on its own connection, send `TrackStart{flags: 2}`; node 3 is killed and restarted %d times per cluster. Per view change, each client's delay is its receipt time minus the event's `unix_nano` (when the agent sent it); one sample per view change.\n\n", r.Options.FanoutClients, fanoutCycles)
	if f := r.FanOut; f != nil {
		w("| | per view change |\n|---|---|\n")
		w("| slowest client (the target's figure) | %s |\n", f.Slowest.text())
		w("| median client | %s |\n", f.Median.text())
		w("| slowest client, from the view's `INSTALLED` stamp | %s |\n", f.FromInstalled.text())
	} else {
		w("Not measured in this run.\n")
	}

	w("\n## SIGKILL → quorum callback on a survivor\n\n")
	w("`votequorum` clients on nodes 1 and 2 track changes; node 3's agent gets SIGKILL; the figure is until the later of the two clients' quorum callbacks for a ring in which node 3 is no longer a member. The new view's `INSTALLED` at node 1 is shown for comparison: the difference is the quorum service's share.\n\n")
	if len(r.Failover) > 0 {
		w("| token | Corosync 3.1.7 | SIGKILL → quorum callback | SIGKILL → view installed |\n|---|---|---|---|\n")
		for _, k := range []string{"default_token", "token_300ms"} {
			if f := r.Failover[k]; f != nil {
				w("| %s | %.1f s | %s | %s |\n", f.Token, f.CorosyncSec, f.Callback.text(), f.View.text())
			}
		}
	} else {
		w("Not measured in this run.\n")
	}
	w("\nOn loopback a killed agent's peers learn of its death from the kernel closing its TCP tripwire connections, so the token timeout does not enter these figures; detection by silence alone is the link-cut row of `membership.md`.\n")

	if len(r.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	w("\nReproduce: `go run ./cmd/conclave bench quorum --out docs/benchmarks`.\n")
	return b.String()
}
