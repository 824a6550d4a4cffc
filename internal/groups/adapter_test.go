package groups

import (
	"errors"
	"testing"
)

// adapter reports node n's link up or down and settles.
func (h *harness) adapter(n NodeID, link int, up bool) {
	h.t.Helper()
	h.eng[n].AdapterStatus(h.now, link, up)
	h.settle()
}

// adapterIDs is the adapter group of link on node n's replica.
func (h *harness) adapterIDs(n NodeID, link int) string {
	_, full := h.eng[n].snapshot(AdapterGroupName(link))
	return ids(full)
}

func TestAdapterGroupName(t *testing.T) {
	if got := AdapterGroupName(1); got != "ha_gs_adapter_membership.link1" {
		t.Fatal(got)
	}
	if len(AdapterGroupName(maxAdapterLink)) > MaxGroupName || validName(AdapterGroupName(maxAdapterLink)) != nil {
		t.Fatal("the highest link's name is not a valid group name")
	}
	for _, tc := range []struct {
		name string
		link int
		ok   bool
	}{
		{AdapterGroupName(0), 0, true},
		{AdapterGroupName(7), 7, true},
		{AdapterGroupName(999), 999, true},
		{AdapterGroupPrefix + "link", 0, false},
		{AdapterGroupPrefix + "link07", 0, false},
		{AdapterGroupPrefix + "link+1", 0, false},
		{AdapterGroupPrefix + "link1000", 0, false},
		{AdapterGroupPrefix + "eth0", 0, false},
		{HostGroupName, 0, false},
	} {
		if l, ok := adapterLink(tc.name); ok != tc.ok || l != tc.link {
			t.Errorf("%s: %d %v", tc.name, l, ok)
		}
	}
}

// Each node announces its own links; every replica holds the same groups
// and subscribers see the deltas. The groups are read-only.
func TestAdapterAnnounce(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	h.adapter(1, 0, true)
	h.adapter(2, 0, true)
	h.adapter(2, 1, true)
	for n := NodeID(1); n <= 3; n++ {
		if got := h.adapterIDs(n, 0); got != "[1/0 2/0]" {
			t.Fatalf("node %d link0: %s", n, got)
		}
		if got := h.adapterIDs(n, 1); got != "[2/1]" {
			t.Fatalf("node %d link1: %s", n, got)
		}
	}
	x := h.subscribe(3, SubscribeAll, AdapterGroupName(0))
	h.expect(x, `sub initial state val="" full=[1/0 2/0]`)
	y := h.subscribe(1, SubscribeMembership|SubscribeDeltasOnly, AdapterGroupName(1))
	h.expect(y, "sub initial full=[2/1]")

	h.adapter(3, 0, true)
	h.expect(x, "sub join full=[1/0 2/0 3/0] ch=[3/0]")
	h.expect(y)
	h.adapter(1, 0, false)
	h.expect(x, "sub leave full=[2/0 3/0] ch=[1/0]")

	// No change, no message.
	h.eng[3].AdapterStatus(h.now, 0, true)
	h.eng[1].AdapterStatus(h.now, 0, false)
	h.eng[1].AdapterStatus(h.now, -1, true)
	h.eng[1].AdapterStatus(h.now, maxAdapterLink+1, true)
	for _, n := range []NodeID{1, 3} {
		if _, norm := h.eng[n].Output(); len(norm) != 0 {
			t.Fatalf("node %d announced an unchanged state", n)
		}
	}

	// The last adapter of link 1 goes down: the subscription stays.
	h.adapter(2, 1, false)
	h.expect(y, "sub leave ch=[2/1]")
	h.adapter(1, 1, true)
	h.expect(y, "sub join ch=[1/1]")

	// A flip announced twice before either is delivered ends as the last.
	h.eng[2].AdapterStatus(h.now, 0, false)
	h.eng[2].AdapterStatus(h.now, 0, true)
	h.settle()
	h.expect(x, "sub leave full=[3/0] ch=[2/0]", "sub join full=[2/0 3/0] ch=[2/0]")
	if got := h.adapterIDs(1, 0); got != "[2/0 3/0]" {
		t.Fatalf("after the flip: %s", got)
	}

	// Nobody has link 5: unknown group; a malformed adapter name too.
	z := h.subscribe(1, SubscribeMembership, AdapterGroupName(5))
	h.expect(z, "error UNKNOWN_GROUP SUBSCRIPTION")
	z = h.subscribe(1, SubscribeMembership, AdapterGroupPrefix+"eth0")
	h.expect(z, "error UNKNOWN_GROUP SUBSCRIPTION")

	// Read-only, and the whole prefix is reserved.
	for _, name := range []string{AdapterGroupName(0), AdapterGroupName(5), AdapterGroupPrefix + "eth0"} {
		if _, err := h.tryJoin(2, 1, onePhase(name)); !errors.Is(err, ErrInvalidGroup) {
			t.Fatalf("join %s: %v", name, err)
		}
	}
	// A join that reaches the stream anyway (another node's older code) is
	// refused asynchronously by every replica.
	w, err := h.tryJoin(2, 1, onePhase("g"))
	if err != nil {
		t.Fatal(err)
	}
	h.eng[2].normOut = nil
	at := onePhase(AdapterGroupName(0)).norm()
	h.eng[2].send(&wmsg{K: kJoin, G: at.GroupName, P: ProviderID{2, 1}, Attrs: &at})
	h.eng[2].byProv[provKey{at.GroupName, 1}] = w.tok
	h.eng[2].tokens[w.tok].group = at.GroupName
	h.settle()
	h.expect(w, "error INVALID_GROUP JOIN")
	if len(h.eng[1].groups) != 0 {
		t.Fatalf("groups: %v", sortedKeys(h.eng[1].groups))
	}
}

// A node that leaves the view loses its adapters; the host group is
// unaffected by link states.
func TestAdapterNodeLeaves(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	for n := NodeID(1); n <= 3; n++ {
		h.adapter(n, 0, true)
	}
	h.adapter(3, 2, true)
	x := h.subscribe(1, SubscribeMembership, AdapterGroupName(0))
	h.expect(x, "sub initial full=[1/0 2/0 3/0]")
	y := h.subscribe(1, SubscribeMembership, AdapterGroupName(2))
	h.expect(y, "sub initial full=[3/2]")
	host := h.subscribe(1, SubscribeMembership, HostGroupName)
	h.expect(host, "sub initial full=[1/0 2/0 3/0]")

	h.kill(3)
	h.view([]NodeID{1, 2})
	h.expect(host, "sub leave full=[1/0 2/0] ch=[3/0]")
	h.expect(x, "sub leave full=[1/0 2/0] ch=[3/0]")
	h.expect(y, "sub leave full=[] ch=[3/2]")
	if _, ok := h.eng[2].adapters[3]; ok {
		t.Fatal("node 3's adapters outlived it")
	}
	h.adapter(2, 0, false)
	h.expect(host)
	h.expect(x, "sub leave full=[1/0] ch=[2/0]")
}

// Partitions merge: each side knows only its own members' adapters, and
// the merged view has everyone's, announced in the sync step. A restarted
// node brings the links it reported before its first view.
func TestAdapterMergeRestart(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	h.view([]NodeID{1, 2}, []NodeID{3})
	h.adapter(1, 0, true)
	h.adapter(3, 0, true)
	h.adapter(3, 1, true)
	if a, b := h.adapterIDs(2, 0), h.adapterIDs(3, 0); a != "[1/0]" || b != "[3/0]" {
		t.Fatalf("partitions: %s %s", a, b)
	}
	x := h.subscribe(2, SubscribeMembership, AdapterGroupName(0))
	h.expect(x, "sub initial full=[1/0]")

	h.view([]NodeID{1, 2, 3})
	h.expect(x, "sub join full=[1/0 3/0] ch=[3/0]")
	for n := NodeID(1); n <= 3; n++ {
		if a, b := h.adapterIDs(n, 0), h.adapterIDs(n, 1); a != "[1/0 3/0]" || b != "[3/1]" {
			t.Fatalf("node %d after the merge: %s %s", n, a, b)
		}
	}

	// Restart node 3: a new engine, links reported before any view.
	h.kill(3)
	h.view([]NodeID{1, 2})
	h.expect(x, "sub leave full=[1/0] ch=[3/0]")
	h.eng[3] = h.restart(3)
	h.eng[3].AdapterStatus(h.now, 0, true)
	if _, norm := h.eng[3].Output(); len(norm) != 0 {
		t.Fatal("announced before the first view")
	}
	h.view([]NodeID{1, 2, 3})
	h.expect(x, "sub join full=[1/0 3/0] ch=[3/0]")
	if got := h.adapterIDs(1, 1); got != "[]" {
		t.Fatalf("link 1 after the restart: %s", got)
	}
}

// Announcements sent before a view change and delivered after it are older
// than the sender's sync header: they are ignored, so subscribers see no
// stale flip.
func TestAdapterStaleAnnouncement(t *testing.T) {
	h := newHarness(t, 1, 2)
	h.adapter(1, 0, true)
	x := h.subscribe(2, SubscribeMembership, AdapterGroupName(0))
	h.expect(x, "sub initial full=[1/0]")
	h.hold = true
	h.eng[1].AdapterStatus(h.now, 0, false)
	h.eng[1].AdapterStatus(h.now, 0, true)
	h.settle()
	if len(h.held[0]) != 2 {
		t.Fatalf("held %d messages", len(h.held[0]))
	}
	h.view([]NodeID{1, 2}) // the held announcements are delivered after it
	h.hold = false
	h.settle()
	h.expect(x)
	if got := h.adapterIDs(2, 0); got != "[1/0]" {
		t.Fatal(got)
	}
}

// A member whose sync header did not arrive has no adapters until it
// announces them again, right after the install.
func TestAdapterHeaderLost(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	h.adapter(1, 0, true)
	h.adapter(2, 0, true)
	x := h.subscribe(2, SubscribeMembership, AdapterGroupName(0))
	h.expect(x, "sub initial full=[1/0 2/0]")
	ring := RingID{Rep: 1, Seq: 50}
	members := []NodeID{1, 2, 3}
	for _, n := range members {
		h.eng[n].Nodelist(h.now, ring, members)
	}
	for _, n := range members {
		s, _ := h.eng[n].Output()
		if n == 1 {
			continue // node 1's whole sync step is lost
		}
		for _, b := range s {
			for _, m := range members {
				h.eng[m].Deliver(h.now, ring, n, b, true)
			}
		}
	}
	for _, n := range members {
		h.eng[n].Installed(h.now, ring, members)
		h.rings[n] = ring
	}
	h.settle()
	h.expect(x, "sub leave full=[2/0] ch=[1/0]", "sub join full=[1/0 2/0] ch=[1/0]")
	for _, n := range members {
		if got := h.adapterIDs(n, 0); got != "[1/0 2/0]" {
			t.Fatalf("node %d: %s", n, got)
		}
	}
}
