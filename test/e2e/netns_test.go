package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/lab"
)

// needNetns skips a test that needs network namespaces where they cannot
// be had (not root, tools missing), saying why.
func needNetns(t *testing.T) {
	t.Helper()
	if ok, why := lab.NetnsAvailable(); !ok {
		t.Skipf("needs network namespaces: %s", why)
	}
}

// netnsToken: in namespaces packets cross veths and a bridge, and the
// fault tests run several clusters at once; a little more room than the
// loopback token.
const netnsToken = 500 * time.Millisecond

func startNetns(t *testing.T, o lab.Options) *lab.Cluster {
	t.Helper()
	needNetns(t)
	o.Netns = true
	if o.Token == 0 {
		o.Token = netnsToken
	}
	return start(t, o)
}

// stableFor checks that the nodes keep reporting the view ring with members
// for d: it observes a period of time on purpose, because "the view is
// kept" cannot be seen at one instant.
func stableFor(t *testing.T, c *lab.Cluster, nodes, members []uint32, ring ringID, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, id := range nodes {
			st, err := c.Status(ctxFor(t, 5*time.Second), id)
			if err != nil {
				t.Fatal(err)
			}
			if !lab.InView(st, members) || st.RingId.Rep != ring.Rep || st.RingId.Seq != ring.Seq {
				t.Fatalf("node %d left view %v ring %s: now %s", id, members, ring, lab.DescribeStatus(st))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linkUp reports whether node `at` sees its link to node peer as up.
func linkUp(st *clientpb.StatusReply, peer uint32, link int) bool {
	for _, l := range st.Links {
		if l.Node == peer && int(l.Link) == link {
			return l.Up
		}
	}
	return false
}

// waitLink waits until node at sees link `link` to peer as up or down.
func waitLink(t *testing.T, c *lab.Cluster, at, peer uint32, link int, up bool) {
	t.Helper()
	ctx := ctxFor(t, waitTimeout)
	for {
		st, err := c.Status(ctx, at)
		if err == nil && linkUp(st, peer, link) == up {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %d never saw link %d to node %d as up=%v (last: %v)", at, link, peer, up, st.GetLinks())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestNetnsLinkDown: with two links, losing one keeps the view; losing
// both drops the node; restoring them brings it back.
func TestNetnsLinkDown(t *testing.T) {
	t.Parallel()
	c := startNetns(t, lab.Options{Nodes: 3, Links: 2})
	r1 := waitView(t, c, ids(3), ids(3))

	if err := c.LinkDown(3, 0); err != nil {
		t.Fatal(err)
	}
	waitLink(t, c, 1, 3, 0, false)
	waitLink(t, c, 3, 1, 0, false)
	stableFor(t, c, ids(3), ids(3), r1, 4*netnsToken)

	if err := c.LinkDown(3, 1); err != nil {
		t.Fatal(err)
	}
	r2 := waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	waitView(t, c, []uint32{3}, []uint32{3})
	if r2.Seq <= r1.Seq {
		t.Errorf("view without node 3 has ring %s, not above %s", r2, r1)
	}

	for l := range 2 {
		if err := c.LinkUp(3, l); err != nil {
			t.Fatal(err)
		}
	}
	r3 := waitView(t, c, ids(3), ids(3))
	if r3.Seq <= r2.Seq {
		t.Errorf("view after the links came back has ring %s, not above %s", r3, r2)
	}
	for _, peer := range []uint32{1, 2} {
		for l := range 2 {
			waitLink(t, c, 3, peer, l, true)
		}
	}
}

// TestNetnsPartition: a 2|3 split forms a view on each side; healed, one
// view again.
func TestNetnsPartition(t *testing.T) {
	t.Parallel()
	c := startNetns(t, lab.Options{Nodes: 5})
	r1 := waitView(t, c, ids(5), ids(5))
	if err := c.Partition([]uint32{1, 2}, []uint32{3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	a := waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	b := waitView(t, c, []uint32{3, 4, 5}, []uint32{3, 4, 5})
	for _, r := range []ringID{a, b} {
		if r.Seq <= r1.Seq {
			t.Errorf("a partition's view has ring %s, not above %s", r, r1)
		}
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	r2 := waitView(t, c, ids(5), ids(5))
	if r2.Seq <= max(a.Seq, b.Seq) {
		t.Errorf("the merged view has ring %s, not above %s and %s", r2, a, b)
	}
}

// settled looks for a stable state of the whole cluster: every node
// operational and installed, and every member of each node's view
// reporting exactly the same view. It returns the views by node.
func settled(ctx context.Context, c *lab.Cluster, nodes []uint32) (map[uint32]*clientpb.StatusReply, bool) {
	st := map[uint32]*clientpb.StatusReply{}
	for _, id := range nodes {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := c.Status(cctx, id)
		cancel()
		if err != nil || r.State != "operational" || !r.Installed || r.RingId == nil {
			return nil, false
		}
		st[id] = r
	}
	for _, id := range nodes {
		for _, m := range st[id].Members {
			o, ok := st[m]
			if !ok || !lab.SameRing(o.RingId, st[id].RingId) || !slices.Equal(o.Members, st[id].Members) {
				return nil, false
			}
		}
	}
	return st, true
}

func describe(st map[uint32]*clientpb.StatusReply) string {
	s := ""
	for id := uint32(1); int(id) <= len(st); id++ {
		s += fmt.Sprintf(" node %d: %s;", id, lab.DescribeStatus(st[id]))
	}
	return s
}

// TestNetnsOneWayDrop: when packets from node 1 to node 3 are lost but the
// reverse direction works, the cluster must still settle into views its
// members agree on, and keep them (no endless view changes); healed, it
// forms one view.
func TestNetnsOneWayDrop(t *testing.T) {
	t.Parallel()
	c := startNetns(t, lab.Options{Nodes: 3})
	r1 := waitView(t, c, ids(3), ids(3))
	if err := c.DropOneWay(1, 3); err != nil {
		t.Fatal(err)
	}
	// The three-node view cannot survive: 3 never hears from 1.
	ctx := ctxFor(t, waitTimeout)
	hold := 5 * netnsToken // "a few tokens" of an unchanged, agreed state
	var since time.Time
	var stable map[uint32]*clientpb.StatusReply
	var last string
	for {
		st, ok := settled(ctx, c, ids(3))
		switch {
		case !ok:
			since, stable = time.Time{}, nil
		case stable == nil || describe(st) != describe(stable):
			since, stable = time.Now(), st
		case time.Since(since) >= hold:
			t.Logf("settled:%s", describe(stable))
			goto settledOK
		}
		if st != nil {
			last = describe(st)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("with packets from node 1 to node 3 dropped the cluster never kept agreed views for %v; last agreed state:%s", hold, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
settledOK:
	for id, st := range stable {
		if slices.Equal(st.Members, ids(3)) && lab.SameRing(st.RingId, &clientpb.RingID{Rep: r1.Rep, Seq: r1.Seq}) {
			t.Errorf("node %d still reports the original view %s although node 3 cannot hear node 1", id, r1)
		}
		if slices.Contains(st.Members, 1) && slices.Contains(st.Members, 3) {
			t.Errorf("node %d's view %v has both node 1 and node 3, which cannot hear each other", id, st.Members)
		}
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, ids(3), ids(3))
}

// netemCheck puts netem on every node (before the agents start, so the
// view must form under it, or once they run, so the view must survive it),
// then checks that the view forms and stays, and that ordered messages all
// arrive in one order.
func netemCheck(t *testing.T, beforeStart bool, args ...string) {
	needNetns(t)
	o := lab.Options{Binary: binary, Nodes: 3, Netns: true, Token: netnsToken, Keep: os.Getenv("CONCLAVE_E2E_KEEP") != ""}
	c, err := lab.New(o)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, c)
	netem := func() {
		for _, id := range ids(3) {
			if err := c.Netem(id, args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if beforeStart {
		netem()
	}
	for _, id := range ids(3) {
		if err := c.StartNode(id); err != nil {
			t.Fatal(err)
		}
	}
	r := waitView(t, c, ids(3), ids(3))
	if !beforeStart {
		netem()
	}
	stableFor(t, c, ids(3), ids(3), r, 4*netnsToken)
	messageCheck(t, c, ids(3), []uint32{1, 2}, 200, 2*waitTimeout, nil)
	stableFor(t, c, ids(3), ids(3), r, netnsToken)
}

// TestNetnsLoss: 20% of every node's packets are lost.
func TestNetnsLoss(t *testing.T) {
	needNetns(t)
	t.Parallel()
	t.Run("from the start", func(t *testing.T) { netemCheck(t, true, "loss", "20%") })
	t.Run("on a running cluster", func(t *testing.T) { netemCheck(t, false, "loss", "20%") })
}

// TestNetnsDelay: every node's packets are delayed 50 ms ± 20 ms, which
// also reorders them.
func TestNetnsDelay(t *testing.T) {
	needNetns(t)
	t.Parallel()
	t.Run("from the start", func(t *testing.T) { netemCheck(t, true, "delay", "50ms", "20ms") })
	t.Run("on a running cluster", func(t *testing.T) { netemCheck(t, false, "delay", "50ms", "20ms") })
}
