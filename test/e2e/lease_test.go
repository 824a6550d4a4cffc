package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/lab"
	"github.com/conclave/conclave/votequorum"
)

// quorumEvent is one quorum callback as a tracking client saw it, stamped
// by the agent that sent it.
type quorumEvent struct {
	node    uint32
	quorate bool
	ring    votequorum.RingID
	members []uint32
	at      time.Time
}

// trackQuorum collects the quorum callbacks of node id until ctx ends.
func trackQuorum(t *testing.T, ctx context.Context, c *lab.Cluster, id uint32, mu *sync.Mutex, events *[]quorumEvent) {
	t.Helper()
	cb := &votequorum.Callbacks{Quorum: func(_ *votequorum.Handle, _ uint64, quorate bool, ring votequorum.RingID, nodes []votequorum.Node) {
		var members []uint32
		for _, n := range nodes {
			if n.State == votequorum.NodestateMember {
				members = append(members, n.NodeID)
			}
		}
		mu.Lock()
		*events = append(*events, quorumEvent{node: id, quorate: quorate, ring: ring, members: members, at: time.Now()})
		mu.Unlock()
	}}
	h, err := votequorum.Initialize(cb, votequorum.WithSocket(c.Node(id).Socket))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		t.Fatal(err)
	}
	go func() {
		h.Run(ctx)
		h.Finalize()
	}()
}

// TestNetnsQuorumLease: when one node of three is cut off, its "not
// quorate" callback comes strictly before the other side's quorum callback
// for a view without it — every time, over 20 cuts (docs/quorum.md).
func TestNetnsQuorumLease(t *testing.T) {
	t.Parallel()
	// Cutting nodes off again and again is flapping: the hold-down that
	// protects a cluster from a flapping node would keep them out.
	c := startNetns(t, lab.Options{Nodes: 3, Format: "corosync", Totem: [][2]string{{"flap_count", "1000"}}})
	waitView(t, c, ids(3), ids(3))
	waitQuorum(t, c, ids(3), want{true, 3, 3, 3, 2, 3, "Quorate ", ids(3)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var events []quorumEvent
	for _, id := range ids(3) {
		trackQuorum(t, ctx, c, id, &mu, &events)
	}
	const runs = 20
	var margins []time.Duration
	for run := range runs {
		cut := uint32(run%3 + 1)
		var rest []uint32
		for _, id := range ids(3) {
			if id != cut {
				rest = append(rest, id)
			}
		}
		mu.Lock()
		events = events[:0]
		mu.Unlock()
		if err := c.Partition([]uint32{cut}, rest); err != nil {
			t.Fatal(err)
		}
		waitView(t, c, rest, rest)
		// Wait for both callbacks: the cut node's "not quorate", and the
		// quorate view without it on each other node.
		var lost time.Time
		took := map[uint32]time.Time{}
		deadline := time.Now().Add(waitTimeout)
		for {
			mu.Lock()
			for _, e := range events {
				if e.node == cut && !e.quorate && lost.IsZero() {
					lost = e.at
				}
				if e.node != cut && e.quorate && !slices.Contains(e.members, cut) && took[e.node].IsZero() {
					took[e.node] = e.at
				}
			}
			mu.Unlock()
			if !lost.IsZero() && len(took) == len(rest) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: node %d cut off: lost quorum at %v, the others' views without it %v", run, cut, lost, took)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for id, at := range took {
			if !lost.Before(at) {
				t.Errorf("run %d: node %d reported a quorate view without node %d at %v, but node %d reported not quorate only at %v",
					run, id, cut, at.Format(time.StampMicro), cut, lost.Format(time.StampMicro))
			}
			margins = append(margins, at.Sub(lost))
		}
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		waitView(t, c, ids(3), ids(3))
		waitQuorum(t, c, ids(3), want{true, 3, 3, 3, 2, 3, "Quorate ", ids(3)})
	}
	slices.Sort(margins)
	t.Logf("the isolated node lost quorum before the others moved on by: min %v, median %v, max %v",
		margins[0], margins[len(margins)/2], margins[len(margins)-1])
}
