package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// NodeID is a configured node number (corosync's nodeid). 0 is reserved.
type NodeID uint32

// RingID names an agreed view: Rep is the node that coordinated it (and
// sequences its messages), Seq a number that only grows on every node,
// across restarts.
type RingID struct {
	Rep NodeID
	Seq uint64
}

// String prints the ring id as Corosync does: "<rep hex>.<seq hex>".
func (r RingID) String() string { return fmt.Sprintf("%x.%x", uint32(r.Rep), r.Seq) }

// IsZero reports whether r names no ring.
func (r RingID) IsZero() bool { return r.Rep == 0 && r.Seq == 0 }

// NodeConfig is one entry of the nodelist as the engine needs it.
type NodeConfig struct {
	ID NodeID
	// Links is a bitmask of the links (0..7) configured for the node.
	// Heartbeats run on every link both ends configure.
	Links uint8
}

// Config holds everything an Engine needs. Zero durations take the defaults
// documented on each field; New validates the result.
type Config struct {
	Self NodeID
	// Incarnation identifies this run of the agent. It must be strictly
	// greater than the incarnation of any earlier run of Self, so that peers
	// can tell a restarted agent from stale packets of the old one. The
	// driver derives it from persisted state (see internal/agent).
	Incarnation uint64
	// Nodes is the whole nodelist, Self included.
	Nodes []NodeConfig

	// Token is the failure-detection timeout: a peer from which nothing was
	// heard for Token is no longer reachable. Default 800ms. This is the
	// effective token (corosync's token + token_coefficient adjustment).
	Token time.Duration
	// Heartbeat is the base heartbeat period. Default Token/8. With more
	// than 64 nodes the period to each peer stretches to
	// Heartbeat*ceil(n/64) so a node sends at most ~64 heartbeats per
	// Heartbeat; Token must stay >= 3 such periods.
	Heartbeat time.Duration
	// Consensus bounds one attempt to form a view: a coordinator that has
	// not heard from every proposed member within Consensus drops the silent
	// ones, and a node waiting for a coordinator gives up on it. Default
	// 1.2*Token (corosync's formula).
	Consensus time.Duration
	// Join is how long the set of reachable nodes must stay unchanged before
	// a coordinator forms a view that adds nodes (so a cluster starting up
	// forms one view, not a cascade). Removals do not wait. Default 50ms.
	Join time.Duration
	// ClockDrift bounds how far apart two nodes' clock rates may be (a
	// fraction: 0.001 = 1000 ppm, far beyond what NTP-disciplined or even
	// free-running quartz clocks do). The quorum lease is shortened by it.
	// Default DefaultClockDrift.
	ClockDrift float64
	// Retransmit is the retransmission timeout for protocol messages and
	// ordered entries. Default Heartbeat/4, at least 1ms.
	Retransmit time.Duration

	// MaxSeq is the highest ring seq this node has persisted. New rings
	// always get a higher seq.
	MaxSeq uint64

	// MaxBatch is the payload budget of one ordered batch in bytes
	// (entries are packed until it is reached). Default 1300, which fits a
	// 1500-byte MTU with transport overhead.
	MaxBatch int
	// SendQueue bounds the bytes of local messages waiting to be ordered;
	// Broadcast returns ErrQueueFull beyond it. Default 16 MiB.
	SendQueue int
	// Window bounds the entries a node has submitted to the representative
	// and not yet seen ordered. Default 512.
	Window int
	// LogLimit bounds the entries the representative keeps that some member
	// has not acknowledged; submissions beyond it wait. Default 16384.
	LogLimit int

	// FlapCount removals of a node within FlapWindow hold it out of views
	// for FlapHolddown (doubling on each repeat, at most 32x). Defaults 4,
	// 60s, 10s.
	FlapCount    int
	FlapWindow   time.Duration
	FlapHolddown time.Duration

	// Logger receives the engine's notices; nil discards them.
	Logger *slog.Logger

	// Testing holds switches that break the protocol on purpose, so tests
	// can show the simulator's invariants catch a broken engine. Never set
	// them outside tests.
	Testing TestingKnobs
}

// TestingKnobs deliberately break the engine.
type TestingKnobs struct {
	// SkipFlush makes a node skip the old view's flush at a view change: it
	// delivers only what it happens to hold instead of the agreed cut.
	SkipFlush bool
}

// Defaults.
const (
	DefaultToken = 800 * time.Millisecond
	// DefaultClockDrift is the default Config.ClockDrift.
	DefaultClockDrift = 0.001
	DefaultJoin       = 50 * time.Millisecond
	DefaultMaxBatch   = 1300
	DefaultSendQueue  = 16 << 20
	DefaultWindow     = 512
	DefaultLogLimit   = 16384
	allToAllLimit     = 64
)

func (c *Config) setDefaults() {
	if c.ClockDrift <= 0 {
		c.ClockDrift = DefaultClockDrift
	}
	if c.Token == 0 {
		c.Token = DefaultToken
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = c.Token / 8
	}
	if c.Consensus == 0 {
		c.Consensus = c.Token * 12 / 10
	}
	if c.Join == 0 {
		c.Join = DefaultJoin
	}
	if c.Retransmit == 0 {
		c.Retransmit = max(c.Heartbeat/4, time.Millisecond)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.LogLimit == 0 {
		c.LogLimit = DefaultLogLimit
	}
	if c.FlapCount == 0 {
		c.FlapCount = 4
	}
	if c.FlapWindow == 0 {
		c.FlapWindow = time.Minute
	}
	if c.FlapHolddown == 0 {
		c.FlapHolddown = 10 * time.Second
	}
}

// period is the heartbeat period to each peer for a nodelist of n nodes.
func (c *Config) period(n int) time.Duration {
	k := (n + allToAllLimit - 1) / allToAllLimit
	return c.Heartbeat * time.Duration(max(k, 1))
}

func (c *Config) validate() error {
	var errs []error
	if c.Self == 0 {
		errs = append(errs, errors.New("self node id is 0"))
	}
	seen := map[NodeID]bool{}
	self := false
	for _, n := range c.Nodes {
		if n.ID == 0 {
			errs = append(errs, errors.New("nodelist contains node id 0"))
		}
		if seen[n.ID] {
			errs = append(errs, fmt.Errorf("node id %d appears twice in the nodelist", n.ID))
		}
		seen[n.ID] = true
		if n.ID == c.Self {
			self = true
		}
		if n.Links == 0 {
			errs = append(errs, fmt.Errorf("node %d has no link configured", n.ID))
		}
	}
	if !self {
		errs = append(errs, fmt.Errorf("self node id %d is not in the nodelist", c.Self))
	}
	if p := c.period(len(c.Nodes)); c.Token < 3*p {
		errs = append(errs, fmt.Errorf("token %v is shorter than 3 heartbeat periods (%v each for %d nodes)", c.Token, p, len(c.Nodes)))
	}
	if c.MaxBatch < 256 {
		errs = append(errs, fmt.Errorf("max batch %d is below 256 bytes", c.MaxBatch))
	}
	return errors.Join(errs...)
}

func sortedIDs(nodes []NodeConfig) []NodeID {
	ids := make([]NodeID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	slices.Sort(ids)
	return ids
}
