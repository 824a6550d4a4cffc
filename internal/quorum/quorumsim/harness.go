// Package quorumsim runs the quorum service on the simulator: the quorum
// engine of every node hosted on its simulated membership engine, exactly as
// the agent hosts it, with a scripted quorum device client per node and the
// quorum invariants checked after every step. It backs the datadriven
// scenario scripts in testdata/ and the random-fault test.
package quorumsim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/quorum"
	"github.com/conclave/conclave/internal/service"
	"github.com/conclave/conclave/internal/sim"
)

// NodeID is a node number.
type NodeID = sim.NodeID

// DeviceName is the name every scripted quorum device registers with.
const DeviceName = "Qdevice"

// Harness hosts one quorum engine per simulated node.
type Harness struct {
	S      *sim.Sim
	Quorum config.Quorum // every node's quorum section
	Votes  map[NodeID]uint32
	// Lease turns the quorum lease on (the agent's default).
	Lease bool
	// NoNodelist runs the engines without a nodelist (expected_votes
	// alone), as a corosync.conf without one; the membership still knows
	// every node.
	NoNodelist bool

	engines  map[NodeID]*quorum.Engine
	barriers map[NodeID]uint32 // persisted ev_tracking, survives restarts
	devices  map[NodeID]*device
	events   map[NodeID][]quorum.Event
	err      error
}

// device is a scripted corosync-qdevice on one node: it registers, then
// polls every timeout/2 with the latest ring id it saw, casting its vote or
// not.
type device struct {
	registered bool // the registration went round the cluster
	cast       bool
	ring       quorum.RingID
	nextPoll   time.Time
	stopped    bool // polls no more (dead or told NACK and quiet)
}

// New builds the harness's simulator options: the caller sets nodes, seed
// and timing in o; New fills in the services and the invariant.
func New(o *sim.Options, q config.Quorum, lease bool) *Harness {
	h := &Harness{Quorum: q, Lease: lease, Votes: map[NodeID]uint32{}, engines: map[NodeID]*quorum.Engine{},
		barriers: map[NodeID]uint32{}, devices: map[NodeID]*device{}, events: map[NodeID][]quorum.Event{}}
	o.Services = h.services
	o.Invariant = h.invariant
	return h
}

func (h *Harness) services(n *sim.Node) []service.Service {
	var nodes []quorum.NodeVotes
	for i := range len(h.S.Nodes()) {
		id := NodeID(i + 1)
		v := uint32(1)
		if x, ok := h.Votes[id]; ok {
			v = x
		}
		nodes = append(nodes, quorum.NodeVotes{ID: id, Votes: v})
	}
	if h.NoNodelist {
		nodes = nil
	}
	cfg := quorum.Config{Self: n.ID, Nodes: nodes, Quorum: h.Quorum, Path: "sim.conf", EVBarrier: h.barriers[n.ID]}
	if h.Lease {
		cfg.Leases = n.Eng
	}
	e, err := quorum.New(cfg)
	if err != nil {
		h.fail(fmt.Errorf("node %d: %w", n.ID, err))
		return nil
	}
	h.engines[n.ID] = e
	delete(h.devices, n.ID) // a restarted node's device client starts over
	return []service.Service{e}
}

func (h *Harness) fail(err error) {
	if h.err == nil {
		h.err = err
	}
}

// Engine returns node id's running engine (nil when down).
func (h *Harness) Engine(id NodeID) *quorum.Engine {
	if !h.S.Node(id).Up {
		return nil
	}
	return h.engines[id]
}

// invariant drains every engine's client output after each step, runs the
// scripted devices, and checks that no two partitions claim quorum at once.
func (h *Harness) invariant(s *sim.Sim) error {
	for _, n := range s.Nodes() {
		e := h.Engine(n.ID)
		if e == nil || n.Paused {
			continue
		}
		r := e.Ready()
		if r.PersistBarrier != 0 {
			if r.PersistBarrier < h.barriers[n.ID] {
				return fmt.Errorf("node %d lowered its ev_tracking barrier from %d to %d", n.ID, h.barriers[n.ID], r.PersistBarrier)
			}
			h.barriers[n.ID] = r.PersistBarrier
		}
		for _, ev := range r.Events {
			if ev.Kind == quorum.EventNodelist {
				if d := h.devices[n.ID]; d != nil {
					d.ring, d.nextPoll = ev.Ring, s.Now() // poll the new ring at once
				}
			}
		}
		for _, rep := range r.Replies {
			if d := h.devices[n.ID]; d != nil && rep.Token == uint64(n.ID) {
				if rep.Err != nil {
					h.fail(fmt.Errorf("node %d: device registration: %w", n.ID, rep.Err))
				}
				d.registered = true
			}
		}
		h.events[n.ID] = append(h.events[n.ID], r.Events...)
		h.pollDevice(n.ID, e, s.Now())
	}
	if h.err != nil {
		return h.err
	}
	return nil
}

func (h *Harness) pollDevice(id NodeID, e *quorum.Engine, now time.Time) {
	d := h.devices[id]
	if d == nil || !d.registered || d.stopped || now.Before(d.nextPoll) {
		return
	}
	timeout := quorum.DefaultQdeviceTimeout
	if dv := h.Quorum.Device; dv != nil && dv.Timeout != nil {
		timeout = *dv.Timeout
	}
	d.nextPoll = now.Add(timeout / 2)
	// A poll with a ring the node has moved past is refused, as
	// corosync-qdevice tolerates; the next nodelist event brings the new one.
	err := e.QdevicePoll(now, DeviceName, d.cast, d.ring)
	if err != nil && !errors.Is(err, cs.ErrMessageError) {
		h.fail(fmt.Errorf("node %d: device poll: %w", id, err))
	}
	h.S.Poke(id)
}

// QuorateViolation reports two nodes that both say "quorate" although one's
// view excludes the other and is the newer or they exclude each other:
// two partitions acting at once. Only meaningful for option sets Corosync
// calls safe (not two_node, which relies on fencing).
func (h *Harness) QuorateViolation() error {
	type claim struct {
		id      NodeID
		ring    quorum.RingID
		members []NodeID
	}
	var claims []claim
	for _, n := range h.S.Nodes() {
		e := h.Engine(n.ID)
		if e == nil || n.Paused {
			continue
		}
		st := e.Status(h.S.Now())
		if st.Quorate {
			claims = append(claims, claim{n.ID, st.Ring, st.Members})
		}
	}
	for _, a := range claims {
		for _, b := range claims {
			if a.ring == b.ring || slices.Contains(b.members, a.id) {
				continue
			}
			// b's view excludes a: fine only if a's view holds b and is
			// the newer (b has not caught up with a merge yet).
			if slices.Contains(a.members, b.id) && a.ring.Seq > b.ring.Seq {
				continue
			}
			return fmt.Errorf("split brain at %v: node %d quorate in ring %s %v, node %d quorate in ring %s %v",
				h.S.Elapsed(), a.id, a.ring, a.members, b.id, b.ring, b.members)
		}
	}
	return nil
}

// Run executes the quorum commands of a script:
//
// Each request runs the simulation for 50ms, so its broadcast is delivered.
//
//	expected N [on ID]         SetExpected from node ID (default 1)
//	votes ID N [on ID]         SetVotes
//	cancel-wfa [on ID]         CancelWaitForAll
//	qdevice on ID... [novote]  start the device client (register, poll casting its vote or not)
//	qdevice off ID...          stop its polls (it times out; stays registered)
//	qdevice unregister ID...   unregister it
//	getinfo                    every up node's getinfo(0), nodes with equal state on one line
//	events ID                  node ID's quorum callbacks since the last call
func (h *Harness) Run(cmd string, args []string) (string, bool, error) {
	on := NodeID(1)
	if i := slices.Index(args, "on"); cmd != "qdevice" && i >= 0 && i+1 < len(args) {
		v, err := strconv.Atoi(args[i+1])
		if err != nil {
			return "", true, fmt.Errorf("bad node id %q", args[i+1])
		}
		on, args = NodeID(v), args[:i]
	}
	num := func(s string) (uint32, error) {
		v, err := strconv.ParseUint(s, 10, 32)
		return uint32(v), err
	}
	e := h.Engine(on)
	now := h.S.Now()
	// A request's broadcast takes a moment to reach everyone; run the
	// simulation briefly so the next command sees its effect.
	const settle = 50 * time.Millisecond
	result := func(err error) (string, bool, error) {
		if rerr := h.S.RunFor(settle); rerr != nil {
			return "", true, rerr
		}
		if err != nil {
			return fmt.Sprintf("error: %v\n", err), true, nil
		}
		return "", true, nil
	}
	switch cmd {
	case "expected", "votes", "cancel-wfa":
		if e == nil {
			return "", true, fmt.Errorf("node %d is down", on)
		}
		switch cmd {
		case "expected":
			if len(args) != 1 {
				return "", true, fmt.Errorf("expected N [on ID]")
			}
			n, err := num(args[0])
			if err != nil {
				return "", true, err
			}
			return result(h.kick(on, e.SetExpected(now, n)))
		case "votes":
			if len(args) != 2 {
				return "", true, fmt.Errorf("votes ID N [on ID]")
			}
			id, err1 := num(args[0])
			n, err2 := num(args[1])
			if err1 != nil || err2 != nil {
				return "", true, fmt.Errorf("bad arguments %v", args)
			}
			return result(h.kick(on, e.SetVotes(now, id, n)))
		default:
			return result(h.kick(on, e.CancelWaitForAll(now)))
		}
	case "qdevice":
		if len(args) < 2 {
			return "", true, fmt.Errorf("qdevice on|off|unregister ID...")
		}
		novote := slices.Contains(args, "novote")
		args = slices.DeleteFunc(slices.Clone(args), func(s string) bool { return s == "novote" })
		var out strings.Builder
		for _, a := range args[1:] {
			v, err := strconv.Atoi(a)
			if err != nil {
				return "", true, fmt.Errorf("bad node id %q", a)
			}
			id := NodeID(v)
			e := h.Engine(id)
			if e == nil {
				return "", true, fmt.Errorf("node %d is down", id)
			}
			switch args[0] {
			case "on":
				if h.devices[id] == nil {
					pending, err := e.QdeviceRegister(now, DeviceName, uint64(id))
					if err != nil {
						fmt.Fprintf(&out, "node %d: register: %v\n", id, err)
						continue
					}
					st := e.Status(now)
					h.devices[id] = &device{ring: st.Ring, registered: !pending}
				}
				d := h.devices[id]
				d.cast, d.stopped, d.nextPoll = !novote, false, now
			case "off":
				if d := h.devices[id]; d != nil {
					d.stopped = true
				}
			case "unregister":
				if err := e.QdeviceUnregister(now, DeviceName); err != nil {
					fmt.Fprintf(&out, "node %d: unregister: %v\n", id, err)
				}
				delete(h.devices, id)
			default:
				return "", true, fmt.Errorf("qdevice on|off|unregister ID...")
			}
			h.kick(id, nil)
		}
		if err := h.S.RunFor(settle); err != nil {
			return "", true, err
		}
		return out.String(), true, h.err
	case "getinfo":
		return h.getinfo(), true, h.err
	case "events":
		if len(args) != 1 {
			return "", true, fmt.Errorf("events ID")
		}
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return "", true, err
		}
		var b strings.Builder
		for _, ev := range h.events[NodeID(v)] {
			switch ev.Kind {
			case quorum.EventQuorum:
				fmt.Fprintf(&b, "quorum quorate=%v ring=%s nodes=%v\n", ev.Quorate, ev.Ring, ev.Nodes)
			case quorum.EventNodelist:
				fmt.Fprintf(&b, "nodelist ring=%s members=%v\n", ev.Ring, ev.Members)
			case quorum.EventExpected:
				fmt.Fprintf(&b, "expected %d\n", ev.Expected)
			}
		}
		h.events[NodeID(v)] = nil
		return b.String(), true, nil
	}
	return "", false, nil
}

// kick makes the host send what a local request queued, as the agent does
// after every request.
func (h *Harness) kick(id NodeID, err error) error {
	h.S.Poke(id)
	return err
}

// getinfo prints every up node's getinfo(0) in the spec's table columns.
func (h *Harness) getinfo() string {
	type row struct {
		ids  []string
		line string
	}
	var rows []row
	for _, n := range h.S.Nodes() {
		e := h.Engine(n.ID)
		if e == nil {
			continue
		}
		now := h.S.Now()
		info, err := e.GetInfo(now, 0)
		if err != nil {
			h.fail(fmt.Errorf("node %d: getinfo: %w", n.ID, err))
			continue
		}
		st := e.Status(now)
		wfa := "-"
		if info.Flags&quorum.InfoWaitForAll != 0 {
			wfa = strconv.Itoa(b2i(st.WaitForAllStatus))
		}
		line := fmt.Sprintf("quorate=%d expected=%d highest=%d total=%d quorum=%d flags=%#x wfa=%s members=%v",
			b2i(info.Flags&quorum.InfoQuorate != 0), info.NodeExpectedVotes, info.HighestExpected, info.TotalVotes,
			info.Quorum, info.Flags, wfa, st.Members)
		if i := slices.IndexFunc(rows, func(r row) bool { return r.line == line }); i >= 0 {
			rows[i].ids = append(rows[i].ids, strconv.Itoa(int(n.ID)))
		} else {
			rows = append(rows, row{[]string{strconv.Itoa(int(n.ID))}, line})
		}
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "node %s: %s\n", strings.Join(r.ids, ","), r.line)
	}
	return b.String()
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
