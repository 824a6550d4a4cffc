package groupsim

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/sim"
)

var (
	seeds = flag.Int("groups.seeds", 200, "random seeds for TestRandomProperties")
	seed1 = flag.Uint64("groups.seed", 0, "run only this seed")
	from  = flag.Uint64("groups.from", 1, "first seed of TestRandomProperties")
	trace = flag.Bool("groups.trace", false, "print every notification and view change (with -groups.seed)")
	wire  = flag.Bool("groups.wire", false, "print every delivery of the engines' ordered stream (with -groups.seed)")
	steps = flag.Int("groups.steps", 60, "random actions per seed")
)

// TestRandomProperties drives clusters of 3–5 nodes through random
// requests (joins, state changes, messages, leaves, expels with
// deactivate scripts that succeed, fail or hang, attribute changes,
// goodbyes, subscriptions), random votes with think times and tardy
// voters, clients that die or stop dispatching, and random partitions,
// heals, crashes, silent halts, restarts and pauses. The properties of
// checker.go are checked after every simulator step; at the end the
// network heals, every client answers, and once the cluster has converged
// and every protocol ended, every node must hold the same replica and
// every two live members of a group must have seen the same outcomes.
func TestRandomProperties(t *testing.T) {
	n := *seeds
	if testing.Short() {
		n = min(n, 30)
	}
	var total runStats
	first, last := *from, *from+uint64(n)-1
	if *seed1 != 0 {
		first, last, n = *seed1, *seed1, 1
	}
	for s := first; s <= last; s++ {
		st, err := randomRun(s, *steps)
		if err != nil {
			t.Errorf("seed %d: %v (rerun with -groups.seed=%d)", s, err, s)
			continue
		}
		total.add(st)
	}
	t.Logf("%d seeds: %d votes cast; providers saw %d outcomes, %d pairwise matches, %d forks (partitions), "+
		"%d n-phase vote checks, %d tardy announcements, %d merge dissolutions", n, total.votes, total.outcomes,
		total.compared, total.forks, total.resolved, total.tardy, total.merges)
}

type runStats struct{ votes, outcomes, compared, forks, resolved, tardy, merges int }

func (s *runStats) add(o runStats) {
	s.votes += o.votes
	s.outcomes += o.outcomes
	s.compared += o.compared
	s.forks += o.forks
	s.resolved += o.resolved
	s.tardy += o.tardy
	s.merges += o.merges
}

var templates = []groups.Attributes{
	{NumPhases: groups.OnePhase},
	{NumPhases: groups.NPhase, TimeLimit: 2, DefaultVote: groups.VoteReject},
	{NumPhases: groups.NPhase, TimeLimit: 0, DefaultVote: groups.VoteApprove, BatchControl: groups.BatchBothJoinsAndLeaves},
	{NumPhases: groups.NPhase, TimeLimit: 3, DefaultVote: groups.VoteApprove, BatchControl: groups.BatchJoins},
	{NumPhases: groups.OnePhase, BatchControl: groups.BatchLeaves, MergeControl: groups.DontMerge},
}

func randomRun(seed uint64, nsteps int) (runStats, error) {
	rng := rand.New(rand.NewPCG(seed, 0x67726f757073))
	nodes := 3 + rng.IntN(3)
	// A short flap hold-down: a node that flapped is held out of views for
	// up to 32 times it, and the end of the run waits for one view.
	o := sim.Options{Seed: seed, Nodes: nodes, Jitter: time.Duration(rng.IntN(3)) * time.Millisecond,
		FlapHolddown: time.Second}
	h := New(&o)
	h.Auto = &AutoVoter{Rng: rand.New(rand.NewPCG(seed, 0x766f746573)), MaxThink: 800 * time.Millisecond}
	h.S = sim.New(o)
	if *trace {
		h.Trace, h.S.Trace = os.Stderr, os.Stderr
	}
	if *wire {
		h.TraceWire = os.Stderr
	}
	st := runStats{}
	fail := func(step int, err error) (runStats, error) {
		return st, fmt.Errorf("%d nodes, step %d: %w\n%s", nodes, step, err, h.S.Describe())
	}
	for id := 1; id <= nodes; id++ {
		if err := h.S.Up(NodeID(id)); err != nil {
			return st, err
		}
	}
	if err := h.S.RunFor(time.Second); err != nil {
		return fail(0, err)
	}

	// Two ordinary groups with random attributes, and (sometimes) a target
	// group of the first.
	names := []string{"g1", "g2"}
	attrs := map[string]groups.Attributes{}
	for _, g := range names {
		a := templates[rng.IntN(len(templates))]
		a.GroupName = g
		attrs[g] = a
	}
	if rng.IntN(2) == 0 {
		names = append(names, "t")
		attrs["t"] = groups.Attributes{GroupName: "t", SourceGroupName: "g1",
			NumPhases: groups.NPhase, TimeLimit: 2, SourceReflectionNumPhases: groups.NPhase, SourceProtocolTimeLimit: 2}
	}
	nextInst := map[NodeID]int16{}
	upNode := func() (NodeID, bool) {
		var ids []NodeID
		for _, n := range h.S.Nodes() {
			if n.Up && !n.Paused {
				ids = append(ids, n.ID)
			}
		}
		if len(ids) == 0 {
			return 0, false
		}
		return ids[rng.IntN(len(ids))], true
	}
	// member picks a live provider that is a member of its group.
	member := func() *Provider {
		var ps []*Provider
		for _, c := range h.order {
			if !c.Alive() || h.S.Node(c.Node).Paused {
				continue
			}
			for _, g := range sortedKeys(c.provs) {
				if p := c.provs[g]; !p.Dead && p.Member {
					ps = append(ps, p)
				}
			}
		}
		if len(ps) == 0 {
			return nil
		}
		return ps[rng.IntN(len(ps))]
	}
	liveClient := func() *Client {
		var cs []*Client
		for _, c := range h.order {
			if c.Alive() && !h.S.Node(c.Node).Paused {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return nil
		}
		return cs[rng.IntN(len(cs))]
	}
	phases := func() groups.NumPhases { return groups.NumPhases(1 + rng.IntN(2)) }
	// The synchronous errors of the API (COLLIDE, VOTE_NOT_EXPECTED, …) are
	// part of the game; any other error is the harness's and a failure.
	ignore := func(err error) error {
		var ge groups.Error
		if err == nil || errors.As(err, &ge) {
			return nil
		}
		return err
	}

	for step := 1; step <= nsteps; step++ {
		var err error
		r := rng.IntN(100)
		if *trace {
			fmt.Fprintf(os.Stderr, "%v step %d: action %d\n", h.S.Elapsed(), step, r)
		}
		switch {
		case r < 30: // join
			id, ok := upNode()
			if !ok {
				break
			}
			g := names[rng.IntN(len(names))]
			a := attrs[g]
			if e := h.Engine(id); e != nil {
				if gi, ok := e.Group(g); ok {
					a = gi.Attributes // the group's current attributes
				}
			}
			nextInst[id]++
			inst := nextInst[id]
			// Sometimes an existing client of the node joins another group.
			var c *Client
			if rng.IntN(3) == 0 {
				for _, x := range h.order {
					if x.Node == id && x.Alive() && x.provs[g] == nil {
						c = x
						break
					}
				}
			}
			if c == nil {
				c, err = h.Client(fmt.Sprintf("%d/%d", id, inst))
				if err != nil {
					break
				}
				c.Script = []string{"", "ok", "fail", "hang"}[rng.IntN(4)]
			}
			_, err = h.Join(c, groups.JoinArgs{Attributes: a, Instance: inst})
		case r < 46: // state change
			if p := member(); p != nil {
				err = h.Request(p, func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
					return e.ChangeState(now, c, t, groups.StateChangeArgs{NumPhases: phases(), TimeLimit: uint32(rng.IntN(4)),
						NewState: fmt.Appendf(nil, "s%d", step)})
				})
			}
		case r < 51: // provider message
			if p := member(); p != nil {
				err = h.Request(p, func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
					return e.SendMessage(now, c, t, groups.MessageArgs{NumPhases: phases(), TimeLimit: uint32(rng.IntN(4)),
						Message: fmt.Appendf(nil, "m%d", step)})
				})
			}
		case r < 54: // leave
			if p := member(); p != nil {
				err = h.Request(p, func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
					return e.Leave(now, c, t, groups.LeaveArgs{NumPhases: phases(), TimeLimit: uint32(rng.IntN(4)), LeaveCode: 1})
				})
			}
		case r < 59: // expel
			p := member()
			if p == nil {
				break
			}
			gi, ok := h.Engine(p.C.Node).Group(p.Group)
			if !ok || len(gi.Providers) == 0 {
				break
			}
			victim := gi.Providers[rng.IntN(len(gi.Providers))].ID
			np := phases()
			dp := rng.IntN(2)
			if np == groups.NPhase {
				dp = rng.IntN(3)
			}
			err = h.Request(p, func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.Expel(now, c, t, groups.ExpelArgs{NumPhases: np, TimeLimit: uint32(1 + rng.IntN(3)),
					List: []groups.ProviderID{victim}, ExpelCode: 9, DeactivatePhase: dp, DeactivateTimeLimit: uint32(1 + rng.IntN(2))})
			})
		case r < 61: // attribute change
			p := member()
			if p == nil {
				break
			}
			gi, ok := h.Engine(p.C.Node).Group(p.Group)
			if !ok {
				break
			}
			a := gi.Attributes
			a.TimeLimit = uint32(rng.IntN(4))
			a.DefaultVote = groups.VoteValue(1 + 2*rng.IntN(2))
			err = h.Request(p, func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.ChangeAttributes(now, c, t, groups.AttributesArgs{NumPhases: phases(), TimeLimit: 2, Attributes: a})
			})
		case r < 63: // goodbye
			if p := member(); p != nil {
				err = h.Goodbye(p)
			}
		case r < 66: // a client dies
			if c := liveClient(); c != nil {
				err = h.Kill(c, rng.IntN(2) == 0)
			}
		case r < 70: // a client stops (or resumes) dispatching
			if c := liveClient(); c != nil {
				err = h.SetDeaf(c, !c.Deaf, time.Duration(rng.IntN(2))*time.Second)
			}
		case r < 73: // a subscriber
			if c := liveClient(); c != nil {
				_, err = h.Subscribe(c, groups.SubscribeArgs{Group: names[rng.IntN(len(names))],
					Control: groups.SubscriptionControl(1 + rng.IntN(15))})
			}
		case r < 79: // partition
			var a, b []NodeID
			for i := 1; i <= nodes; i++ {
				if rng.IntN(2) == 0 {
					a = append(a, NodeID(i))
				} else {
					b = append(b, NodeID(i))
				}
			}
			h.S.Split(a, b)
		case r < 85:
			h.S.Heal()
		case r < 89: // crash
			id := NodeID(1 + rng.IntN(nodes))
			if rng.IntN(2) == 0 {
				h.S.Down(id)
			} else {
				h.S.Halt(id)
			}
		case r < 95: // restart
			for _, n := range h.S.Nodes() {
				if !n.Up {
					err = h.S.Up(n.ID)
					break
				}
			}
		default: // pause
			id := NodeID(1 + rng.IntN(nodes))
			h.S.Pause(id)
			if err := h.S.RunFor(time.Duration(rng.IntN(2500)) * time.Millisecond); err != nil {
				return fail(step, err)
			}
			h.S.Resume(id)
		}
		if err := ignore(err); err != nil {
			return fail(step, err)
		}
		if err := h.S.RunFor(time.Duration(50+rng.IntN(1500)) * time.Millisecond); err != nil {
			return fail(step, err)
		}
	}

	// The end: heal, restart everything, everyone dispatches and approves.
	h.S.Heal()
	for _, n := range h.S.Nodes() {
		if !n.Up {
			if err := h.S.Up(n.ID); err != nil {
				return st, err
			}
		}
	}
	for _, c := range h.order {
		if c.Alive() && c.Deaf {
			if err := h.SetDeaf(c, false, 0); err != nil {
				return fail(nsteps, err)
			}
		}
	}
	h.Auto.Hurry(h)
	done := func() bool {
		if !h.S.Converged() || h.PendingDeactivations() > 0 {
			return false
		}
		for _, n := range h.S.Nodes() {
			for _, gi := range h.Engine(n.ID).Groups() {
				if gi.Protocol != nil || gi.Queued > 0 {
					return false
				}
			}
		}
		return true
	}
	for tries, stable := 0, false; !stable; tries++ {
		if tries == 20 {
			return fail(nsteps, fmt.Errorf("never quiet after healing:\n%s", h.Groups("")))
		}
		ok, err := h.S.RunUntil(3*time.Minute, done)
		if err != nil {
			return fail(nsteps, err)
		}
		if !ok && !h.S.Converged() {
			return fail(nsteps, fmt.Errorf("no single view 3 minutes after healing"))
		}
		if !ok {
			return fail(nsteps, fmt.Errorf("protocols still running 3 minutes after healing (%d scripts running):\n%s",
				h.PendingDeactivations(), h.Groups("")))
		}
		if err := h.S.RunFor(3 * time.Second); err != nil {
			return fail(nsteps, err)
		}
		stable = done()
	}
	if err := h.Final(); err != nil {
		return fail(nsteps, err)
	}
	c := h.check
	st = runStats{h.Auto.Votes, c.outcomes, c.compared, c.forks, c.resolved, c.tardy, c.merges}
	return st, nil
}
