package agent

import (
	"google.golang.org/grpc"
)

// gsState is the agent's side of the group services: its clients.
type gsState struct{}

func newGSState() *gsState { return &gsState{} }

// registerGroups serves the group-services API on srv.
func (a *Agent) registerGroups(*grpc.Server) {}

// groupsOutput acts on the groups engine's output.
func (a *Agent) groupsOutput() error {
	a.g.Ready()
	return nil
}
