package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/gs"
	"github.com/conclave/conclave/internal/lab"
)

// What the group-services benchmark does per run. Small on purpose: the
// whole command takes a few minutes with the default five runs.
const (
	gsLatencySamples   = 200                   // protocols per kind per run
	gsLatencyInterval  = 5 * time.Millisecond  // between the starts of two timed protocols
	gsThroughputWindow = 2 * time.Second       // proposing time per group count per run
	gsClientsPerAgent  = 4                     // gs clients per agent for the throughput groups
	gsMemoryGroups     = 10_000                // groups of the memory figure
	gsMemoryClients    = 20                    // gs clients per agent for the memory figure
	gsMemorySettle     = 2 * time.Second       // idle time before RSS is read
	gsFailoverCycles   = 2                     // kills per run
	gsPhaseLimit       = 10                    // seconds: time limit of the timed n-phase protocols
	gsStepTimeout      = 20 * time.Second      // one step (a protocol, a join wave, a failover)
	gsMemoryTimeout    = 2 * time.Minute       // joining the memory figure's groups
	gsRunTimeout       = 3 * time.Minute       // one section's run
	gsDrainTimeout     = 30 * time.Second      // in-flight protocols after a throughput window
	gsPollEvery        = 2 * time.Millisecond  // polling for setup conditions (never timed)
	gsSettle           = 50 * time.Millisecond // after joins, before timing
	gsTargetRSSMiB     = 200e6 / (1 << 20)     // the target's 200 MB, in MiB
	gsSequencer        = uint32(1)             // the ring representative of a 3-node lab view
)

// gsThroughputGroups are the group counts of the throughput figure.
var gsThroughputGroups = []int{1, 10, 100}

// GroupsReport is everything the group-services benchmark measured, in the
// shape of its JSON report. Times are in milliseconds.
type GroupsReport struct {
	Date    string              `json:"date"`
	Host    Host                `json:"host"`
	Options GroupsReportOptions `json:"options"`
	// OnePhase and NPhase are the state-change latencies (NPhase: two
	// voting phases).
	OnePhase *GSLatency `json:"one_phase_state_change,omitempty"`
	NPhase   *GSLatency `json:"two_phase_state_change,omitempty"`
	// Throughput by group count ("1_groups", "10_groups", "100_groups").
	Throughput map[string]*GSThroughput `json:"throughput,omitempty"`
	Failover   *GSFailover              `json:"failover,omitempty"`
	Memory     *GSMemory                `json:"memory,omitempty"`
	Notes      []string                 `json:"notes,omitempty"`
}

// GroupsReportOptions echo what was run.
type GroupsReportOptions struct {
	Runs             int      `json:"runs"`
	Only             []string `json:"only,omitempty"`
	LatencySamples   int      `json:"latency_samples_per_run"`
	LatencyInterval  string   `json:"latency_interval"`
	ThroughputWindow string   `json:"throughput_window"`
	ClientsPerAgent  int      `json:"throughput_clients_per_agent"`
	MemoryGroups     int      `json:"memory_groups"`
	MemoryClients    int      `json:"memory_clients_per_agent"`
	FailoverCycles   int      `json:"failover_cycles_per_run"`
	ThroughputGroups []int    `json:"throughput_group_counts"`
}

// GSLatency is one kind of state change, one protocol at a time on one
// group of 3 providers (one per agent). Every sample is one protocol, from
// just before the ChangeStateValue call.
type GSLatency struct {
	// All: to the approved callback at the last of the 3 providers (the
	// target's figure).
	All Summary `json:"call_to_approved_at_all"`
	// Proposer: to the approved callback at the proposing provider.
	Proposer Summary `json:"call_to_approved_at_proposer"`
	// Reply: the ChangeStateValue call's own round trip (its return).
	Reply Summary `json:"call_return"`
	// Phase1 and Phase2 (n-phase only): to the last of the 3 providers'
	// n-phase callbacks of that phase.
	Phase1 Summary `json:"call_to_phase1_at_all,omitzero"`
	Phase2 Summary `json:"call_to_phase2_at_all,omitzero"`
	// FromSequencer and FromMember split All by the proposer's node: the
	// ring representative (node 1), which sequences every message, or
	// another.
	FromSequencer Summary `json:"call_to_approved_at_all_from_sequencer"`
	FromMember    Summary `json:"call_to_approved_at_all_from_member"`
}

// GSThroughput is one group count.
type GSThroughput struct {
	Groups int `json:"groups"`
	// PerSecond: one sample per run.
	PerSecond Summary `json:"approved_per_second"`
	// Protocols: protocols approved at all providers per run.
	Protocols Summary `json:"protocols_per_run"`
	// AgentCPU: CPU time (user + system) of the three agents together per
	// protocol, over the run's window and drain, in µs; ClientCPU the same
	// for the benchmark process (every provider's client).
	AgentCPU  Summary `json:"agent_cpu_us_per_protocol"`
	ClientCPU Summary `json:"client_cpu_us_per_protocol"`
}

// GSFailover: SIGKILL of the agent hosting one of a group's 3 providers.
// Every sample is one kill.
type GSFailover struct {
	// FailureLeave: to the later of the two survivors' approved callbacks
	// for the FAILURE_LEAVE of the killed node's provider.
	FailureLeave Summary `json:"sigkill_to_failure_leave_approved"`
	// View: to the later of the two survivors' INSTALLED events for the
	// view without the killed node (the agents' stamps).
	View Summary `json:"sigkill_to_view_installed"`
	// Extra: FailureLeave − View, per kill (the target: ≤ 10 ms).
	Extra Summary `json:"failure_leave_after_view"`
}

// GSMemory: 3 agents with gsMemoryGroups groups of 3 providers (one per
// agent) joined. RSS figures are per agent (three samples per run).
type GSMemory struct {
	Groups    int `json:"groups"`
	Providers int `json:"providers"`
	// RSSMiB: VmRSS once every join was approved everywhere and the agents
	// idled gsMemorySettle.
	RSSMiB Summary `json:"rss_mib"`
	// BaselineMiB: VmRSS of the same agents, formed, with the clients
	// connected and no group.
	BaselineMiB Summary `json:"baseline_rss_mib"`
	// PeakMiB: VmHWM at the same time as RSSMiB.
	PeakMiB Summary `json:"peak_rss_mib"`
	// KiBPerGroup: (RSS − baseline) / groups, per agent.
	KiBPerGroup Summary `json:"kib_per_group"`
	// JoinsPerSecond: providers joined per second (from the first Join
	// call to the last provider seeing its group complete), one per run.
	JoinsPerSecond Summary `json:"joins_per_second"`
	// KillFailureLeaves: in the first run, once RSS is read, node 3's agent
	// gets SIGKILL; from then to the last of the survivors' 2 × groups
	// approved callbacks for the failure leaves of its providers. KillView:
	// the survivors' new view on the same kill, as in GSFailover.
	KillFailureLeaves Summary `json:"sigkill_to_all_failure_leaves_approved"`
	KillView          Summary `json:"sigkill_to_view_installed"`
}

// Groups runs the group-services benchmark: sections "latency",
// "throughput", "failover" and "memory" (o.Only picks some), each on fresh
// 3-agent loopback clusters, o.Runs times.
func Groups(ctx context.Context, o Options) (*GroupsReport, error) {
	o.defaults()
	r := &GroupsReport{
		Date: time.Now().UTC().Format(time.RFC3339), Host: host(),
		Options: GroupsReportOptions{Runs: o.Runs, Only: o.Only, LatencySamples: gsLatencySamples,
			LatencyInterval: gsLatencyInterval.String(), ThroughputWindow: gsThroughputWindow.String(),
			ClientsPerAgent: gsClientsPerAgent, MemoryGroups: gsMemoryGroups, MemoryClients: gsMemoryClients,
			FailoverCycles: gsFailoverCycles, ThroughputGroups: gsThroughputGroups},
	}
	gb := &groupsBench{o: o, r: r}
	if l := loadavg(); l != "" {
		defer func() {
			gb.note("load average (1, 5, 15 min) at the start: %s; at the end: %s. The machine is shared: the benchmark competes with whatever else runs, which shows most in the throughput and in the tails.", l, loadavg())
		}()
	}
	if o.runs("latency") {
		if err := gb.latency(ctx); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
	}
	if o.runs("throughput") {
		if err := gb.throughput(ctx); err != nil {
			return nil, fmt.Errorf("throughput: %w", err)
		}
	}
	if o.runs("failover") {
		if err := gb.failover(ctx); err != nil {
			return nil, fmt.Errorf("failover: %w", err)
		}
	}
	if o.runs("memory") {
		if err := gb.memory(ctx); err != nil {
			return nil, fmt.Errorf("memory: %w", err)
		}
	}
	return r, nil
}

type groupsBench struct {
	o Options
	r *GroupsReport
}

func (gb *groupsBench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(gb.r.Notes, n) {
		gb.r.Notes = append(gb.r.Notes, n)
	}
}

// gsEvent is one provider callback, stamped on entry.
type gsEvent struct {
	node     uint32
	group    int
	typ      gs.NotificationType
	proto    gs.ProtocolType
	phase    int
	state    string
	changing []gs.ProviderID
	at       time.Time
}

// gsProvider is one provider of the benchmark: it votes CONTINUE in phase
// 1 of a state change and APPROVE otherwise, and counts what it sees.
type gsProvider struct {
	rig   *gsRig
	node  uint32
	group int
	c     *gs.Client
	tok   gs.Token
	// members is the size of the membership the last approved membership
	// change left.
	members atomic.Int32
	// states counts approved state changes.
	states atomic.Int64
	// own gets one token per approved state change when this provider
	// proposes.
	own chan struct{}
}

// gsRig is a 3-agent cluster with gs clients in this process.
type gsRig struct {
	c      *lab.Cluster
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// killing is set once the benchmark kills agents: until then a view
	// change is a failure.
	killing atomic.Bool
	// events, when not nil, receives every callback (blocking: size it).
	events chan gsEvent
	// lastApproved is the unix nano of the latest approved callback.
	lastApproved atomic.Int64
	// complete counts providers that saw their group reach 3 members,
	// shrunk those that saw it fall below 3 again.
	complete, shrunk atomic.Int64

	mu      sync.Mutex
	clients map[uint32][]*gs.Client // per node, the live ones
	errs    map[uint32][]error      // per node: client failures, delayed errors, failed votes
}

// newRig starts a 3-agent cluster and waits for its full view; with
// events, every callback is passed on r.events.
func newRig(ctx context.Context, o Options, events bool) (*gsRig, error) {
	c, err := startThree(ctx, o)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &gsRig{c: c, ctx: rctx, cancel: cancel, clients: map[uint32][]*gs.Client{}, errs: map[uint32][]error{}}
	if events {
		r.events = make(chan gsEvent, 1024)
	}
	watches, err := c.WatchNews(rctx, ids(3))
	if err != nil {
		cancel()
		c.Close()
		return nil, err
	}
	for id, ch := range watches {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for ev := range ch {
				if ev.Kind == clientpb.Event_INSTALLED && !r.killing.Load() {
					r.fail(id, nil, fmt.Errorf("the view changed without a kill (ring %s, members %v): a false suspicion, the agents starved of CPU?", ev.RingId.Text(), ev.Members))
				}
			}
		}()
	}
	return r, nil
}

// fail records a failure of cl (nil: of the node) unless cl was retired.
func (r *gsRig) fail(node uint32, cl *gs.Client, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cl != nil && !slices.Contains(r.clients[node], cl) {
		return
	}
	if len(r.errs[node]) < 10 {
		r.errs[node] = append(r.errs[node], err)
	}
}

// err is the first failure on any node but those in except.
func (r *gsRig) err(except ...uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids(3) {
		if slices.Contains(except, id) {
			continue
		}
		if es := r.errs[id]; len(es) > 0 {
			return fmt.Errorf("node %d: %w", id, es[0])
		}
	}
	return nil
}

// connect adds k gs clients on node id, each dispatched by Run on a
// goroutine of its own.
func (r *gsRig) connect(id uint32, k int) error {
	for range k {
		cl, err := gs.Init(gs.Callbacks{DelayedError: func(cl *gs.Client, n *gs.DelayedErrorNotification) {
			r.fail(id, cl, fmt.Errorf("delayed error: %s %s: %w", n.Group, n.Protocol, n.ReturnCode))
		}}, gs.WithSocket(r.c.Node(id).Socket), gs.WithContext(r.ctx), gs.WithDomain(""))
		if err != nil {
			return fmt.Errorf("node %d: gs.Init: %w", id, err)
		}
		r.mu.Lock()
		r.clients[id] = append(r.clients[id], cl)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := cl.Run(r.ctx); err != nil && r.ctx.Err() == nil {
				r.fail(id, cl, fmt.Errorf("dispatch: %w", err))
			}
		}()
	}
	return nil
}

// close quits every client and stops the cluster.
func (r *gsRig) close() {
	r.cancel()
	r.wg.Wait()
	// The agents go first: quitting clients one by one would run a
	// failure leave for every provider.
	r.c.Close()
	r.mu.Lock()
	all := r.clients
	r.clients = nil
	r.mu.Unlock()
	for _, cls := range all {
		for _, cl := range cls {
			cl.Quit()
		}
	}
}

// explain adds the tail of every agent's log to a failure (*err != nil).
func (r *gsRig) explain(err *error) {
	if *err == nil {
		return
	}
	var b strings.Builder
	for _, id := range ids(3) {
		fmt.Fprintf(&b, "\n--- node %d log tail:\n%s", id, r.c.LogTail(id, 8))
	}
	*err = fmt.Errorf("%w%s", *err, b.String())
}

// retire forgets node id's clients (their agent was killed) and the
// failures they caused.
func (r *gsRig) retire(id uint32) {
	r.mu.Lock()
	old := r.clients[id]
	delete(r.clients, id)
	delete(r.errs, id)
	r.mu.Unlock()
	for _, cl := range old {
		cl.Quit()
	}
}

// cpu returns the CPU seconds used so far by the three agents together
// (-1 if one cannot be read) and by this process.
func (r *gsRig) cpu() (agents, self float64) {
	for _, id := range ids(3) {
		s, err := cpuSeconds(r.c.PID(id))
		if err != nil {
			agents = -1
			break
		}
		agents += s
	}
	self, _ = cpuSeconds(os.Getpid())
	return agents, self
}

// views describes how many views each agent installed so far, for error
// messages: the benchmark expects one.
func (r *gsRig) views(ctx context.Context) string {
	var parts []string
	for _, id := range ids(3) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		st, err := r.c.Status(sctx, id)
		cancel()
		if err != nil {
			parts = append(parts, fmt.Sprintf("node %d: %v", id, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("node %d: %d view changes, ring %s", id, st.Engine.GetViewChanges(), st.RingId.Text()))
	}
	return strings.Join(parts, ", ")
}

// client is node id's client i.
func (r *gsRig) client(id uint32, i int) *gs.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clients[id][i]
}

// join makes a provider of group on node id through its client i.
func (r *gsRig) join(id uint32, i int, name string, group int) (*gsProvider, error) {
	p := &gsProvider{rig: r, node: id, group: group, c: r.client(id, i), own: make(chan struct{}, 1)}
	tok, err := p.c.Join(gs.JoinRequest{
		Attributes: gs.Attributes{GroupName: name, NumPhases: gs.OnePhase, DefaultVote: gs.VoteApprove},
		Instance:   1, LocalName: "bench", Callbacks: p.callbacks(),
	})
	if err != nil {
		return nil, fmt.Errorf("node %d: join %s: %w", id, name, err)
	}
	p.tok = tok
	return p, nil
}

func (p *gsProvider) emit(typ gs.NotificationType, n *gs.ProtocolNotification, at time.Time) {
	r := p.rig
	if r.events == nil {
		return
	}
	ev := gsEvent{node: p.node, group: p.group, typ: typ, proto: n.Protocol, at: at}
	if pr := n.Proposal; pr != nil {
		ev.phase = pr.Phase.Number
		ev.state = string(pr.ProposedState)
		ev.changing = pr.ChangingMembership
	}
	select {
	case r.events <- ev:
	case <-r.ctx.Done():
	}
}

func (p *gsProvider) callbacks() gs.ProviderCallbacks {
	r := p.rig
	return gs.ProviderCallbacks{
		NPhase: func(c *gs.Client, n *gs.NPhaseNotification) {
			at := time.Now()
			p.emit(gs.NPhaseNotificationType, n, at)
			vote := gs.VoteApprove
			if n.Protocol == gs.ProtoStateValueChange && n.Proposal != nil && n.Proposal.Phase.Number == 1 {
				vote = gs.VoteContinue // the barrier: everyone reaches phase 2
			}
			if err := c.Vote(n.Token, vote, nil, nil, gs.NullVote); err != nil {
				r.fail(p.node, c, fmt.Errorf("vote in %s phase %d: %w", n.Protocol, n.Proposal.Phase.Number, err))
			}
		},
		Approved: func(_ *gs.Client, n *gs.ApprovedNotification) {
			at := time.Now()
			for {
				old := r.lastApproved.Load()
				if at.UnixNano() <= old || r.lastApproved.CompareAndSwap(old, at.UnixNano()) {
					break
				}
			}
			switch n.Protocol {
			case gs.ProtoStateValueChange:
				p.states.Add(1)
				select {
				case p.own <- struct{}{}:
				default:
				}
			case gs.ProtoJoin, gs.ProtoLeave, gs.ProtoFailureLeave, gs.ProtoExpel, gs.ProtoCastOut:
				if n.Proposal != nil {
					m := int32(len(n.Proposal.ProposedMembership))
					switch old := p.members.Swap(m); {
					case old < 3 && m >= 3:
						r.complete.Add(1)
					case old >= 3 && m < 3:
						r.shrunk.Add(1)
					}
				}
			}
			p.emit(gs.ApprovedNotificationType, n, at)
		},
		Merge: func(c *gs.Client, n *gs.MergeNotification) {
			r.fail(p.node, c, fmt.Errorf("merge notification for %s (%s): the view changed", n.Group, n.Summary))
		},
		Rejected: func(c *gs.Client, n *gs.RejectedNotification) {
			r.fail(p.node, c, fmt.Errorf("%s rejected: %s", n.Protocol, n.Summary))
			p.emit(gs.RejectedNotificationType, n, time.Now())
		},
	}
}

// waitFor polls cond until it holds, a failure is recorded (but on the
// nodes in except), or timeout.
func (r *gsRig) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool, except ...uint32) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := r.err(except...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v", what, timeout)
		}
		select {
		case <-time.After(gsPollEvery):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
	return r.err(except...)
}

const failoverGroup = "failover"

func fixedName(s string) func(int) string { return func(int) string { return s } }

func numbered(format string) func(int) string {
	return func(g int) string { return fmt.Sprintf(format, g) }
}

// joinAll joins groups [from, to) named by name with one provider per
// agent, the provider on node id through client (g % clients), joining
// concurrently per client; it returns the providers by group and node
// once every provider saw its group complete.
func (r *gsRig) joinAll(ctx context.Context, name func(int) string, from, to, clients int, timeout time.Duration) ([][3]*gsProvider, error) {
	provs := make([][3]*gsProvider, to-from)
	before := r.complete.Load()
	var wg sync.WaitGroup
	errc := make(chan error, 3*clients)
	for _, id := range ids(3) {
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for g := from + i; g < to; g += clients {
					p, err := r.join(id, i, name(g), g)
					if err != nil {
						errc <- err
						return
					}
					provs[g-from][id-1] = p
				}
			}()
		}
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	want := before + int64(3*(to-from))
	err := r.waitFor(ctx, timeout, fmt.Sprintf("%d groups of 3 providers joined", to-from), func() bool { return r.complete.Load() >= want })
	if err != nil {
		return nil, fmt.Errorf("%w (%d of %d providers saw their group complete; %s)", err, r.complete.Load()-before, want-before, r.views(ctx))
	}
	return provs, nil
}

// ---- latency ----

// latency times one-phase and two-phase state changes of one group with a
// provider on each agent, one protocol at a time, the proposer rotating
// over the three nodes.
func (gb *groupsBench) latency(ctx context.Context) error {
	kinds := []struct {
		phases gs.NumPhases
		s      *latencySamples
	}{{gs.OnePhase, &latencySamples{}}, {gs.NPhase, &latencySamples{}}}
	for run := range gb.o.Runs {
		fmt.Fprintf(gb.o.Log, "state-change latency (one-phase and 2-phase, %d each), run %d/%d\n", gsLatencySamples, run+1, gb.o.Runs)
		err := func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, gsRunTimeout)
			defer cancel()
			r, err := newRig(ctx, gb.o, true)
			if err != nil {
				return err
			}
			defer r.close()
			defer r.explain(&err)
			for _, id := range ids(3) {
				if err := r.connect(id, 1); err != nil {
					return err
				}
			}
			provs, err := r.joinAll(ctx, fixedName("latency"), 0, 1, 1, gsStepTimeout)
			if err != nil {
				return err
			}
			time.Sleep(gsSettle)
			for _, k := range kinds {
				if err := gb.latencyKind(ctx, r, provs[0], run, k.phases, k.s); err != nil {
					return fmt.Errorf("%s: %w", k.phases, err)
				}
			}
			return r.err()
		}()
		if err != nil {
			return err
		}
	}
	gb.r.OnePhase = kinds[0].s.summary(false)
	gb.r.NPhase = kinds[1].s.summary(true)
	return nil
}

type latencySamples struct {
	all, proposer, reply, phase1, phase2, fromSeq, fromMember []float64
}

func (s *latencySamples) summary(nphase bool) *GSLatency {
	l := &GSLatency{All: summarize(s.all, "ms"), Proposer: summarize(s.proposer, "ms"), Reply: summarize(s.reply, "ms"),
		FromSequencer: summarize(s.fromSeq, "ms"), FromMember: summarize(s.fromMember, "ms")}
	if nphase {
		l.Phase1, l.Phase2 = summarize(s.phase1, "ms"), summarize(s.phase2, "ms")
	}
	return l
}

func (gb *groupsBench) latencyKind(ctx context.Context, r *gsRig, provs [3]*gsProvider, run int, phases gs.NumPhases, s *latencySamples) error {
	tick := time.NewTicker(gsLatencyInterval)
	defer tick.Stop()
	for i := range gsLatencySamples {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		proposer := provs[i%3]
		state := fmt.Sprintf("%s-%d-%d", phases, run, i)
		req := gs.StateChangeRequest{NumPhases: phases, NewState: []byte(state)}
		if phases == gs.NPhase {
			req.TimeLimit = gsPhaseLimit
		}
		t0 := time.Now()
		if err := proposer.c.ChangeStateValue(proposer.tok, req); err != nil {
			return fmt.Errorf("ChangeStateValue on node %d: %w", proposer.node, err)
		}
		reply := time.Since(t0)
		var approved, phase1, phase2 [3]time.Time
		sctx, cancel := context.WithTimeout(ctx, gsStepTimeout)
		n := 0
		for n < 3 {
			select {
			case ev := <-r.events:
				if ev.proto != gs.ProtoStateValueChange || ev.state != state {
					continue
				}
				switch {
				case ev.typ == gs.ApprovedNotificationType:
					approved[ev.node-1] = ev.at
					n++
				case ev.typ == gs.NPhaseNotificationType && ev.phase == 1:
					phase1[ev.node-1] = ev.at
				case ev.typ == gs.NPhaseNotificationType && ev.phase == 2:
					phase2[ev.node-1] = ev.at
				case ev.typ == gs.RejectedNotificationType:
					cancel()
					return fmt.Errorf("state change %q rejected", state)
				}
			case <-sctx.Done():
				cancel()
				if err := r.err(); err != nil {
					return err
				}
				return fmt.Errorf("state change %q: %d of 3 providers saw it approved: %w", state, n, sctx.Err())
			}
		}
		cancel()
		last := func(ts [3]time.Time) (time.Time, bool) {
			var l time.Time
			for _, t := range ts {
				if t.IsZero() {
					return l, false
				}
				l = later(l, t)
			}
			return l, true
		}
		all, _ := last(approved)
		d := millis(all.Sub(t0))
		s.all = append(s.all, d)
		s.proposer = append(s.proposer, millis(approved[proposer.node-1].Sub(t0)))
		s.reply = append(s.reply, millis(reply))
		if proposer.node == gsSequencer {
			s.fromSeq = append(s.fromSeq, d)
		} else {
			s.fromMember = append(s.fromMember, d)
		}
		if phases == gs.NPhase {
			p1, ok1 := last(phase1)
			p2, ok2 := last(phase2)
			if !ok1 || !ok2 {
				gb.note("a 2-phase state change was approved without every provider seeing both phases (%q)", state)
				continue
			}
			s.phase1 = append(s.phase1, millis(p1.Sub(t0)))
			s.phase2 = append(s.phase2, millis(p2.Sub(t0)))
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ---- throughput ----

// throughput proposes one-phase state changes in 1, 10 and 100 groups
// (joined one count after the other on one cluster per run), one protocol
// in flight per group: each group's proposer (rotating over the nodes by
// group) proposes the next as soon as its own approved callback ran.
func (gb *groupsBench) throughput(ctx context.Context) error {
	rates, counts, agentCPU, clientCPU := map[int][]float64{}, map[int][]float64{}, map[int][]float64{}, map[int][]float64{}
	for run := range gb.o.Runs {
		fmt.Fprintf(gb.o.Log, "throughput over %v groups (%v each), run %d/%d\n", gsThroughputGroups, gsThroughputWindow, run+1, gb.o.Runs)
		err := func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, gsRunTimeout)
			defer cancel()
			r, err := newRig(ctx, gb.o, false)
			if err != nil {
				return err
			}
			defer r.close()
			defer r.explain(&err)
			for _, id := range ids(3) {
				if err := r.connect(id, gsClientsPerAgent); err != nil {
					return err
				}
			}
			var provs [][3]*gsProvider
			for _, n := range gsThroughputGroups {
				more, err := r.joinAll(ctx, numbered("t%03d"), len(provs), n, gsClientsPerAgent, gsStepTimeout)
				if err != nil {
					return err
				}
				provs = append(provs, more...)
				time.Sleep(gsSettle)
				agents0, self0 := r.cpu()
				rate, done, err := gb.throughputOnce(ctx, r, provs)
				if err != nil {
					return fmt.Errorf("%d groups: %w", n, err)
				}
				agents1, self1 := r.cpu()
				rates[n] = append(rates[n], rate)
				counts[n] = append(counts[n], float64(done))
				if done > 0 && agents0 >= 0 && agents1 >= 0 {
					agentCPU[n] = append(agentCPU[n], 1e6*(agents1-agents0)/float64(done))
					clientCPU[n] = append(clientCPU[n], 1e6*(self1-self0)/float64(done))
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	gb.r.Throughput = map[string]*GSThroughput{}
	for _, n := range gsThroughputGroups {
		gb.r.Throughput[throughputKey(n)] = &GSThroughput{Groups: n, PerSecond: summarize(rates[n], "protocols/s"), Protocols: summarize(counts[n], "protocols"),
			AgentCPU: summarize(agentCPU[n], "µs"), ClientCPU: summarize(clientCPU[n], "µs")}
	}
	return nil
}

func throughputKey(n int) string { return strconv.Itoa(n) + "_groups" }

// throughputOnce runs one window over provs and returns approved protocols
// per second (all of them approved at all 3 providers; first call to the
// last approved callback) and how many there were.
func (gb *groupsBench) throughputOnce(ctx context.Context, r *gsRig, provs [][3]*gsProvider) (float64, int64, error) {
	var base int64
	for _, g := range provs {
		for _, p := range g {
			base += p.states.Load()
			for len(p.own) > 0 {
				<-p.own
			}
		}
	}
	var proposed atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(provs))
	start := time.Now()
	deadline := start.Add(gsThroughputWindow)
	for g, ps := range provs {
		p := ps[g%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				err := p.c.ChangeStateValue(p.tok, gs.StateChangeRequest{NumPhases: gs.OnePhase, NewState: []byte(strconv.Itoa(i))})
				if errors.Is(err, gs.ErrCollide) {
					gb.note("a throughput proposal collided (sync HA_GS_COLLIDE) and was retried")
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					errc <- fmt.Errorf("ChangeStateValue on node %d: %w", p.node, err)
					return
				}
				proposed.Add(1)
				select {
				case <-p.own:
				case <-time.After(gsStepTimeout):
					errc <- fmt.Errorf("group %d: no approved callback at the proposer after %v", p.group, gsStepTimeout)
					return
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, 0, err
	default:
	}
	n := proposed.Load()
	err := r.waitFor(ctx, gsDrainTimeout, "in-flight protocols approved at every provider", func() bool {
		var got int64
		for _, g := range provs {
			for _, p := range g {
				got += p.states.Load()
			}
		}
		return got-base >= 3*n
	})
	if err != nil {
		return 0, 0, err
	}
	end := time.Unix(0, r.lastApproved.Load())
	return float64(n) / end.Sub(start).Seconds(), n, nil
}

// ---- failover ----

// failover kills node 3's agent, which hosts one of a group's 3 providers,
// and times the FAILURE_LEAVE approved on the survivors beside the
// survivors' new view; then restarts it, re-joins, and again.
func (gb *groupsBench) failover(ctx context.Context) error {
	var fl, view, extra []float64
	for run := range gb.o.Runs {
		fmt.Fprintf(gb.o.Log, "SIGKILL → failure leave approved, run %d/%d (%d kills)\n", run+1, gb.o.Runs, gsFailoverCycles)
		err := func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, gsRunTimeout)
			defer cancel()
			r, err := newRig(ctx, gb.o, true)
			if err != nil {
				return err
			}
			defer r.close()
			defer r.explain(&err)
			for _, id := range ids(3) {
				if err := r.connect(id, 1); err != nil {
					return err
				}
			}
			if _, err := r.joinAll(ctx, fixedName(failoverGroup), 0, 1, 1, gsStepTimeout); err != nil {
				return err
			}
			for cycle := range gsFailoverCycles {
				if cycle > 0 {
					if err := gb.rejoin(ctx, r); err != nil {
						return fmt.Errorf("restart of node 3: %w", err)
					}
				}
				f, v, err := gb.killOnce(ctx, r)
				if err != nil {
					return err
				}
				fl, view, extra = append(fl, f), append(view, v), append(extra, f-v)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	gb.r.Failover = &GSFailover{FailureLeave: summarize(fl, "ms"), View: summarize(view, "ms"), Extra: summarize(extra, "ms")}
	return nil
}

// killOnce kills node 3 and returns SIGKILL → failure leave approved at
// both survivors, and SIGKILL → view installed at both (ms).
func (gb *groupsBench) killOnce(ctx context.Context, r *gsRig) (float64, float64, error) {
	sctx, cancel := context.WithTimeout(ctx, gsStepTimeout)
	defer cancel()
	survivors := ids(2)
	watches, err := r.c.WatchNews(sctx, survivors)
	if err != nil {
		return 0, 0, err
	}
	for len(r.events) > 0 {
		<-r.events
	}
	r.killing.Store(true)
	t0 := time.Now()
	if err := r.c.Kill(3); err != nil {
		return 0, 0, err
	}
	var seen [2]time.Time
	for seen[0].IsZero() || seen[1].IsZero() {
		select {
		case ev := <-r.events:
			if ev.node <= 2 && ev.typ == gs.ApprovedNotificationType && ev.proto == gs.ProtoFailureLeave &&
				slices.ContainsFunc(ev.changing, func(p gs.ProviderID) bool { return p.Node == 3 }) {
				if seen[ev.node-1].IsZero() {
					seen[ev.node-1] = ev.at
				}
			}
		case <-sctx.Done():
			if err := r.err(3); err != nil {
				return 0, 0, err
			}
			return 0, 0, fmt.Errorf("no failure leave approved on both survivors: %w", sctx.Err())
		}
	}
	at, err := lab.WaitInstalled(sctx, watches, survivors)
	if err != nil {
		return 0, 0, err
	}
	return millis(later(seen[0], seen[1]).Sub(t0)), millis(at.Sub(t0)), r.err(3)
}

// rejoin restarts node 3 and gives it a provider in the group again.
func (gb *groupsBench) rejoin(ctx context.Context, r *gsRig) error {
	sctx, cancel := context.WithTimeout(ctx, gsStepTimeout)
	defer cancel()
	r.retire(3)
	if err := r.c.StartNode(3); err != nil {
		return err
	}
	if _, err := r.c.WaitView(sctx, ids(3), ids(3)); err != nil {
		return err
	}
	if err := r.connect(3, 1); err != nil {
		return err
	}
	p, err := r.join(3, 0, failoverGroup, 0)
	if err != nil {
		return err
	}
	return r.waitFor(sctx, gsStepTimeout, "node 3's provider joined", func() bool { return p.members.Load() == 3 })
}

// ---- memory ----

// memory joins gsMemoryGroups groups with one provider on each agent and
// reads the agents' RSS.
func (gb *groupsBench) memory(ctx context.Context) error {
	var rss, base, peak, perGroup, joins, killFL, killView []float64
	for run := range gb.o.Runs {
		fmt.Fprintf(gb.o.Log, "memory with %d groups × 3 providers, run %d/%d\n", gsMemoryGroups, run+1, gb.o.Runs)
		err := func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, gsRunTimeout)
			defer cancel()
			r, err := newRig(ctx, gb.o, false)
			if err != nil {
				return err
			}
			defer r.close()
			defer r.explain(&err)
			for _, id := range ids(3) {
				if err := r.connect(id, gsMemoryClients); err != nil {
					return err
				}
			}
			time.Sleep(gsMemorySettle)
			before := map[uint32]float64{}
			for _, id := range ids(3) {
				kb, err := rssKiB(r.c.PID(id))
				if err != nil {
					return err
				}
				before[id] = kb
				base = append(base, kb/1024)
			}
			t0 := time.Now()
			if _, err := r.joinAll(ctx, numbered("m%05d"), 0, gsMemoryGroups, gsMemoryClients, gsMemoryTimeout); err != nil {
				return err
			}
			end := time.Unix(0, r.lastApproved.Load())
			joins = append(joins, float64(3*gsMemoryGroups)/end.Sub(t0).Seconds())
			time.Sleep(gsMemorySettle)
			for _, id := range ids(3) {
				kb, err := rssKiB(r.c.PID(id))
				if err != nil {
					return err
				}
				hwm, err := statusKiB(r.c.PID(id), "VmHWM:")
				if err != nil {
					return err
				}
				rss = append(rss, kb/1024)
				peak = append(peak, hwm/1024)
				perGroup = append(perGroup, (kb-before[id])/gsMemoryGroups)
			}
			if err := r.err(); err != nil {
				return err
			}
			if run > 0 {
				return nil // one kill: it takes long
			}
			fmt.Fprintf(gb.o.Log, "SIGKILL of node 3 with %d groups (once)\n", gsMemoryGroups)
			fl, view, more, err := r.killMany(ctx, gsMemoryGroups)
			if err != nil {
				return fmt.Errorf("SIGKILL with %d groups: %w", gsMemoryGroups, err)
			}
			if more > 0 {
				gb.note("after the SIGKILL with %d groups the survivors installed %d more views before the last failure leave was approved (a false suspicion while the agents were busy)", gsMemoryGroups, more)
			}
			killFL, killView = append(killFL, fl), append(killView, view)
			return nil
		}()
		if err != nil {
			return err
		}
	}
	gb.r.Memory = &GSMemory{Groups: gsMemoryGroups, Providers: 3 * gsMemoryGroups,
		RSSMiB: summarize(rss, "MiB"), BaselineMiB: summarize(base, "MiB"), PeakMiB: summarize(peak, "MiB"),
		KiBPerGroup: summarize(perGroup, "KiB"), JoinsPerSecond: summarize(joins, "joins/s"),
		KillFailureLeaves: summarize(killFL, "ms"), KillView: summarize(killView, "ms")}
	return nil
}

// killMany kills node 3, which hosts a provider of each of groups groups,
// and returns SIGKILL → the last failure leave approved at a survivor and
// SIGKILL → view installed at both survivors (ms), and how many views the
// survivors installed after that one until the last failure leave.
func (r *gsRig) killMany(ctx context.Context, groups int) (fl, view float64, more int, err error) {
	sctx, cancel := context.WithTimeout(ctx, gsMemoryTimeout)
	defer cancel()
	watches, err := r.c.WatchNews(sctx, ids(2))
	if err != nil {
		return 0, 0, 0, err
	}
	before := r.shrunk.Load()
	r.killing.Store(true)
	t0 := time.Now()
	if err := r.c.Kill(3); err != nil {
		return 0, 0, 0, err
	}
	err = r.waitFor(sctx, gsMemoryTimeout, fmt.Sprintf("%d failure leaves approved at the survivors", 2*groups),
		func() bool { return r.shrunk.Load()-before >= int64(2*groups) }, 3)
	if err != nil {
		return 0, 0, 0, err
	}
	end := time.Unix(0, r.lastApproved.Load())
	at, err := lab.WaitInstalled(sctx, watches, ids(2))
	if err != nil {
		return 0, 0, 0, err
	}
	// Views installed after the first without node 3.
	for _, ch := range watches {
		for len(ch) > 0 {
			if ev := <-ch; ev.Kind == clientpb.Event_INSTALLED {
				more++
			}
		}
	}
	return millis(end.Sub(t0)), millis(at.Sub(t0)), more, nil
}

// loadavg is the first three fields of /proc/loadavg, "" if unreadable.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// statusKiB reads a "kB" field of /proc/pid/status (key with its colon).
func statusKiB(pid int, key string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// WriteFiles writes the report as dir/groups.md and dir/groups.json.
func (r *GroupsReport) WriteFiles(dir string) error {
	js, err := r.JSON()
	if err != nil {
		return err
	}
	return writeReport(dir, "groups", js, r.Markdown())
}

// JSON renders the group-services report.
func (r *GroupsReport) JSON() ([]byte, error) { return jsonIndent(r) }

// Markdown renders the group-services report, opening with the issue's
// target table.
func (r *GroupsReport) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Group services benchmark\n\n")
	w("Produced by `conclave bench groups` on %s: %d CPUs (%s), Linux %s, %s. ", r.Date, r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel, r.Host.GoVersion)
	w("Every cluster is a fresh one of 3 real agent processes on loopback (127.0.0.1-3), default configuration (token 800 ms), started %d times per figure. ", r.Options.Runs)
	w("The benchmark process itself is the client of every provider: `gs` clients (one agent connection each) on each agent, each dispatched by `Run` on a goroutine of its own; every group has exactly one provider on each agent, and votes are cast from inside the n-phase callback. ")
	w("Times are stamped with `time.Now()` on entry to a callback in that one process, so they share a clock. ")
	w("Figures are medians with min and max, and the 99th percentile where there is one sample per protocol; the machine is shared, so single runs mean little.\n\n")

	var one, two, tp, rss Summary
	if r.OnePhase != nil {
		one = r.OnePhase.All
	}
	if r.NPhase != nil {
		two = r.NPhase.All
	}
	if t := r.Throughput[throughputKey(100)]; t != nil {
		tp = t.PerSecond
	}
	if r.Memory != nil {
		rss = r.Memory.RSSMiB
	}
	w("## Targets\n\n| figure | target | measured | |\n|---|---|---|---|\n")
	w("| one-phase state change, 3 providers on 3 agents, p50 | ≤ 1 ms | %s | %s |\n", one.textP99(), verdict(one.Median <= 1, one.N > 0))
	w("| n-phase, 2 phases, 3 providers on 3 agents, p50 | ≤ 2 ms | %s | %s |\n", two.textP99(), verdict(two.Median <= 2, two.N > 0))
	w("| approved protocols per second, 100 groups, 3 agents | ≥ 20,000 | %s | %s |\n", tp.text(), verdict(tp.Median >= 20000, tp.N > 0))
	if f := r.Failover; f != nil {
		w("| provider killed → failure-leave approved on survivors | ≤ membership failover + 10 ms | %s; membership failover (SIGKILL → view) %s; difference per kill %s | %s |\n",
			f.FailureLeave.text(), f.View.text(), f.Extra.text(), verdict(f.Extra.Median <= 10, f.Extra.N > 0))
	} else {
		w("| provider killed → failure-leave approved on survivors | ≤ membership failover + 10 ms | not measured | — |\n")
	}
	w("| %s groups × 3 providers, agent RSS | ≤ 200 MB (%.1f MiB) | %s | %s |\n", thousands(gsMemoryGroups), gsTargetRSSMiB, rss.text(), verdict(rss.Median <= gsTargetRSSMiB, rss.N > 0))

	w("\n## State-change latency\n\n")
	w("One group with one provider on each agent (a one-phase group: its join is not voted on). The providers take turns proposing (node 1, 2, 3, 1, …), one protocol at a time, a new one every %s (so every protocol finds the processes idle), %d of each kind per cluster. ", r.Options.LatencyInterval, r.Options.LatencySamples)
	w("A sample is one protocol, timed from just before the proposer's `ChangeStateValue` call to the entry of the approved callback at the last of the 3 providers (`call → approved at all`, the target's figure). ")
	w("The one-phase change is `ChangeStateValue(NumPhases: OnePhase)`; the 2-phase one is `ChangeStateValue(NumPhases: NPhase, TimeLimit: %d)`, every provider voting `VoteContinue` from its phase-1 n-phase callback and `VoteApprove` from its phase-2 callback, so it is a barrier and a commit: two rounds of votes, each vote a call to the local agent and a message in the total order. ", gsPhaseLimit)
	w("Node 1 is the ring representative, which sequences every message; a proposal from another node crosses the network once more.\n\n")
	if r.OnePhase != nil || r.NPhase != nil {
		get := func(l *GSLatency, f func(*GSLatency) Summary) string {
			if l == nil {
				return "not measured"
			}
			if s := f(l); s.N > 0 {
				return s.textP99()
			}
			return "—"
		}
		w("| ms, per protocol | one-phase | 2-phase |\n|---|---|---|\n")
		rows := []struct {
			name string
			f    func(*GSLatency) Summary
		}{
			{"call → approved at all 3 providers (target)", func(l *GSLatency) Summary { return l.All }},
			{"… proposed by node 1 (sequencer)", func(l *GSLatency) Summary { return l.FromSequencer }},
			{"… proposed by node 2 or 3", func(l *GSLatency) Summary { return l.FromMember }},
			{"call → approved at the proposer", func(l *GSLatency) Summary { return l.Proposer }},
			{"call → phase-1 n-phase callback at all 3", func(l *GSLatency) Summary { return l.Phase1 }},
			{"call → phase-2 n-phase callback at all 3", func(l *GSLatency) Summary { return l.Phase2 }},
			{"`ChangeStateValue` returns", func(l *GSLatency) Summary { return l.Reply }},
		}
		for _, row := range rows {
			w("| %s | %s | %s |\n", row.name, get(r.OnePhase, row.f), get(r.NPhase, row.f))
		}
	} else {
		w("Not measured in this run.\n")
	}

	w("\n## Throughput\n\n")
	w("One cluster per run; groups of one provider per agent are joined %v at a time (the groups of the smaller counts stay, idle, for the larger), spread over %d `gs` clients per agent. ", r.Options.ThroughputGroups, r.Options.ClientsPerAgent)
	w("In each group one provider proposes (the proposers rotate over the nodes by group) one-phase state changes, one in flight per group: it calls `ChangeStateValue` again as soon as its own approved callback for the previous one ran, for %s; the groups run concurrently, so protocols are pipelined across groups. ", r.Options.ThroughputWindow)
	w("Once the window ends nothing new is proposed and every protocol proposed is awaited at every provider. The figure is the protocols proposed (each approved at all 3 providers) divided by the time from the first call to the last approved callback at any provider; one sample per run.\n\n")
	if len(r.Throughput) > 0 {
		w("| groups | approved protocols per second | protocols per run | CPU per protocol, 3 agents together | CPU per protocol, client process |\n|---|---|---|---|---|\n")
		for _, n := range gsThroughputGroups {
			if t := r.Throughput[throughputKey(n)]; t != nil {
				w("| %d | %s | %s | %s | %s |\n", n, t.PerSecond.text(), t.Protocols.text(), t.AgentCPU.text(), t.ClientCPU.text())
			}
		}
		w("\nCPU is user + system time from `/proc/<pid>/stat` over the window and the drain, divided by the protocols of the run.\n")
	} else {
		w("Not measured in this run.\n")
	}

	w("\n## Provider killed\n\n")
	w("One one-phase group with a provider on each agent; node 3's agent, which hosts one of them, gets SIGKILL (%d times per cluster: after each kill node 3 is restarted and its provider joins again). ", r.Options.FailoverCycles)
	w("Failure leave: from the SIGKILL to the entry of the approved callback for the `HA_GS_FAILURE_LEAVE` of node 3's provider at the later of the two surviving providers. ")
	w("Membership failover, measured on the same kill: from the SIGKILL to the later of the two survivors' `INSTALLED` events for the view without node 3 (the agents' own stamps). The target compares the two per kill: the failure leave may come at most 10 ms after the view.\n\n")
	if f := r.Failover; f != nil {
		w("| ms, per kill | |\n|---|---|\n")
		w("| SIGKILL → failure leave approved on both survivors | %s |\n", f.FailureLeave.text())
		w("| SIGKILL → view installed on both survivors | %s |\n", f.View.text())
		w("| failure leave − view (target ≤ 10 ms) | %s |\n", f.Extra.text())
		if m := r.Memory; m != nil && m.KillFailureLeaves.N > 0 {
			w("| with %s groups (memory section): SIGKILL → the last of the %s failure leaves approved on the survivors | %s |\n", thousands(m.Groups), thousands(2*m.Groups), m.KillFailureLeaves.text())
			w("| with %s groups: SIGKILL → view installed on both survivors | %s |\n", thousands(m.Groups), m.KillView.text())
		}
		w("\nOn loopback a killed agent's peers learn of its death from the kernel closing its TCP tripwire connections, so the token timeout does not enter these figures.\n")
	} else {
		w("Not measured in this run.\n")
	}

	w("\n## Memory\n\n")
	w("%s groups, each with one provider on each agent (%s providers, %s per agent), joined through %d `gs` clients per agent; every join is a one-phase protocol. ", thousands(gsMemoryGroups), thousands(3*gsMemoryGroups), thousands(gsMemoryGroups), r.Options.MemoryClients)
	w("Once every provider has seen its group complete, the agents idle %s and each agent's `VmRSS` (and `VmHWM`, its peak) is read from `/proc`; one sample per agent, three per run. Every agent holds the full replica of every group. The baseline is the same agents formed, with the clients connected and no group.\n\n", gsMemorySettle)
	if m := r.Memory; m != nil {
		w("| per agent | |\n|---|---|\n")
		w("| RSS with %s groups (target) | %s |\n", thousands(m.Groups), m.RSSMiB.text())
		w("| peak RSS (VmHWM) | %s |\n", m.PeakMiB.text())
		w("| baseline RSS, no group | %s |\n", m.BaselineMiB.text())
		w("| (RSS − baseline) per group | %s |\n", m.KiBPerGroup.text())
		w("| providers joined per second (first Join call → last join approved; one per run) | %s |\n", m.JoinsPerSecond.text())
		w("\nThen node 3's agent gets SIGKILL: its %s providers fail out of their groups. From the SIGKILL to the last of the survivors' %s approved callbacks for those failure leaves: %s; to the survivors' new view on the same kill: %s (first run only: it takes long).\n",
			thousands(m.Groups), thousands(2*m.Groups), m.KillFailureLeaves.text(), m.KillView.text())
	} else {
		w("Not measured in this run.\n")
	}

	if len(r.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	w("\nReproduce: `go run ./cmd/conclave bench groups --out docs/benchmarks`.\n")
	return b.String()
}

// thousands prints n with commas: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
