package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/lab"
	"github.com/conclave/conclave/internal/quorumtool"
	"github.com/conclave/conclave/votequorum"
)

func demoCmd() *cobra.Command {
	var keep bool
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local three-node cluster and show failover",
		Long: `Start three agents on 127.0.0.1, 127.0.0.2 and 127.0.0.3 in a temporary
directory, show them form one view, kill one with SIGKILL and show how fast
the other two form a new view, restart it and show it rejoin, then print a
timing summary and stop the cluster. Works as an ordinary user.

With --keep the cluster keeps running after the demo, and the command prints
how to talk to it and how to stop it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return runDemo(ctx, cmd.OutOrStdout(), dir, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the cluster running")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary directory)")
	return cmd
}

func runDemo(ctx context.Context, w io.Writer, dir string, keep bool) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the conclave binary: %w", err)
	}
	all := []uint32{1, 2, 3}
	start := time.Now()
	c, err := lab.Start(ctx, lab.Options{Binary: self, Nodes: 3, Dir: dir, Keep: keep, ClusterName: "demo"})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !keep && !stopped {
			c.Close()
		}
	}()
	fmt.Fprintf(w, "Starting 3 agents on 127.0.0.1-127.0.0.3 in %s\n", c.Dir)
	ring, err := c.WaitView(ctx, all, all)
	if err != nil {
		return fmt.Errorf("the cluster did not form: %w (logs in %s)", err, c.Dir)
	}
	formedAt, err := c.InstalledAt(ctx, all, ring)
	if err != nil {
		return err
	}
	formed := formedAt.Sub(start)
	fmt.Fprintf(w, "  formed one view: ring %s, members %v, %v after start\n\n", ring.Text(), all, ms(formed))

	// The quorum, as corosync-quorumtool -s shows it, once node 1 has it.
	if err := waitQuorate(ctx, c.Node(1).Socket); err != nil {
		return err
	}
	fmt.Fprintf(w, "Quorum on node 1 (conclave quorum status):\n\n")
	var qs strings.Builder
	if err := runQuorum(ctx, c.Node(1).Socket, quorumtool.Command{Kind: quorumtool.KindStatus}, false, &qs); err != nil {
		return fmt.Errorf("quorum status: %w", err)
	}
	for _, line := range strings.Split(strings.TrimRight(qs.String(), "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	fmt.Fprintln(w)

	// A quorum client on node 1 times the failover as an application sees it.
	quorumCB := make(chan time.Time, 16)
	qh, err := votequorum.Initialize(&votequorum.Callbacks{Quorum: func(_ *votequorum.Handle, _ uint64, quorate bool, _ votequorum.RingID, nodes []votequorum.Node) {
		for _, n := range nodes {
			if n.NodeID == 3 && n.State == votequorum.NodestateDead && quorate {
				quorumCB <- time.Now()
			}
		}
	}}, votequorum.WithSocket(c.Node(1).Socket))
	if err != nil {
		return fmt.Errorf("votequorum on node 1: %w", err)
	}
	defer qh.Finalize()
	if err := qh.TrackStart(0, cs.TrackChangesOnly); err != nil {
		return err
	}
	qctx, qcancel := context.WithCancel(ctx)
	defer qcancel()
	go qh.Run(qctx)

	// Watch the survivors before the kill, so their events carry the time.
	survivors := []uint32{1, 2}
	watch, err := c.WatchNews(ctx, survivors)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Killing node 3 (pid %d) with SIGKILL\n", c.PID(3))
	killAt := time.Now()
	if err := c.Kill(3); err != nil {
		return err
	}
	viewAt, err := lab.WaitInstalled(ctx, watch, survivors)
	if err != nil {
		return err
	}
	after, err := c.Status(ctx, 1)
	if err != nil {
		return err
	}
	failover := viewAt.Sub(killAt)
	fmt.Fprintf(w, "  nodes 1 and 2 formed ring %s, members %v, %v after the kill\n", after.RingId.Text(), survivors, ms(failover))
	var quorumFailover time.Duration
	select {
	case at := <-quorumCB:
		quorumFailover = at.Sub(killAt)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no quorum callback on node 1 after the kill (logs in %s)", c.Dir)
	}
	fmt.Fprintf(w, "  a quorum client on node 1 heard: still quorate, node 3 dead, %v after the kill\n\n", ms(quorumFailover))

	fmt.Fprintf(w, "Restarting node 3\n")
	restartAt := time.Now()
	if err := c.StartNode(3); err != nil {
		return err
	}
	rejoinAt, err := lab.WaitInstalled(ctx, watch, all)
	if err != nil {
		return err
	}
	if after, err = c.Status(ctx, 1); err != nil {
		return err
	}
	rejoin := rejoinAt.Sub(restartAt)
	fmt.Fprintf(w, "  node 3 rejoined: ring %s, members %v, %v after the restart\n\n", after.RingId.Text(), all, ms(rejoin))

	fmt.Fprintf(w, "Timing summary\n")
	fmt.Fprintf(w, "  start -> first full view         %8v\n", ms(formed))
	fmt.Fprintf(w, "  SIGKILL -> survivors' new view   %8v\n", ms(failover))
	fmt.Fprintf(w, "  SIGKILL -> quorum callback       %8v\n", ms(quorumFailover))
	fmt.Fprintf(w, "  restart -> rejoined view         %8v\n", ms(rejoin))
	fmt.Fprintf(w, "  (Corosync 3.1.7 defaults, measured on the same kind of machine: 2.6 s to form, 7.7 s to notice a killed daemon)\n")

	if keep {
		var pids []string
		for _, id := range all {
			pids = append(pids, fmt.Sprint(c.PID(id)))
		}
		fmt.Fprintf(w, "\nThe cluster keeps running. Talk to it with:\n")
		for _, id := range all {
			fmt.Fprintf(w, "  CONCLAVE_SOCKET=%s conclave status    (or: conclave quorum status)\n", c.Node(id).Socket)
		}
		fmt.Fprintf(w, "Logs are in %s. Stop it with:\n  kill %s\n", c.Dir, strings.Join(pids, " "))
		return nil
	}
	fmt.Fprintf(w, "\nStopping the cluster\n")
	for _, id := range all {
		if err := c.Stop(ctx, id); err != nil {
			return fmt.Errorf("stopping node %d: %w", id, err)
		}
	}
	stopped = true
	return c.Close()
}

// waitQuorate waits until the agent at socket reports quorum.
func waitQuorate(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		h, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(socket))
		if err == nil {
			info, err := h.GetInfo(0)
			h.Finalize()
			if err == nil && info.Flags&votequorum.InfoQuorate != 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node did not become quorate: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
