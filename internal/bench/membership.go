package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/lab"
)

// Options configure a membership benchmark.
type Options struct {
	Binary   string        // conclave binary
	Runs     int           // runs per measurement (default 5)
	Sizes    []int         // cluster sizes (default 3 and 5)
	Messages int           // messages per throughput run (default 200,000 for 64 B)
	Netns    string        // "auto" (when available), "on", "off"
	Saturate time.Duration // false-alarm run with both cores saturated; 0 skips it
	Idle     time.Duration // idle window for RSS and CPU (default 10 s)
	Only     []string      // sections to run (lifecycle, linkcut, ordered, idle, saturate); empty = all
	Log      io.Writer     // progress lines
}

func (o *Options) runs(section string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, section)
}

// Report is everything measured, in the shape of the JSON report.
type Report struct {
	Date      string             `json:"date"`
	Host      Host               `json:"host"`
	Options   ReportOptions      `json:"options"`
	Sizes     map[string]*Sizing `json:"sizes"` // by cluster size
	LinkCut   map[string]Summary `json:"link_cut,omitempty"`
	Ordered   map[string]Summary `json:"ordered,omitempty"`
	Latency   map[string]Summary `json:"latency,omitempty"`
	Idle      *IdleFigures       `json:"idle,omitempty"`
	Saturated *SaturatedRun      `json:"saturated,omitempty"`
	Notes     []string           `json:"notes,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	CPUModel  string `json:"cpu_model"`
}

// ReportOptions echo the options.
type ReportOptions struct {
	Runs     int    `json:"runs"`
	Messages int    `json:"messages"`
	Netns    bool   `json:"netns"`
	Saturate string `json:"saturate,omitempty"`
}

// Sizing holds the per-size timings, in milliseconds.
type Sizing struct {
	Form    Summary `json:"start_to_full_view"`
	Kill    Summary `json:"sigkill_to_new_view"`
	Restart Summary `json:"restart_to_rejoined_view"`
}

// IdleFigures are per agent.
type IdleFigures struct {
	RSSMiB     Summary `json:"rss_mib"`
	CPUPercent Summary `json:"cpu_percent"`
	Window     string  `json:"window"`
}

// SaturatedRun counts view changes nobody caused.
type SaturatedRun struct {
	Duration      string `json:"duration"`
	Burners       int    `json:"burners"`
	FalseChanges  uint64 `json:"false_view_changes"`
	ViewsPerAgent []uint64
}

func (o *Options) defaults() {
	if o.Runs == 0 {
		o.Runs = 5
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{3, 5}
	}
	if o.Messages == 0 {
		o.Messages = 200_000
	}
	if o.Netns == "" {
		o.Netns = "auto"
	}
	if o.Idle == 0 {
		o.Idle = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Membership runs the membership benchmark.
func Membership(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	useNetns := false
	switch o.Netns {
	case "on":
		if ok, why := lab.NetnsAvailable(); !ok {
			return nil, fmt.Errorf("--netns on: %s", why)
		}
		useNetns = true
	case "auto":
		ok, why := lab.NetnsAvailable()
		useNetns = ok
		if !ok {
			fmt.Fprintf(o.Log, "skipping the link-cut measurement: %s\n", why)
		}
	}
	r := &Report{
		Date: time.Now().UTC().Format(time.RFC3339), Host: host(),
		Options: ReportOptions{Runs: o.Runs, Messages: o.Messages, Netns: useNetns},
		Sizes:   map[string]*Sizing{}, LinkCut: map[string]Summary{}, Ordered: map[string]Summary{}, Latency: map[string]Summary{},
	}
	if o.Saturate > 0 {
		r.Options.Saturate = o.Saturate.String()
	}
	if !useNetns {
		r.Notes = append(r.Notes, "link cut not measured: network namespaces unavailable (run as root)")
	}
	for _, n := range o.Sizes {
		if !o.runs("lifecycle") {
			break
		}
		s, err := lifecycle(ctx, o, n)
		if err != nil {
			return nil, fmt.Errorf("%d nodes: %w", n, err)
		}
		r.Sizes[strconv.Itoa(n)] = s
	}
	if useNetns && o.runs("linkcut") {
		for _, n := range o.Sizes {
			for _, token := range []time.Duration{0, 300 * time.Millisecond} {
				if token > 0 && n != 3 {
					continue // the equal-token comparison is for 3 nodes
				}
				s, err := linkCut(ctx, o, n, token)
				if err != nil {
					return nil, fmt.Errorf("link cut: %w", err)
				}
				key := fmt.Sprintf("%d_nodes", n)
				if token > 0 {
					key += "_token_" + token.String()
				}
				r.LinkCut[key] = s
			}
		}
	}
	if o.runs("ordered") {
		if err := ordered(ctx, o, r); err != nil {
			return nil, fmt.Errorf("ordered delivery: %w", err)
		}
	}
	if o.runs("idle") {
		idle, err := idleFigures(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("idle figures: %w", err)
		}
		r.Idle = idle
	}
	if o.Saturate > 0 && o.runs("saturate") {
		var err error
		if r.Saturated, err = saturated(ctx, o); err != nil {
			return nil, fmt.Errorf("saturated run: %w", err)
		}
	}
	return r, nil
}

func ids(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

// lifecycle measures, over o.Runs fresh clusters of n nodes: start to first
// full view, SIGKILL of the last node to the survivors' new view, and its
// restart to the rejoined view. Times come from the agents' own event
// timestamps (same host clock).
func lifecycle(ctx context.Context, o Options, n int) (*Sizing, error) {
	var form, kill, restart []float64
	all := ids(n)
	survivors := all[:n-1]
	for run := range o.Runs {
		fmt.Fprintf(o.Log, "%d nodes, run %d/%d: start, SIGKILL, restart\n", n, run+1, o.Runs)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			start := time.Now()
			c, err := lab.Start(ctx, lab.Options{Binary: o.Binary, Nodes: n, ClusterName: "bench"})
			if err != nil {
				return err
			}
			defer c.Close()
			ring, err := c.WaitView(ctx, all, all)
			if err != nil {
				return err
			}
			at, err := c.InstalledAt(ctx, all, ring)
			if err != nil {
				return err
			}
			form = append(form, millis(at.Sub(start)))

			watches, err := c.WatchNews(ctx, survivors)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := c.Kill(uint32(n)); err != nil {
				return err
			}
			at, err = lab.WaitInstalled(ctx, watches, survivors)
			if err != nil {
				return fmt.Errorf("after SIGKILL: %w", err)
			}
			kill = append(kill, millis(at.Sub(t0)))

			t0 = time.Now()
			if err := c.StartNode(uint32(n)); err != nil {
				return err
			}
			at, err = lab.WaitInstalled(ctx, watches, all)
			if err != nil {
				return fmt.Errorf("after restart: %w", err)
			}
			restart = append(restart, millis(at.Sub(t0)))
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	return &Sizing{Form: summarize(form, "ms"), Kill: summarize(kill, "ms"), Restart: summarize(restart, "ms")}, nil
}

// linkCut measures, in network namespaces, cutting the last node's only
// link to the survivors' new view: failure detection by silence alone.
func linkCut(ctx context.Context, o Options, n int, token time.Duration) (Summary, error) {
	var samples []float64
	all := ids(n)
	survivors := all[:n-1]
	for run := range o.Runs {
		fmt.Fprintf(o.Log, "link cut, %d nodes (token %v), run %d/%d\n", n, tokenText(token), run+1, o.Runs)
		err := func() error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			c, err := lab.Start(ctx, lab.Options{Binary: o.Binary, Nodes: n, ClusterName: "bench", Netns: true, Token: token})
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.WaitView(ctx, all, all); err != nil {
				return err
			}
			watches, err := c.WatchNews(ctx, survivors)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := c.LinkDown(uint32(n), 0); err != nil {
				return err
			}
			at, err := lab.WaitInstalled(ctx, watches, survivors)
			if err != nil {
				return err
			}
			samples = append(samples, millis(at.Sub(t0)))
			return nil
		}()
		if err != nil {
			return Summary{}, err
		}
	}
	return summarize(samples, "ms"), nil
}

func tokenText(t time.Duration) string {
	if t == 0 {
		return "default 800ms"
	}
	return t.String()
}

// ordered measures ordered-delivery throughput (64 B and 1 KiB, one sender
// and three) and latency at 100 msg/s, on a 3-node loopback cluster.
func ordered(ctx context.Context, o Options, r *Report) error {
	for _, size := range []int{64, 1024} {
		for _, senders := range []int{1, 3} {
			var rates []float64
			count := o.Messages
			if size > 64 {
				count = o.Messages / 4
			}
			for run := range o.Runs {
				fmt.Fprintf(o.Log, "throughput %d B, %d sender(s), run %d/%d\n", size, senders, run+1, o.Runs)
				rate, err := throughput(ctx, o, size, senders, count)
				if err != nil {
					return err
				}
				rates = append(rates, rate)
			}
			r.Ordered[fmt.Sprintf("%dB_%dsender", size, senders)] = summarize(rates, "msg/s")
		}
	}
	// Node 1 sequences the view; node 2's messages take two network hops
	// more. Both are reported; the target table uses the latter.
	for _, sender := range []uint32{1, 2} {
		var lat, latAll []float64
		for run := range o.Runs {
			fmt.Fprintf(o.Log, "latency at 100 msg/s from node %d, run %d/%d\n", sender, run+1, o.Runs)
			a, b, err := latency(ctx, o, sender, 300)
			if err != nil {
				return err
			}
			lat = append(lat, a...)
			latAll = append(latAll, b...)
		}
		who := "sequencer"
		if sender != 1 {
			who = "member"
		}
		r.Latency["from_"+who+"_at_sender"] = summarize(lat, "ms")
		r.Latency["from_"+who+"_at_all_nodes"] = summarize(latAll, "ms")
	}
	return nil
}

func startThree(ctx context.Context, o Options) (*lab.Cluster, error) {
	c, err := lab.Start(ctx, lab.Options{Binary: o.Binary, Nodes: 3, ClusterName: "bench"})
	if err != nil {
		return nil, err
	}
	if _, err := c.WaitView(ctx, ids(3), ids(3)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// throughput publishes count messages of size bytes, split over senders,
// as fast as flow control allows, and returns messages per second delivered
// to every node (first publish to last delivery at the slowest node).
func throughput(ctx context.Context, o Options, size, senders, count int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := startThree(ctx, o)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Subscribe everywhere first (counts only).
	type sub struct {
		stream clientpb.Agent_SubscribeClient
		closer io.Closer
	}
	var subs []sub
	for _, id := range ids(3) {
		cl, closer, err := c.Client(ctx, id)
		if err != nil {
			return 0, err
		}
		defer closer.Close()
		st, err := cl.Subscribe(ctx, &clientpb.SubscribeRequest{})
		if err != nil {
			return 0, err
		}
		subs = append(subs, sub{st, closer})
	}
	// Each stream opens with an empty batch once it is live.
	for _, s := range subs {
		if _, err := s.stream.Recv(); err != nil {
			return 0, fmt.Errorf("subscribe: %w", err)
		}
	}
	var lastDelivery atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, s := range subs {
		wg.Add(1)
		go func(st clientpb.Agent_SubscribeClient) {
			defer wg.Done()
			got := 0
			for got < count {
				b, err := st.Recv()
				if err != nil {
					errs <- err
					return
				}
				got += int(b.Count)
				if n := len(b.Deliveries); n > 0 {
					t := b.Deliveries[n-1].UnixNano
					for {
						old := lastDelivery.Load()
						if t <= old || lastDelivery.CompareAndSwap(old, t) {
							break
						}
					}
				}
			}
		}(s.stream)
	}
	payload := make([]byte, size)
	start := time.Now()
	var pwg sync.WaitGroup
	for s := range senders {
		n := count / senders
		if s == 0 {
			n += count % senders
		}
		pwg.Add(1)
		go func(id uint32, n int) {
			defer pwg.Done()
			const batch = 256
			var all [][]byte
			for range batch {
				all = append(all, payload)
			}
			cl, closer, err := c.Client(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			defer closer.Close()
			st, err := cl.Publish(ctx)
			if err != nil {
				errs <- err
				return
			}
			for n > 0 {
				k := min(n, batch)
				if err := st.Send(&clientpb.PublishRequest{Payloads: all[:k]}); err != nil {
					errs <- err
					return
				}
				n -= k
			}
			if _, err := st.CloseAndRecv(); err != nil {
				errs <- err
			}
		}(uint32(s+1), n)
	}
	pwg.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	elapsed := time.Unix(0, lastDelivery.Load()).Sub(start)
	return float64(count) / elapsed.Seconds(), nil
}

// latency sends n 64-byte messages from sender at 100 msg/s, each carrying
// its send time, and returns per message the delay to delivery at the
// sender and to delivery at the last node (ms).
func latency(ctx context.Context, o Options, sender uint32, n int) (atSender, atAll []float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := startThree(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	arrivals := make([]map[int64]int64, 3) // send time -> delivery time, per node
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, id := range ids(3) {
		arrivals[i] = map[int64]int64{}
		cl, closer, err := c.Client(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		defer closer.Close()
		st, err := cl.Subscribe(ctx, &clientpb.SubscribeRequest{Payloads: true})
		if err != nil {
			return nil, nil, err
		}
		if _, err := st.Recv(); err != nil { // the subscription is live
			return nil, nil, err
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for got := 0; got < n; {
				b, err := st.Recv()
				if err != nil {
					return
				}
				mu.Lock()
				for _, d := range b.Deliveries {
					if len(d.Payload) >= 8 {
						if sent := int64(binary.BigEndian.Uint64(d.Payload)); sent != 0 {
							arrivals[i][sent] = d.UnixNano
							got++
						}
					}
				}
				mu.Unlock()
			}
		}(i)
	}
	cl, closer, err := c.Client(ctx, sender)
	if err != nil {
		return nil, nil, err
	}
	defer closer.Close()
	st, err := cl.Publish(ctx)
	if err != nil {
		return nil, nil, err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range n {
		<-tick.C
		p := make([]byte, 64)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		if err := st.Send(&clientpb.PublishRequest{Payloads: [][]byte{p}}); err != nil {
			return nil, nil, err
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, nil, errors.New("not every message was delivered at every node")
	}
	for sent, at := range arrivals[sender-1] {
		atSender = append(atSender, millis(time.Duration(at-sent)))
		last := at
		for _, m := range arrivals {
			last = max(last, m[sent])
		}
		atAll = append(atAll, millis(time.Duration(last-sent)))
	}
	return atSender, atAll, nil
}

// idleFigures measures the agents of an idle formed 3-node cluster: RSS and
// CPU share over the idle window.
func idleFigures(ctx context.Context, o Options) (*IdleFigures, error) {
	var rss, cpu []float64
	for run := range o.Runs {
		fmt.Fprintf(o.Log, "idle RSS and CPU (%v window), run %d/%d\n", o.Idle, run+1, o.Runs)
		c, err := startThree(ctx, o)
		if err != nil {
			return nil, err
		}
		before := map[uint32]float64{}
		for _, id := range ids(3) {
			before[id], _ = cpuSeconds(c.PID(id))
		}
		t0 := time.Now()
		select {
		case <-time.After(o.Idle):
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
		window := time.Since(t0).Seconds()
		for _, id := range ids(3) {
			after, err := cpuSeconds(c.PID(id))
			if err != nil {
				c.Close()
				return nil, err
			}
			cpu = append(cpu, 100*(after-before[id])/window)
			kb, err := rssKiB(c.PID(id))
			if err != nil {
				c.Close()
				return nil, err
			}
			rss = append(rss, kb/1024)
		}
		c.Close()
	}
	return &IdleFigures{RSSMiB: summarize(rss, "MiB"), CPUPercent: summarize(cpu, "%"), Window: o.Idle.String()}, nil
}

// saturated keeps a formed 3-node cluster running for o.Saturate while this
// process keeps every CPU busy, and counts the view changes that happened.
func saturated(ctx context.Context, o Options) (*SaturatedRun, error) {
	fmt.Fprintf(o.Log, "false-alarm run: %v with %d CPU burners\n", o.Saturate, runtime.NumCPU())
	c, err := startThree(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	base := map[uint32]uint64{}
	for _, id := range ids(3) {
		st, err := c.Status(ctx, id)
		if err != nil {
			return nil, err
		}
		base[id] = st.Engine.GetViewChanges()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 1 << 20 {
					x ^= i * x
				}
			}
		}()
	}
	select {
	case <-time.After(o.Saturate):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	res := &SaturatedRun{Duration: o.Saturate.String(), Burners: runtime.NumCPU()}
	for _, id := range ids(3) {
		st, err := c.Status(ctx, id)
		if err != nil {
			return nil, err
		}
		d := st.Engine.GetViewChanges() - base[id]
		res.ViewsPerAgent = append(res.ViewsPerAgent, d)
		res.FalseChanges = max(res.FalseChanges, d)
	}
	return res, ctx.Err()
}

// cpuSeconds reads user+system CPU time of pid from /proc.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may contain spaces) start after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func rssKiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

func host() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				h.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return h
}

// WriteFiles writes the report as dir/membership.md and dir/membership.json.
func (r *Report) WriteFiles(dir string) error {
	js, err := r.JSON()
	if err != nil {
		return err
	}
	return writeReport(dir, "membership", js, r.Markdown())
}
