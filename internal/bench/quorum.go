package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/lab"
	"github.com/conclave/conclave/votequorum"
)

// What the quorum benchmark does per run. Small on purpose: the whole
// command should take a few minutes at most with the default five runs.
const (
	quorumCycles  = 4               // kill+restart cycles per run for the callback latency
	fanoutCycles  = 2               // kill+restart cycles per run for the fan-out
	fanoutClients = 100             // raw Session streams tracking quorum on node 1
	getInfoWindow = 2 * time.Second // GetInfo loop per run
	stepTimeout   = 15 * time.Second
)

// Corosync 3.1.7 on this kind of machine, measured for the issue:
// SIGKILL of corosync to the quorum callback on a survivor, in seconds.
const (
	corosyncFailoverDefault = 7.7
	corosyncFailover300     = 2.0
)

// QuorumReport is everything the quorum benchmark measured, in the shape of
// its JSON report. Times are in milliseconds.
type QuorumReport struct {
	Date    string              `json:"date"`
	Host    Host                `json:"host"`
	Options QuorumReportOptions `json:"options"`
	// Callback: from the INSTALLED event's stamp at node 1 to a votequorum
	// client's quorum callback for that ring, per view change.
	Callback Summary         `json:"view_installed_to_callback"`
	GetInfo  *GetInfoFigures `json:"getinfo,omitempty"`
	FanOut   *FanOutFigures  `json:"fanout,omitempty"`
	// Failover by token setting ("default_token", "token_300ms").
	Failover map[string]*FailoverFigures `json:"sigkill_to_callback,omitempty"`
	Notes    []string                    `json:"notes,omitempty"`
}

// QuorumReportOptions echo what was run.
type QuorumReportOptions struct {
	Runs          int      `json:"runs"`
	Only          []string `json:"only,omitempty"`
	Cycles        int      `json:"kill_restart_cycles_per_run"`
	FanoutClients int      `json:"fanout_clients"`
	GetInfoWindow string   `json:"getinfo_window"`
}

// GetInfoFigures: one votequorum handle calling GetInfo(0) back to back.
type GetInfoFigures struct {
	PerSecond Summary `json:"per_second"` // one sample per run
	RoundTrip Summary `json:"round_trip"` // one sample per call, ms
}

// FanOutFigures: one view change seen by many raw Session streams. Every
// sample is one view change.
type FanOutFigures struct {
	Clients int `json:"clients"`
	// Slowest is the largest, over the clients, of receipt time minus the
	// event's unix_nano (when the agent sent it).
	Slowest Summary `json:"slowest_client"`
	// Median is the median client of the same.
	Median Summary `json:"median_client"`
	// FromInstalled is the slowest client's receipt minus the INSTALLED
	// event's stamp at the same agent.
	FromInstalled Summary `json:"slowest_client_from_installed"`
}

// FailoverFigures: SIGKILL of node 3 to the quorum callback, for the new
// ring without it, at the later of the two survivors' clients.
type FailoverFigures struct {
	Token       string  `json:"token"`
	CorosyncSec float64 `json:"corosync_seconds"`
	Callback    Summary `json:"sigkill_to_callback"`
	// View is SIGKILL to the INSTALLED event of that ring at node 1, for
	// telling the membership's share from the quorum service's.
	View Summary `json:"sigkill_to_installed"`
}

type ringKey struct {
	rep uint32
	seq uint64
}

func (k ringKey) String() string { return fmt.Sprintf("%x.%x", k.rep, k.seq) }

func keyOf(r *clientpb.RingID) ringKey {
	if r == nil {
		return ringKey{}
	}
	return ringKey{r.Rep, r.Seq}
}

// Quorum runs the quorum benchmark: sections "callback", "getinfo",
// "fanout" and "failover" (o.Only picks some), each on fresh 3-agent
// loopback clusters, o.Runs times.
func Quorum(ctx context.Context, o Options) (*QuorumReport, error) {
	o.defaults()
	r := &QuorumReport{
		Date: time.Now().UTC().Format(time.RFC3339), Host: host(),
		Options: QuorumReportOptions{Runs: o.Runs, Only: o.Only, Cycles: quorumCycles, FanoutClients: fanoutClients, GetInfoWindow: getInfoWindow.String()},
	}
	qb := &quorumBench{o: o, r: r}
	if o.runs("callback") {
		if err := qb.callback(ctx); err != nil {
			return nil, fmt.Errorf("view installed → callback: %w", err)
		}
	}
	if o.runs("getinfo") {
		if err := qb.getInfo(ctx); err != nil {
			return nil, fmt.Errorf("GetInfo: %w", err)
		}
	}
	if o.runs("fanout") {
		if err := qb.fanOut(ctx); err != nil {
			return nil, fmt.Errorf("fan-out: %w", err)
		}
	}
	if o.runs("failover") {
		r.Failover = map[string]*FailoverFigures{}
		for _, token := range []time.Duration{0, 300 * time.Millisecond} {
			f, err := qb.failover(ctx, token)
			if err != nil {
				return nil, fmt.Errorf("failover (token %s): %w", tokenText(token), err)
			}
			r.Failover[failoverKey(token)] = f
		}
	}
	return r, nil
}

func failoverKey(token time.Duration) string {
	if token == 0 {
		return "default_token"
	}
	return "token_" + token.String()
}

type quorumBench struct {
	o Options
	r *QuorumReport
}

func (qb *quorumBench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(qb.r.Notes, n) {
		qb.r.Notes = append(qb.r.Notes, n)
	}
}

// startQuorum starts a 3-node loopback cluster (quorum is always configured
// by lab) and waits for its full view.
func startQuorum(ctx context.Context, o Options, token time.Duration) (*lab.Cluster, *clientpb.RingID, error) {
	c, err := lab.Start(ctx, lab.Options{Binary: o.Binary, Nodes: 3, ClusterName: "bench", Token: token})
	if err != nil {
		return nil, nil, err
	}
	ring, err := c.WaitView(ctx, ids(3), ids(3))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, ring, nil
}

// quorumCall is one quorum callback, stamped on entry.
type quorumCall struct {
	ring    ringKey
	quorate bool
	nodes   []votequorum.Node
	at      time.Time
}

// member reports whether the callback lists id as a member.
func (q quorumCall) member(id uint32) bool {
	for _, n := range q.nodes {
		if n.NodeID == id {
			return n.State == votequorum.NodestateMember
		}
	}
	return false
}

// tracker is a votequorum client tracking changes, dispatching on a
// goroutine of its own (Run) and passing every quorum callback on.
type tracker struct {
	h     *votequorum.Handle
	calls chan quorumCall
}

func track(ctx context.Context, socket string) (*tracker, error) {
	t := &tracker{calls: make(chan quorumCall, 1024)}
	cb := &votequorum.Callbacks{Quorum: func(_ *votequorum.Handle, _ uint64, quorate bool, ring votequorum.RingID, nodes []votequorum.Node) {
		at := time.Now()
		select {
		case t.calls <- quorumCall{ring: ringKey{ring.NodeID, ring.Seq}, quorate: quorate, nodes: slices.Clone(nodes), at: at}:
		case <-ctx.Done():
		}
	}}
	h, err := votequorum.Initialize(cb, votequorum.WithSocket(socket), votequorum.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		h.Finalize()
		return nil, fmt.Errorf("TrackStart: %w", err)
	}
	t.h = h
	go h.Run(ctx)
	return t, nil
}

func (t *tracker) close() { t.h.Finalize() }

// wait returns the first callback (from now on) that pred accepts.
func (t *tracker) wait(ctx context.Context, pred func(quorumCall) bool) (quorumCall, error) {
	for {
		select {
		case q := <-t.calls:
			if pred(q) {
				return q, nil
			}
		case <-ctx.Done():
			return quorumCall{}, ctx.Err()
		}
	}
}

// viewChanges kills node 3 and restarts it, cycles times, calling step
// after each action with the members of the view it should lead to. Before
// the next kill every node is back in the full view.
func viewChanges(ctx context.Context, c *lab.Cluster, cycles int, step func(ctx context.Context, members []uint32) error) error {
	for range cycles {
		for _, kill := range []bool{true, false} {
			members := ids(3)
			var err error
			if kill {
				members = ids(2)
				err = c.Kill(3)
			} else {
				err = c.StartNode(3)
			}
			if err != nil {
				return err
			}
			sctx, cancel := context.WithTimeout(ctx, stepTimeout)
			err = step(sctx, members)
			cancel()
			if err != nil {
				return fmt.Errorf("view %v: %w", members, err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, stepTimeout)
		_, err := c.WaitView(wctx, ids(3), ids(3))
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// callback measures the INSTALLED stamp at node 1 to a votequorum client's
// quorum callback for that ring, on node 1, over view changes.
func (qb *quorumBench) callback(ctx context.Context) error {
	var samples []float64
	for run := range qb.o.Runs {
		fmt.Fprintf(qb.o.Log, "view installed → quorum callback, run %d/%d (%d view changes)\n", run+1, qb.o.Runs, 2*quorumCycles)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			c, ring, err := startQuorum(ctx, qb.o, 0)
			if err != nil {
				return err
			}
			defer c.Close()
			watches, err := c.WatchNews(ctx, []uint32{1})
			if err != nil {
				return err
			}
			watch := watches[1]
			t, err := track(ctx, c.Node(1).Socket)
			if err != nil {
				return err
			}
			defer t.close()
			initial := keyOf(ring)
			if _, err := t.wait(ctx, func(q quorumCall) bool { return q.ring == initial }); err != nil {
				return fmt.Errorf("no quorum callback for the current ring %s: %w", initial, err)
			}
			installed := map[ringKey]time.Time{}
			called := map[ringKey]quorumCall{}
			return viewChanges(ctx, c, quorumCycles, func(ctx context.Context, members []uint32) error {
				var target *ringKey
				for {
					if target != nil {
						if q, ok := called[*target]; ok {
							d := q.at.Sub(installed[*target])
							if d < 0 {
								qb.note("a quorum callback arrived before the INSTALLED stamp of its ring (%s, %v early)", *target, -d)
							}
							if !q.quorate {
								qb.note("node 1 reported not quorate for ring %s with members %v", *target, members)
							}
							samples = append(samples, millis(d))
							return nil
						}
					}
					select {
					case ev, ok := <-watch:
						if !ok {
							return fmt.Errorf("node 1 closed its event stream")
						}
						if ev.Kind == clientpb.Event_INSTALLED {
							k := keyOf(ev.RingId)
							installed[k] = time.Unix(0, ev.UnixNano)
							if slices.Equal(ev.Members, members) {
								target = &k
							}
						}
					case q := <-t.calls:
						if _, seen := called[q.ring]; !seen {
							called[q.ring] = q
						}
					case <-ctx.Done():
						if target == nil {
							return fmt.Errorf("node 1 installed no such view: %w", ctx.Err())
						}
						return fmt.Errorf("no quorum callback for ring %s: %w", *target, ctx.Err())
					}
				}
			})
		}()
		if err != nil {
			return err
		}
	}
	qb.r.Callback = summarize(samples, "ms")
	return nil
}

// getInfo calls GetInfo(0) back to back on one handle for getInfoWindow.
func (qb *quorumBench) getInfo(ctx context.Context) error {
	var rates, rtts []float64
	for run := range qb.o.Runs {
		fmt.Fprintf(qb.o.Log, "GetInfo round trips for %v, run %d/%d\n", getInfoWindow, run+1, qb.o.Runs)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			c, _, err := startQuorum(ctx, qb.o, 0)
			if err != nil {
				return err
			}
			defer c.Close()
			h, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(c.Node(1).Socket), votequorum.WithContext(ctx))
			if err != nil {
				return err
			}
			defer h.Finalize()
			for range 200 { // warm up the connection
				if _, err := h.GetInfo(0); err != nil {
					return err
				}
			}
			n := 0
			start := time.Now()
			last := start
			for last.Sub(start) < getInfoWindow {
				info, err := h.GetInfo(0)
				now := time.Now()
				if err != nil {
					return err
				}
				if info.NodeID != 1 {
					return fmt.Errorf("GetInfo(0) on node 1 answered for node %d", info.NodeID)
				}
				rtts = append(rtts, millis(now.Sub(last)))
				last = now
				n++
			}
			rates = append(rates, float64(n)/last.Sub(start).Seconds())
			return nil
		}()
		if err != nil {
			return err
		}
	}
	qb.r.GetInfo = &GetInfoFigures{PerSecond: summarize(rates, "calls/s"), RoundTrip: summarize(rtts, "ms")}
	return nil
}

// arrival is one QUORUM event received by one fan-out client.
type arrival struct {
	client int
	ring   ringKey
	sent   int64 // the event's unix_nano
	at     time.Time
}

// fanOut opens fanoutClients raw Session streams on node 1, each on its
// own connection, tracking changes, and times how one quorum event reaches
// all of them, over view changes.
func (qb *quorumBench) fanOut(ctx context.Context) error {
	f := &FanOutFigures{Clients: fanoutClients}
	var slowest, median, fromInstalled []float64
	for run := range qb.o.Runs {
		fmt.Fprintf(qb.o.Log, "fan-out to %d clients, run %d/%d (%d view changes)\n", fanoutClients, run+1, qb.o.Runs, 2*fanoutCycles)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			c, _, err := startQuorum(ctx, qb.o, 0)
			if err != nil {
				return err
			}
			defer c.Close()
			watches, err := c.WatchNews(ctx, []uint32{1})
			if err != nil {
				return err
			}
			watch := watches[1]
			arrivals := make(chan arrival, fanoutClients*16)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel() // before wg.Wait: ends the readers
			var conns []*grpc.ClientConn
			defer func() {
				for _, cc := range conns {
					cc.Close()
				}
			}()
			for i := range fanoutClients {
				cc, err := ipc.Dial(ctx, c.Node(1).Socket)
				if err != nil {
					return err
				}
				conns = append(conns, cc)
				st, err := clientpb.NewVotequorumClient(cc).Session(ctx)
				if err != nil {
					return err
				}
				if err := st.Send(&clientpb.VQRequest{Id: 1, Body: &clientpb.VQRequest_TrackStart{TrackStart: &clientpb.VQTrackStart{Flags: cs.TrackChanges}}}); err != nil {
					return err
				}
				for { // the current state, then the reply
					m, err := st.Recv()
					if err != nil {
						return fmt.Errorf("client %d: %w", i, err)
					}
					if rep := m.GetReply(); rep != nil && rep.Id == 1 {
						if err := cs.FromCode(rep.Error); err != nil {
							return fmt.Errorf("client %d: TrackStart: %w", i, err)
						}
						break
					}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						m, err := st.Recv()
						at := time.Now()
						if err != nil {
							return
						}
						if ev := m.GetEvent(); ev != nil && ev.Kind == clientpb.VQEvent_QUORUM {
							select {
							case arrivals <- arrival{client: i, ring: keyOf(ev.RingId), sent: ev.UnixNano, at: at}:
							case <-ctx.Done():
								return
							}
						}
					}
				}()
			}
			installed := map[ringKey]time.Time{}
			got := map[ringKey]map[int]arrival{}
			return viewChanges(ctx, c, fanoutCycles, func(ctx context.Context, members []uint32) error {
				var target *ringKey
				for {
					if target != nil && len(got[*target]) == fanoutClients {
						var ds []float64
						var last time.Time
						for _, a := range got[*target] {
							ds = append(ds, millis(a.at.Sub(time.Unix(0, a.sent))))
							if a.at.After(last) {
								last = a.at
							}
						}
						s := summarize(ds, "ms")
						slowest = append(slowest, s.Max)
						median = append(median, s.Median)
						fromInstalled = append(fromInstalled, millis(last.Sub(installed[*target])))
						return nil
					}
					select {
					case ev, ok := <-watch:
						if !ok {
							return fmt.Errorf("node 1 closed its event stream")
						}
						if ev.Kind == clientpb.Event_INSTALLED {
							k := keyOf(ev.RingId)
							installed[k] = time.Unix(0, ev.UnixNano)
							if slices.Equal(ev.Members, members) {
								target = &k
							}
						}
					case a := <-arrivals:
						m := got[a.ring]
						if m == nil {
							m = map[int]arrival{}
							got[a.ring] = m
						}
						if _, seen := m[a.client]; !seen {
							m[a.client] = a
						}
					case <-ctx.Done():
						if target == nil {
							return fmt.Errorf("node 1 installed no such view: %w", ctx.Err())
						}
						return fmt.Errorf("%d of %d clients got the quorum event for ring %s: %w", len(got[*target]), fanoutClients, *target, ctx.Err())
					}
				}
			})
		}()
		if err != nil {
			return err
		}
	}
	f.Slowest, f.Median, f.FromInstalled = summarize(slowest, "ms"), summarize(median, "ms"), summarize(fromInstalled, "ms")
	qb.r.FanOut = f
	return nil
}

// failover kills node 3 of a formed cluster and times, from the SIGKILL,
// the quorum callback for a ring without it at votequorum clients on nodes
// 1 and 2 (the later of the two), and node 1's INSTALLED event.
func (qb *quorumBench) failover(ctx context.Context, token time.Duration) (*FailoverFigures, error) {
	f := &FailoverFigures{Token: tokenText(token), CorosyncSec: corosyncFailoverDefault}
	if token != 0 {
		f.CorosyncSec = corosyncFailover300
	}
	var cbs, views []float64
	for run := range qb.o.Runs {
		fmt.Fprintf(qb.o.Log, "SIGKILL → quorum callback (token %s), run %d/%d\n", tokenText(token), run+1, qb.o.Runs)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			c, ring, err := startQuorum(ctx, qb.o, token)
			if err != nil {
				return err
			}
			defer c.Close()
			initial := keyOf(ring)
			watches, err := c.WatchNews(ctx, []uint32{1})
			if err != nil {
				return err
			}
			var ts []*tracker
			for _, id := range ids(2) {
				t, err := track(ctx, c.Node(id).Socket)
				if err != nil {
					return fmt.Errorf("node %d: %w", id, err)
				}
				defer t.close()
				if _, err := t.wait(ctx, func(q quorumCall) bool { return q.ring == initial }); err != nil {
					return fmt.Errorf("node %d: no quorum callback for the current ring %s: %w", id, initial, err)
				}
				ts = append(ts, t)
			}
			t0 := time.Now()
			if err := c.Kill(3); err != nil {
				return err
			}
			sctx, scancel := context.WithTimeout(ctx, stepTimeout)
			defer scancel()
			var last time.Time
			for i, t := range ts {
				q, err := t.wait(sctx, func(q quorumCall) bool { return q.ring != initial && !q.member(3) })
				if err != nil {
					return fmt.Errorf("node %d: no quorum callback without node 3: %w", i+1, err)
				}
				if !q.quorate {
					qb.note("after SIGKILL (token %s) node %d's first callback without node 3 said not quorate (ring %s)", tokenText(token), i+1, q.ring)
				}
				if q.at.After(last) {
					last = q.at
				}
			}
			at, err := lab.WaitInstalled(sctx, watches, ids(2))
			if err != nil {
				return err
			}
			cbs = append(cbs, millis(last.Sub(t0)))
			views = append(views, millis(at.Sub(t0)))
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	f.Callback, f.View = summarize(cbs, "ms"), summarize(views, "ms")
	return f, nil
}

// WriteFiles writes the report as dir/quorum.md and dir/quorum.json.
func (r *QuorumReport) WriteFiles(dir string) error {
	js, err := jsonIndent(r)
	if err != nil {
		return err
	}
	return writeReport(dir, "quorum", js, r.Markdown())
}
