package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave/conclave/internal/bench"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure local clusters and write a report",
	}
	cmd.AddCommand(benchMembershipCmd(), benchQuorumCmd(), benchGroupsCmd())
	return cmd
}

func benchMembershipCmd() *cobra.Command {
	var o bench.Options
	var out, sizes, only string
	cmd := &cobra.Command{
		Use:   "membership",
		Short: "Measure membership, failover and ordered delivery",
		Long: `Start fresh 3- and 5-agent clusters on loopback (and in network namespaces
when root) and measure, as medians with min and max over --runs runs:
start to first full view; SIGKILL to the survivors' new view; link cut to new
view (root only); restart to rejoined view; ordered-delivery throughput
(64 B and 1 KiB, one sender and three) and latency at 100 msg/s; idle RSS
and CPU per agent; and, with --saturate, view changes while every CPU is
kept busy by another process. Writes OUT/membership.md and
OUT/membership.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = self
			o.Log = cmd.ErrOrStderr()
			for _, s := range strings.Split(sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 2 || n > 32 {
					return &exitError{2, fmt.Errorf("--sizes: %q is not a cluster size between 2 and 32", s)}
				}
				o.Sizes = append(o.Sizes, n)
			}
			if only != "" {
				o.Only = strings.Split(only, ",")
			}
			r, err := bench.Membership(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := r.WriteFiles(out); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Markdown())
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/membership.md and %s/membership.json\n", out, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Runs, "runs", 5, "runs per measurement (fresh cluster each)")
	f.StringVar(&sizes, "sizes", "3,5", "cluster sizes for the membership timings")
	f.IntVar(&o.Messages, "messages", 200_000, "64-byte messages per throughput run (1 KiB runs send a quarter)")
	f.StringVar(&o.Netns, "netns", "auto", "link-cut runs in network namespaces: auto (when root), on, off")
	f.DurationVar(&o.Saturate, "saturate", 0, "also run a cluster this long with every CPU busy and count view changes (e.g. 10m)")
	f.DurationVar(&o.Idle, "idle", 10*time.Second, "window for idle RSS and CPU")
	f.StringVar(&out, "out", "docs/benchmarks", "directory for membership.md and membership.json")
	f.StringVar(&only, "only", "", "run only these sections: lifecycle,linkcut,ordered,idle,saturate")
	return cmd
}

// quorumSections are the parts of `conclave bench quorum` that --only names.
var quorumSections = []string{"callback", "getinfo", "fanout", "failover"}

func benchQuorumCmd() *cobra.Command {
	var o bench.Options
	var out, only string
	cmd := &cobra.Command{
		Use:   "quorum",
		Short: "Measure the votequorum service: callback latency, GetInfo rate, fan-out, failover",
		Long: `Start fresh 3-agent clusters on loopback and measure, as medians with min and
max over --runs runs: view installed to the quorum callback in a votequorum
client (callback); GetInfo(0) round trips per second on one connection
(getinfo); one quorum event delivered to 100 tracking clients (fanout); and
SIGKILL of an agent to the quorum callback on a survivor, at the default
token and at token 300 ms (failover). Writes OUT/quorum.md and
OUT/quorum.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = self
			o.Log = cmd.ErrOrStderr()
			if o.Runs < 1 {
				return &exitError{2, fmt.Errorf("--runs %d: want at least 1", o.Runs)}
			}
			if only != "" {
				for _, s := range strings.Split(only, ",") {
					s = strings.TrimSpace(s)
					if !slices.Contains(quorumSections, s) {
						return &exitError{2, fmt.Errorf("--only: %q is not one of %s", s, strings.Join(quorumSections, ","))}
					}
					o.Only = append(o.Only, s)
				}
			}
			r, err := bench.Quorum(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := r.WriteFiles(out); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Markdown())
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/quorum.md and %s/quorum.json\n", out, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Runs, "runs", 5, "runs per measurement (fresh cluster each)")
	f.StringVar(&out, "out", "docs/benchmarks", "directory for quorum.md and quorum.json")
	f.StringVar(&only, "only", "", "run only these sections: "+strings.Join(quorumSections, ","))
	return cmd
}

// groupsSections are the parts of `conclave bench groups` that --only names.
var groupsSections = []string{"latency", "throughput", "failover", "memory"}

func benchGroupsCmd() *cobra.Command {
	var o bench.Options
	var out, only string
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Measure the group services: state-change latency, throughput, failover, memory",
		Long: `Start fresh 3-agent clusters on loopback, with this process as the gs client
of every provider (one provider per agent in every group), and measure, as
medians with min and max over --runs runs: a one-phase and a 2-phase state
change from the ChangeStateValue call to the approved callback at the last
of the 3 providers, p50 and p99 (latency); approved one-phase protocols per
second over 1, 10 and 100 groups, one in flight per group (throughput);
SIGKILL of the agent hosting one provider to the failure leave approved on
the survivors, beside SIGKILL to the survivors' new view (failover); and the
agents' RSS with 10,000 groups of 3 providers (memory). Writes
OUT/groups.md and OUT/groups.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = self
			o.Log = cmd.ErrOrStderr()
			if o.Runs < 1 {
				return &exitError{2, fmt.Errorf("--runs %d: want at least 1", o.Runs)}
			}
			if only != "" {
				for _, s := range strings.Split(only, ",") {
					s = strings.TrimSpace(s)
					if !slices.Contains(groupsSections, s) {
						return &exitError{2, fmt.Errorf("--only: %q is not one of %s", s, strings.Join(groupsSections, ","))}
					}
					o.Only = append(o.Only, s)
				}
			}
			r, err := bench.Groups(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := r.WriteFiles(out); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Markdown())
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/groups.md and %s/groups.json\n", out, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Runs, "runs", 5, "runs per measurement (fresh cluster each)")
	f.StringVar(&out, "out", "docs/benchmarks", "directory for groups.md and groups.json")
	f.StringVar(&only, "only", "", "run only these sections: "+strings.Join(groupsSections, ","))
	return cmd
}
