package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/quorumtool"
	"github.com/conclave/conclave/votequorum"
)

// quorumCmd is `conclave quorum`: corosync-quorumtool's functions as
// subcommands. `conclave quorumtool` (below) takes its flags instead.
func quorumCmd() *cobra.Command {
	var socket string
	var o quorumtool.Options
	var order string
	cmd := &cobra.Command{
		Use:   "quorum",
		Short: "Show or change the cluster's quorum (as corosync-quorumtool)",
		Long: `Show or change the quorum of the local node's cluster, as corosync-quorumtool
does: 'status' prints the same layout and exits 0 quorate, 2 not quorate, 1 on
error. 'conclave quorumtool' accepts corosync-quorumtool's own flags.

The socket is --socket, else $` + ipc.SocketEnv + `, else ` + ipc.DefaultSocket + `.`,
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "agent socket (default $"+ipc.SocketEnv+", then "+ipc.DefaultSocket+")")
	cmd.PersistentFlags().BoolVarP(&o.Hex, "hex", "H", false, "node ids in hexadecimal")
	cmd.PersistentFlags().BoolVarP(&o.IPs, "ips", "i", false, "show addresses instead of names")
	cmd.PersistentFlags().BoolVarP(&o.AllAddrs, "all-addrs", "a", false, "show every address of a node")
	cmd.PersistentFlags().StringVarP(&order, "order", "o", "a", "order nodes by a(ddress, as listed), n(ame) or i(d)")
	cmd.PersistentFlags().BoolVarP(&o.Parsable, "parsable", "p", false, "always show the Qdevice column")
	opts := func() (quorumtool.Options, error) {
		if order != "a" && order != "n" && order != "i" {
			return o, quorumtool.ErrBadOrder
		}
		o.Order = order[0]
		o.Stderr = os.Stderr
		return o, nil
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Print the quorum status (corosync-quorumtool -s); exit 0 quorate, 2 not, 1 error",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			op, err := opts()
			if err != nil {
				return &exitError{1, err}
			}
			return runQuorum(c.Context(), socket, quorumtool.Command{Kind: quorumtool.KindStatus, Options: op}, asJSON, c.OutOrStdout())
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON (a stable shape for scripts)")
	simple := func(use, short string, kind quorumtool.Kind) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				op, err := opts()
				if err != nil {
					return &exitError{1, err}
				}
				return runQuorum(c.Context(), socket, quorumtool.Command{Kind: kind, Options: op}, false, c.OutOrStdout())
			},
		}
	}
	expected := &cobra.Command{
		Use:   "expected N",
		Short: "Set the cluster's expected votes (corosync-quorumtool -e)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n < 1 || n > 1<<31-1 {
				return &exitError{1, quorumtool.ErrBadExpected}
			}
			return runQuorum(c.Context(), socket, quorumtool.Command{Kind: quorumtool.KindSetExpected, Expected: uint32(n)}, false, c.OutOrStdout())
		},
	}
	var node int64
	votes := &cobra.Command{
		Use:   "votes [--node ID] N",
		Short: "Set a node's votes (corosync-quorumtool -v, -n); default the local node",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n < 0 || n > 1<<31-1 {
				return &exitError{1, quorumtool.ErrBadVotes}
			}
			if c.Flags().Changed("node") && (node < 1 || node > 1<<32-1) {
				return &exitError{1, quorumtool.ErrBadNodeID}
			}
			return runQuorum(c.Context(), socket, quorumtool.Command{Kind: quorumtool.KindSetVotes, Votes: uint32(n), NodeID: uint32(node)}, false, c.OutOrStdout())
		},
	}
	votes.Flags().Int64Var(&node, "node", 0, "the node whose votes change (default: this node)")
	cancel := &cobra.Command{
		Use:   "cancel-wfa",
		Short: "Stop waiting for all nodes (wait_for_all) on every node",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			h, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(ipc.SocketPath(socket)))
			if err != nil {
				return &exitError{1, fmt.Errorf("Cannot initialise VOTEQUORUM service: %w", err)}
			}
			defer h.Finalize()
			if err := h.CancelWaitForAll(); err != nil {
				return &exitError{1, fmt.Errorf("Unable to cancel wait_for_all: %w", err)}
			}
			return nil
		},
	}
	cmd.AddCommand(status,
		simple("list", "List the member nodes (corosync-quorumtool -l)", quorumtool.KindList),
		simple("monitor", "Print the status again on every change (corosync-quorumtool -m)", quorumtool.KindMonitor),
		expected, votes, cancel,
		simple("unregister-device", "Unregister this node's quorum device (corosync-quorumtool -f)", quorumtool.KindUnregister))
	return cmd
}

// quorumtoolCmd is `conclave quorumtool`: corosync-quorumtool's command line,
// so existing scripts run unchanged.
func quorumtoolCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "quorumtool [corosync-quorumtool options]",
		Short:              "corosync-quorumtool's command line (-s -l -m -e -v -n -f -o -H -i -p -a -V -h)",
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			qc, err := quorumtool.ParseQuorumtool(args)
			var ue *quorumtool.UsageError
			switch {
			case errors.As(err, &ue):
				fmt.Fprintf(os.Stderr, "conclave quorumtool: %s\n", ue.Msg)
				quorumtool.Usage(c.OutOrStdout(), "conclave quorumtool")
				return &exitError{1, errSilent}
			case err != nil:
				fmt.Fprintln(os.Stderr, err)
				return &exitError{1, errSilent}
			}
			switch qc.Kind {
			case quorumtool.KindHelp:
				quorumtool.Usage(c.OutOrStdout(), "conclave quorumtool")
				return nil
			case quorumtool.KindVersion:
				fmt.Fprintf(c.OutOrStdout(), "conclave quorumtool version: %s\n", version)
				return nil
			}
			qc.Options.Stderr = os.Stderr
			return runQuorum(c.Context(), ipc.SocketPath(""), qc, false, c.OutOrStdout())
		},
	}
}

// errSilent ends the process with its exit code after the message was
// printed already.
var errSilent = errors.New("")

// runQuorum runs one corosync-quorumtool command against the agent.
func runQuorum(ctx context.Context, socket string, qc quorumtool.Command, asJSON bool, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var changed chan struct{}
	cb := &votequorum.Callbacks{}
	if qc.Kind == quorumtool.KindMonitor {
		changed = make(chan struct{}, 1)
		cb.Quorum = func(*votequorum.Handle, uint64, bool, votequorum.RingID, []votequorum.Node) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	h, err := votequorum.Initialize(cb, votequorum.WithSocket(ipc.SocketPath(socket)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "Cannot initialise VOTEQUORUM service")
		return &exitError{1, err}
	}
	defer h.Finalize()
	local := func() (uint32, error) {
		info, err := h.GetInfo(0)
		return info.NodeID, err
	}
	fail := func(err error) error {
		id, _ := local()
		fmt.Fprintln(os.Stderr, qc.Failure(id, err))
		return &exitError{1, errSilent}
	}
	switch qc.Kind {
	case quorumtool.KindSetExpected:
		if err := h.SetExpected(qc.Expected); err != nil {
			return fail(err)
		}
		return nil
	case quorumtool.KindSetVotes:
		id, err := local()
		if err != nil {
			fmt.Fprintln(os.Stderr, "Unable to retrieve this_node_id")
			return &exitError{1, errSilent}
		}
		if err := h.SetVotes(qc.Target(id), qc.Votes); err != nil {
			return fail(err)
		}
		return nil
	case quorumtool.KindUnregister:
		info, err := h.GetInfo(0)
		if err != nil || info.QdeviceName == "" {
			if err == nil {
				err = cs.ErrNotExist
			}
			return fail(err)
		}
		if err := h.QdeviceUnregister(info.QdeviceName); err != nil {
			return fail(err)
		}
		return nil
	}
	st, err := h.Status()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Unable to get quorum status: %v\n", err)
		return &exitError{1, errSilent}
	}
	d := quorumData(st, time.Now())
	switch qc.Kind {
	case quorumtool.KindList:
		quorumtool.List(out, d, qc.Options)
		return nil
	case quorumtool.KindMonitor:
		if err := h.TrackStart(0, cs.TrackChanges); err != nil {
			return &exitError{1, fmt.Errorf("Unable to start tracking: %w", err)}
		}
		sig, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		runErr := make(chan error, 1)
		go func() { runErr <- h.Run(sig) }()
		for {
			select {
			case <-sig.Done():
				return nil
			case err := <-runErr:
				// The agent went away: -m only exits on error (1).
				if err == nil {
					return nil
				}
				return &exitError{1, fmt.Errorf("Unable to dispatch quorum events: %w", err)}
			case <-changed:
			}
			st, err := h.Status()
			if err != nil {
				return &exitError{1, fmt.Errorf("Unable to display quorum data: %w", err)}
			}
			if err := quorumtool.MonitorUpdate(out, quorumData(st, time.Now()), qc.Options); err != nil {
				return &exitError{1, err}
			}
		}
	}
	if asJSON {
		if err := quorumtool.JSON(out, d); err != nil {
			return &exitError{1, err}
		}
		if code := quorumtool.ExitCode(d); code != 0 {
			return &exitError{code, errSilent}
		}
		return nil
	}
	if code := quorumtool.Status(out, d, qc.Options); code != 0 {
		return &exitError{code, errSilent}
	}
	return nil
}

// quorumData turns the agent's status into what quorumtool prints.
func quorumData(st *clientpb.VQStatus, now time.Time) quorumtool.Data {
	l := st.GetLocal()
	d := quorumtool.Data{
		Date: now, Provider: st.Provider, Quorate: st.Quorate, NodeID: l.GetNodeId(),
		RingRep: st.GetRingId().GetRep(), RingSeq: st.GetRingId().GetSeq(), WaitForAllStatus: st.WaitForAllStatus,
		Info: quorumtool.Info{NodeState: l.GetNodeState(), NodeVotes: l.GetNodeVotes(), NodeExpectedVotes: l.GetNodeExpectedVotes(),
			HighestExpected: l.GetHighestExpected(), TotalVotes: l.GetTotalVotes(), Quorum: l.GetQuorum(), Flags: l.GetFlags(),
			QdeviceVotes: l.GetQdeviceVotes(), QdeviceName: l.GetQdeviceName()},
	}
	byID := map[uint32]*clientpb.VQNodeStatus{}
	for _, n := range st.Nodes {
		byID[n.GetInfo().GetNodeId()] = n
		state := map[uint32]string{1: "member", 2: "dead", 3: "leaving"}[n.GetInfo().GetNodeState()]
		d.AllNodes = append(d.AllNodes, quorumtool.KnownNode{NodeID: n.GetInfo().GetNodeId(), Name: n.Name,
			Votes: n.GetInfo().GetNodeVotes(), Expected: n.GetInfo().GetNodeExpectedVotes(), State: state,
			Local: n.GetInfo().GetNodeId() == d.NodeID})
	}
	for _, id := range st.Members {
		m := quorumtool.Member{NodeID: id}
		if n, ok := byID[id]; ok {
			m.Name, m.Addrs, m.Votes, m.Flags = n.Name, n.Addrs, n.GetInfo().GetNodeVotes(), n.GetInfo().GetFlags()
		} else {
			m.Err = cs.ErrNotExist
		}
		d.Members = append(d.Members, m)
	}
	return d
}
