package main

import (
	"crypto/rand"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/conclave/conclave/internal/transport"
)

func keygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write a new cluster key",
		Long: `Write a new random cluster key to FILE (mode 0600; an existing file is never
overwritten). Copy the same file to every node. Every frame between agents
is encrypted and authenticated with it. A corosync authkey works as well.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &exitError{2, fmt.Errorf("--out is required")}
			}
			if err := transport.WriteKey(out, rand.Reader); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote a new cluster key to %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create (required)")
	return cmd
}
