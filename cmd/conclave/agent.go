package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/conclave/conclave/internal/agent"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/ipc"
)

func agentCmd() *cobra.Command {
	var o struct {
		config, socket, dataDir, keyFile, logLevel string
		nodeID                                     uint32
	}
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the cluster agent on this node",
		Long: `Run the Conclave agent. FILE is Conclave's TOML configuration or an unmodified
corosync.conf (the format is detected from the content).

The local node is the nodelist entry whose address is bound on this host,
unless --node-id says otherwise. SIGTERM or SIGINT leave the cluster
gracefully: peers see the node leave at once, without a timeout.

Exit status: 0 after a graceful leave, 2 for configuration errors, 1 for
other failures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.config == "" {
				return &exitError{2, errors.New("--config is required")}
			}
			cfg, err := config.Load(o.config)
			if err != nil {
				return &exitError{2, err}
			}
			level, err := parseLevel(firstNonEmpty(o.logLevel, cfg.Agent.LogLevel, "info"))
			if err != nil {
				return &exitError{2, err}
			}
			// The agent's work is serialized by its lock (as Corosync is
			// single-threaded); one scheduler thread spares the cross-thread
			// wake-ups that otherwise dominate small-message latency, and
			// leaves the other cores to the applications. GOMAXPROCS
			// overrides.
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(1)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			a, err := agent.New(ctx, agent.Options{
				Config: cfg, NodeID: o.nodeID, Socket: o.socket, DataDir: o.dataDir,
				KeyFile: o.keyFile, Logger: log, Version: version,
			})
			if err != nil {
				var ce *config.Error
				if errors.As(err, &ce) {
					return &exitError{2, err}
				}
				return err
			}
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "configuration file: Conclave TOML or corosync.conf (required)")
	f.Uint32Var(&o.nodeID, "node-id", 0, "this node's id in the nodelist (default: the entry whose address is bound here)")
	f.StringVar(&o.socket, "socket", "", "client socket path (default: the config's agent.socket, then "+ipc.DefaultSocket+")")
	f.StringVar(&o.dataDir, "data-dir", "", "where the ring seq and incarnation persist (default: agent.data_dir, then "+agent.DefaultDataDir+")")
	f.StringVar(&o.keyFile, "key-file", "", "cluster key file (default: the config's keyfile)")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (default: agent.log_level, then info)")
	return cmd
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
