package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/internal/membership"
)

// Script runs scenario commands against a simulation, in the vocabulary of
// corosync-vqsim (up / down / split / join / heal / tick / send) and a few
// more, and returns what each prints. It backs the datadriven golden tests
// in testdata/ and can drive other services' scenario tests.
//
//	cluster nodes=N [links=L] [seed=S] [token=D] [join=D] [consensus=D] [tick=D]
//	up ID...          start agents (a restart keeps what the node persisted); ID may be A..B
//	down ID...        kill agents; their hosts stay up, so peers see the port close
//	halt ID...        hosts vanish silently (power off)
//	stop ID...        graceful leave
//	pause ID... / resume ID...
//	split A B | C D   partition (nodes not named form one more group)
//	join A B          merge the partitions of A and B
//	heal              no partitions, blocks or downed links
//	block A>B / unblock A>B      drop packets from A to B only
//	linkdown ID L / linkup ID L
//	net loss=P dup=P latency=D jitter=D
//	tick D            advance virtual time
//	settle [max=D] [quiet=D]  run until every up node is operational and no view
//	                  changed for quiet (default 2*token)
//	send ID TEXT      broadcast TEXT from ID
//	views             print each node's view
//	summary           print how many nodes are in each view
//	deliveries        print what each node delivered since the last call
//	links ID          print ID's link state per peer
type Script struct {
	// Configure, if set, adjusts the options of the cluster command (to
	// host services, say); kv holds the command's key=value arguments.
	Configure func(o *Options, kv map[string]string) error
	// Extra, if set, runs commands the script does not know (a service's
	// own vocabulary); handled=false means unknown to it too.
	Extra func(cmd string, args []string) (out string, handled bool, err error)

	S          *Sim
	token      time.Duration
	lastView   time.Time
	settleFrom time.Time
	quiet      time.Duration
	delivered  map[NodeID][]string
	events     []string
}

// Run executes one command and returns its output.
func (sc *Script) Run(cmd string, args []string) (string, error) {
	if cmd != "cluster" && sc.S == nil {
		return "", fmt.Errorf("the first command must be cluster")
	}
	ids := func() ([]NodeID, error) {
		var out []NodeID
		for _, a := range args {
			v, err := strconv.Atoi(a)
			if err != nil || v < 1 || (sc.S != nil && v > len(sc.S.Nodes())) {
				return nil, fmt.Errorf("bad node id %q", a)
			}
			out = append(out, NodeID(v))
		}
		return out, nil
	}
	switch cmd {
	case "cluster":
		return "", sc.cluster(args)
	case "up", "down", "halt", "stop", "pause", "resume":
		list, err := ids()
		if len(args) == 1 && strings.Contains(args[0], "..") {
			list, err = idRange(args[0], len(sc.S.Nodes()))
		}
		if err != nil {
			return "", err
		}
		for _, id := range list {
			switch cmd {
			case "up":
				err = sc.S.Up(id)
			case "down":
				sc.S.Down(id)
			case "halt":
				sc.S.Halt(id)
			case "stop":
				sc.S.Stop(id)
			case "pause":
				sc.S.Pause(id)
			case "resume":
				sc.S.Resume(id)
			}
			if err != nil {
				return "", err
			}
		}
		return sc.flushEvents(), sc.S.Check.Err()
	case "split":
		var groups [][]NodeID
		var cur []NodeID
		for _, a := range args {
			if a == "|" {
				groups, cur = append(groups, cur), nil
				continue
			}
			v, err := strconv.Atoi(a)
			if err != nil || v < 1 || v > len(sc.S.Nodes()) {
				return "", fmt.Errorf("bad node id %q", a)
			}
			cur = append(cur, NodeID(v))
		}
		sc.S.Split(append(groups, cur)...)
		return "", nil
	case "join":
		list, err := ids()
		if err != nil || len(list) != 2 {
			return "", fmt.Errorf("join takes two node ids")
		}
		sc.S.Join(list[0], list[1])
		return "", nil
	case "heal":
		sc.S.Heal()
		return "", nil
	case "block", "unblock":
		for _, a := range args {
			from, to, ok := strings.Cut(a, ">")
			f, err1 := strconv.Atoi(from)
			t, err2 := strconv.Atoi(to)
			if !ok || err1 != nil || err2 != nil {
				return "", fmt.Errorf("bad link %q: want A>B", a)
			}
			if cmd == "block" {
				sc.S.Block(NodeID(f), NodeID(t))
			} else {
				sc.S.Unblock(NodeID(f), NodeID(t))
			}
		}
		return "", nil
	case "linkdown", "linkup":
		if len(args) != 2 {
			return "", fmt.Errorf("%s takes a node id and a link number", cmd)
		}
		id, err1 := strconv.Atoi(args[0])
		l, err2 := strconv.Atoi(args[1])
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("bad arguments %v", args)
		}
		if cmd == "linkdown" {
			sc.S.LinkDown(NodeID(id), l)
		} else {
			sc.S.LinkUp(NodeID(id), l)
		}
		return "", nil
	case "net":
		kv, err := keyValues(args)
		if err != nil {
			return "", err
		}
		loss, dup := floatOr(kv["loss"], 0), floatOr(kv["dup"], 0)
		lat, err := durOr(kv["latency"], sc.S.opts.Latency)
		if err != nil {
			return "", err
		}
		jit, err := durOr(kv["jitter"], 0)
		if err != nil {
			return "", err
		}
		sc.S.SetNet(loss, dup, lat, jit)
		return "", nil
	case "tick":
		if len(args) != 1 {
			return "", fmt.Errorf("tick takes a duration")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return "", err
		}
		err = sc.S.RunFor(d)
		return sc.flushEvents(), err
	case "settle":
		kv, err := keyValues(args)
		if err != nil {
			return "", err
		}
		limit, err := durOr(kv["max"], 60*time.Second)
		if err != nil {
			return "", err
		}
		if sc.quiet, err = durOr(kv["quiet"], 2*sc.token); err != nil {
			return "", err
		}
		start := sc.S.Elapsed()
		sc.settleFrom = sc.S.now
		ok, err := sc.S.RunUntil(limit, sc.settled)
		if err != nil {
			return "", err
		}
		out := sc.flushEvents()
		if !ok {
			return out + fmt.Sprintf("NOT settled within %v\n", limit) + sc.views(), nil
		}
		// the quiet period is part of the definition, not of the change
		if !sc.lastView.After(sc.settleFrom) {
			return out + "settled: no view change\n", nil
		}
		took := sc.lastView.Sub(Epoch) - start
		return out + fmt.Sprintf("settled: last view change %v after the command\n", took.Round(time.Millisecond)), nil
	case "send":
		if len(args) < 2 {
			return "", fmt.Errorf("send takes a node id and text")
		}
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return "", fmt.Errorf("bad node id %q", args[0])
		}
		_, err = sc.S.Send(NodeID(v), strings.Join(args[1:], " "))
		return "", err
	case "views":
		return sc.views(), nil
	case "summary":
		return sc.summary(), nil
	case "deliveries":
		return sc.deliveries(), nil
	case "links":
		list, err := ids()
		if err != nil || len(list) != 1 {
			return "", fmt.Errorf("links takes one node id")
		}
		return sc.links(list[0]), nil
	}
	if sc.Extra != nil {
		if out, ok, err := sc.Extra(cmd, args); ok {
			return out, err
		}
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func (sc *Script) cluster(args []string) error {
	kv, err := keyValues(args)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(kv["nodes"])
	if err != nil || n < 1 {
		return fmt.Errorf("cluster needs nodes=N")
	}
	o := Options{Nodes: n, Links: 1, Seed: 1}
	if v := kv["links"]; v != "" {
		o.Links, _ = strconv.Atoi(v)
	}
	if v := kv["seed"]; v != "" {
		o.Seed, _ = strconv.ParseUint(v, 10, 64)
	}
	for key, dst := range map[string]*time.Duration{"token": &o.Token, "join": &o.Join, "consensus": &o.Consensus, "tick": &o.Tick, "heartbeat": &o.Heartbeat} {
		if v := kv[key]; v != "" {
			if *dst, err = time.ParseDuration(v); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	o.SyncMessages = kv["sync"] == "true"
	if sc.Configure != nil {
		if err := sc.Configure(&o, kv); err != nil {
			return err
		}
	}
	sc.S = New(o)
	sc.token = o.Token
	if sc.token == 0 {
		sc.token = membership.DefaultToken
	}
	sc.delivered = map[NodeID][]string{}
	sc.S.observe = sc.observe
	return nil
}

func (sc *Script) observe(n *Node, ev membership.Event) {
	switch ev.Kind {
	case membership.EventNodelist:
		sc.lastView = sc.S.now
		sc.events = append(sc.events, fmt.Sprintf("%v: node %d: view %s %v", sc.S.Elapsed().Round(time.Millisecond), n.ID, ev.Ring, ev.Members))
	case membership.EventHeldOut:
		sc.events = append(sc.events, fmt.Sprintf("%v: node %d: holds node %d out until +%v", sc.S.Elapsed().Round(time.Millisecond), n.ID, ev.Node, ev.Until.Sub(Epoch).Round(time.Millisecond)))
	case membership.EventDeliver:
		if !ev.Sync && !ev.Repeat {
			sc.delivered[n.ID] = append(sc.delivered[n.ID], fmt.Sprintf("%d:%s", ev.From, ev.Payload))
		}
	}
}

// flushEvents prints view changes since the last command, when the scenario
// is small enough to read them.
func (sc *Script) flushEvents() string {
	ev := sc.events
	sc.events = nil
	if len(ev) == 0 || len(sc.S.Nodes()) > 16 {
		return ""
	}
	return strings.Join(ev, "\n") + "\n"
}

func (sc *Script) settled() bool {
	for _, n := range sc.S.Nodes() {
		if n.Up && (n.Paused || n.Eng.State() != membership.StateOperational) {
			return false
		}
	}
	quiet := sc.lastView
	if sc.settleFrom.After(quiet) {
		quiet = sc.settleFrom
	}
	return sc.S.now.Sub(quiet) >= sc.quiet
}

func (sc *Script) views() string {
	var b strings.Builder
	for _, n := range sc.S.Nodes() {
		switch {
		case !n.Up:
			fmt.Fprintf(&b, "%d: down\n", n.ID)
		default:
			r, m := n.Eng.Ring()
			p := ""
			if n.Paused {
				p = " (paused)"
			}
			fmt.Fprintf(&b, "%d: %s ring %s %v%s\n", n.ID, n.Eng.State(), r, m, p)
		}
	}
	return b.String()
}

func (sc *Script) summary() string {
	count := map[string]int{}
	var keys []string
	for _, n := range sc.S.Nodes() {
		k := "down"
		if n.Up {
			r, m := n.Eng.Ring()
			k = fmt.Sprintf("%s ring %s, %d members", n.Eng.State(), r, len(m))
		}
		if count[k] == 0 {
			keys = append(keys, k)
		}
		count[k]++
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d nodes: %s\n", count[k], k)
	}
	return b.String()
}

func (sc *Script) deliveries() string {
	var b strings.Builder
	for _, n := range sc.S.Nodes() {
		if d := sc.delivered[n.ID]; len(d) > 0 {
			fmt.Fprintf(&b, "%d: %s\n", n.ID, strings.Join(d, " "))
		}
	}
	sc.delivered = map[NodeID][]string{}
	return b.String()
}

func (sc *Script) links(id NodeID) string {
	n := sc.S.Node(id)
	if !n.Up {
		return "down\n"
	}
	var b strings.Builder
	for _, p := range n.Eng.Status().Peers {
		fmt.Fprintf(&b, "peer %d:", p.Node)
		for _, l := range p.Links {
			st := "down"
			if l.Up {
				st = "up"
			}
			fmt.Fprintf(&b, " link%d=%s", l.Link, st)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func keyValues(args []string) (map[string]string, error) {
	kv := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("want key=value, got %q", a)
		}
		kv[k] = v
	}
	return kv, nil
}

func floatOr(s string, d float64) float64 {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v
	}
	return d
}

func durOr(s string, d time.Duration) (time.Duration, error) {
	if s == "" {
		return d, nil
	}
	return time.ParseDuration(s)
}

// idRange parses "A..B".
func idRange(s string, n int) ([]NodeID, error) {
	a, b, _ := strings.Cut(s, "..")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo < 1 || hi > n || lo > hi {
		return nil, fmt.Errorf("bad node range %q", s)
	}
	var out []NodeID
	for i := lo; i <= hi; i++ {
		out = append(out, NodeID(i))
	}
	return out, nil
}
