package agent

import (
	"fmt"
	"sync"
	"testing"

	"github.com/conclave/conclave/gs"
)

// adapterWatch subscribes to link 0's adapter group on sock and records
// the full membership of every notification.
type adapterWatch struct {
	mu   sync.Mutex
	full []string
}

func watchAdapters(t *testing.T, sock string) *adapterWatch {
	t.Helper()
	w := &adapterWatch{}
	p := newProbe(t, sock)
	_, err := p.c.Subscribe(gs.SubscribeRequest{Control: gs.SubscribeMembership, Group: gs.AdapterGroupPrefix + "link0",
		Callback: func(_ *gs.Client, n *gs.SubscriptionNotification) {
			w.mu.Lock()
			w.full = append(w.full, fmt.Sprint(n.FullMembership))
			w.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *adapterWatch) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.full) == 0 {
		return ""
	}
	return w.full[len(w.full)-1]
}

// A node alone in its configuration: its link counts as up.
func TestAdapterGroupAlone(t *testing.T) {
	agents := startAgents(t, 60, 1, nil)
	waitInstalled(t, agents, 1)
	w := watchAdapters(t, agents[0].sock)
	waitFor(t, "link 0 of node 1", func() bool { return w.last() == "[1/0]" })
}

// Two nodes: each one's link 0 is up while it reaches the other; when node
// 2 stops, node 1 reaches nobody on link 0 and the group empties, without
// ending the subscription.
func TestAdapterGroupPeers(t *testing.T) {
	agents := startAgents(t, 62, 2, nil)
	waitInstalled(t, agents, 2)
	w := watchAdapters(t, agents[0].sock)
	waitFor(t, "both adapters", func() bool { return w.last() == "[1/0 2/0]" })
	agents[1].cancel()
	<-agents[1].done
	agents[1].done <- nil // for the cleanup
	waitFor(t, "no adapter left", func() bool { return w.last() == "[]" })
}
