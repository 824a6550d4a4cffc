package main

import "github.com/spf13/cobra"

func demoCmd() *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "Start a local three-node cluster"}
}
func benchCmd() *cobra.Command { return &cobra.Command{Use: "bench", Short: "Measure a local cluster"} }
