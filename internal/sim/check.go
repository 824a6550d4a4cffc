package sim

import (
	"fmt"
	"slices"

	"github.com/conclave/conclave/internal/membership"
)

// Checker verifies the protocol's safety properties as each step's events
// happen (every step's output is checked before the next step runs):
//
//   - one ring id, one membership: every node that starts a view with a
//     given ring id names the same members, and is one of them;
//   - a node's ring seq only grows (across restarts), and a ring is used
//     only after its seq was persisted;
//   - total order: in each view, the sequences of messages nodes deliver are
//     prefixes of one sequence;
//   - virtual synchrony: nodes that move together from view A to view B
//     delivered the same number (hence, by the above, the same messages) of
//     view A;
//   - a delivered message comes from a member of its view, and no node
//     delivers a message twice;
//   - a view is installed only after it started at that node.
type Checker struct {
	s          *Sim
	err        error
	rings      map[membership.RingID][]NodeID
	ref        map[membership.RingID][]string // reference delivery sequence per ring
	transition map[[2]membership.RingID]int
	per        map[NodeID]*nodeTrack
	installs   uint64
	views      uint64
	deliveries uint64
}

type nodeTrack struct {
	ring      membership.RingID
	members   []NodeID
	pos       int // deliveries in ring
	lastSeq   uint64
	seen      map[string]bool
	started   map[membership.RingID]bool
	inService bool
}

func newChecker(s *Sim) *Checker {
	return &Checker{
		s:          s,
		rings:      map[membership.RingID][]NodeID{},
		ref:        map[membership.RingID][]string{},
		transition: map[[2]membership.RingID]int{},
		per:        map[NodeID]*nodeTrack{},
	}
}

// Err returns the first violation.
func (c *Checker) Err() error { return c.err }

// Counts returns views started, views installed and messages delivered.
func (c *Checker) Counts() (views, installs, deliveries uint64) {
	return c.views, c.installs, c.deliveries
}

func (c *Checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("seed %d, t=%v: %s", c.s.opts.Seed, c.s.Elapsed(), fmt.Sprintf(format, args...))
	}
}

func (c *Checker) track(id NodeID) *nodeTrack {
	t := c.per[id]
	if t == nil {
		t = &nodeTrack{started: map[membership.RingID]bool{}}
		c.per[id] = t
	}
	return t
}

func (c *Checker) nodeStarted(n *Node) {
	t := c.track(n.ID)
	t.ring, t.members, t.pos = membership.RingID{}, nil, 0
	t.seen = map[string]bool{}
	t.inService = false
}

func (c *Checker) nodeStopped(n *Node) {
	t := c.track(n.ID)
	t.ring, t.members, t.pos = membership.RingID{}, nil, 0
}

func (c *Checker) event(n *Node, ev membership.Event) {
	t := c.track(n.ID)
	switch ev.Kind {
	case membership.EventNodelist:
		c.views++
		if m, ok := c.rings[ev.Ring]; ok && !slices.Equal(m, ev.Members) {
			c.fail("ring %s: node %d has members %v, another node had %v", ev.Ring, n.ID, ev.Members, m)
		}
		c.rings[ev.Ring] = slices.Clone(ev.Members)
		if !slices.Contains(ev.Members, n.ID) {
			c.fail("ring %s: node %d starts a view without itself: %v", ev.Ring, n.ID, ev.Members)
		}
		if ev.Ring.Seq <= t.lastSeq {
			c.fail("node %d: ring seq went from %d to %d", n.ID, t.lastSeq, ev.Ring.Seq)
		}
		if ev.Ring.Seq > n.Persisted {
			c.fail("node %d: ring %s used before its seq was persisted (persisted %d)", n.ID, ev.Ring, n.Persisted)
		}
		t.lastSeq = ev.Ring.Seq
		if !t.ring.IsZero() {
			key := [2]membership.RingID{t.ring, ev.Ring}
			if k, ok := c.transition[key]; ok && k != t.pos {
				c.fail("virtual synchrony: node %d moved from %s to %s after %d deliveries, another node after %d",
					n.ID, t.ring, ev.Ring, t.pos, k)
			}
			c.transition[key] = t.pos
		}
		t.ring, t.members, t.pos = ev.Ring, slices.Clone(ev.Members), 0
		t.started[ev.Ring] = true
		t.inService = false
	case membership.EventDeliver:
		c.deliveries++
		if ev.Ring != t.ring {
			c.fail("node %d delivers in ring %s while in ring %s", n.ID, ev.Ring, t.ring)
			return
		}
		if !slices.Contains(t.members, ev.From) {
			c.fail("node %d: ring %s delivers a message from non-member %d", n.ID, ev.Ring, ev.From)
		}
		key := fmt.Sprintf("%d:%s", ev.From, ev.Payload)
		ref := c.ref[ev.Ring]
		switch {
		case t.pos < len(ref) && ref[t.pos] != key:
			c.fail("total order: ring %s position %d: node %d delivers %q, another node %q", ev.Ring, t.pos, n.ID, key, ref[t.pos])
		case t.pos == len(ref):
			c.ref[ev.Ring] = append(ref, key)
		}
		t.pos++
		// Hosted services may legitimately send the same bytes twice (a
		// state announcement repeated); only Send's unique texts are
		// checked for duplicates.
		if !ev.Sync && !ev.Repeat && !isServicePayload(ev.Payload) {
			if t.seen[key] {
				c.fail("node %d delivers %q twice", n.ID, key)
			}
			t.seen[key] = true
		}
	case membership.EventInstalled:
		c.installs++
		if !t.started[ev.Ring] {
			c.fail("node %d installs ring %s it never started", n.ID, ev.Ring)
		}
		if ev.Ring == t.ring {
			t.inService = true
		}
	}
}

// isServicePayload: the payload belongs to a hosted service (its leading
// byte is a service byte, never a printable character of Send's texts).
func isServicePayload(p []byte) bool { return len(p) > 0 && p[0] >= ServiceByte && p[0] < ' ' }
