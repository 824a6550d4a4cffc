// Command conclave is the Conclave cluster agent and its tools: run an agent,
// ask it for status, make a cluster key, start a local demo cluster, and
// measure one.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:   "conclave",
		Short: "Cluster membership, quorum and group coordination",
		Long: `Conclave runs an agent on every node of a cluster. The agents agree on who is
up (membership views named by ring ids) and serve local programs over a Unix
socket. Start with 'conclave demo' for a local three-node cluster.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(agentCmd(), statusCmd(), quorumCmd(), quorumtoolCmd(), groupsCmd(), keygenCmd(), demoCmd(), benchCmd(), versionCmd())
	if err := root.Execute(); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || ee.err != errSilent {
			fmt.Fprintln(os.Stderr, "conclave:", err)
		}
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "conclave", version)
		},
	}
}
