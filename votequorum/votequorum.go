// Package votequorum is the Go client of Conclave's quorum service. It
// mirrors Corosync's libvotequorum call for call, so a program written
// against votequorum.h ports line by line, and a C library can later sit on
// this package:
//
//	votequorum_initialize   Initialize
//	votequorum_finalize     (*Handle).Finalize
//	votequorum_fd_get       (*Handle).Fd
//	votequorum_dispatch     (*Handle).Dispatch
//	votequorum_getinfo      (*Handle).GetInfo
//	votequorum_setexpected  (*Handle).SetExpected
//	votequorum_setvotes     (*Handle).SetVotes
//	votequorum_trackstart   (*Handle).TrackStart
//	votequorum_trackstop    (*Handle).TrackStop
//	votequorum_context_get  (*Handle).Context
//	votequorum_context_set  (*Handle).SetContext
//	votequorum_qdevice_*    (*Handle).Qdevice*
//
// Errors are cs.Error values with the cs_error_t numbers (match them with
// errors.Is); constants keep the C names' values (InfoQuorate = 2,
// NodestateMember = 1, ...). As in C, callbacks run only inside Dispatch,
// on the caller's goroutine; Fd becomes readable when one is queued.
//
// A handle is two connections to the local agent's socket, as a
// libvotequorum handle is libqb IPC (internal/ipc's local protocol, not
// gRPC): the calling goroutine writes each request and reads its reply on
// the first, and a goroutine of the handle reads the events (after
// TrackStart) from the second into the dispatch queue, in order. Events the
// agent sent before a reply (TrackStart's current state) are queued before
// the call returns.
package votequorum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/ipc"
)

// Flags of Info.Flags (VOTEQUORUM_INFO_*).
const (
	InfoTwoNode           = 1
	InfoQuorate           = 2
	InfoWaitForAll        = 4
	InfoLastManStanding   = 8
	InfoAutoTieBreaker    = 16
	InfoAllowDownscale    = 32
	InfoQdeviceRegistered = 64
	InfoQdeviceAlive      = 128
	InfoQdeviceCastVote   = 256
	InfoQdeviceMasterWins = 512
)

// Node states (VOTEQUORUM_NODESTATE_*).
const (
	NodestateMember  = 1
	NodestateDead    = 2
	NodestateLeaving = 3
)

// Quorum device constants (VOTEQUORUM_QDEVICE_*).
const (
	QdeviceNodeID             = 0     // GetInfo(0) is the local node; SetVotes(0, n) the device
	QdeviceMaxNameLen         = 255   // buffer size in C: names are 1..254 bytes
	QdeviceDefaultTimeout     = 10000 // ms
	QdeviceDefaultSyncTimeout = 30000 // ms
)

// Info is struct votequorum_info.
type Info struct {
	NodeID            uint32
	NodeState         uint32
	NodeVotes         uint32
	NodeExpectedVotes uint32
	HighestExpected   uint32
	TotalVotes        uint32
	Quorum            uint32
	Flags             uint32
	QdeviceVotes      uint32
	QdeviceName       string
}

// RingID is votequorum_ring_id_t: the representative node and the ring
// sequence of a membership. It prints as Corosync does, "1.1c".
type RingID struct {
	NodeID uint32
	Seq    uint64
}

func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// Node is one entry of the quorum callback's node list. Votes is a
// Conclave addition (the C struct has nodeid and state only).
type Node struct {
	NodeID uint32
	State  uint32 // NodestateMember, NodestateDead, NodestateLeaving; 0 for the device
	Votes  uint32
}

// Callbacks are votequorum_callbacks_t; nil members are not interested.
// context is the value given to TrackStart.
type Callbacks struct {
	// Quorum fires at the end of every membership change, whenever the
	// quorate state flips, and on TrackStart. nodes is every node this
	// agent knows (dead and leaving ones too), ascending, plus {0, 0} when
	// a quorum device is registered on this node.
	Quorum func(h *Handle, context uint64, quorate bool, ring RingID, nodes []Node)
	// Nodelist fires at the start of every membership change with the new
	// members.
	Nodelist func(h *Handle, context uint64, ring RingID, members []uint32)
	// ExpectedVotes fires when expected votes are raised by total votes or
	// set by SetExpected.
	ExpectedVotes func(h *Handle, context uint64, expected uint32)
}

// Option adjusts Initialize.
type Option func(*options)

type options struct {
	socket string
	ctx    context.Context
}

// WithSocket connects to the agent at path rather than $CONCLAVE_SOCKET or
// the default socket.
func WithSocket(path string) Option { return func(o *options) { o.socket = path } }

// WithContext bounds connecting (Initialize) by ctx.
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// Handle is a votequorum handle. Its methods may be called from several
// goroutines; callbacks run inside Dispatch.
type Handle struct {
	cb Callbacks

	callMu sync.Mutex // one request at a time, as libvotequorum's IPC
	req    *net.UnixConn
	rd     *ipc.FrameReader
	wbuf   []byte
	nextID uint64
	ev     *net.UnixConn // the event connection, read by readEvents

	mu        sync.Mutex
	seen      *sync.Cond    // on mu: evRead grew, or the event reader stopped, or Finalize
	evRead    atomic.Uint64 // events read from the event connection (written under mu)
	events    []*clientpb.VQEvent
	closed    bool
	err       error // why the connection to the agent ended
	ctxVal    any
	pr, pw    *os.File // one byte in the pipe per queued event: Fd
	wake      chan struct{}
	finalized chan struct{}
}

// Initialize connects to the local agent (votequorum_initialize). With no
// agent, or no quorum service configured in it, it fails with
// cs.ErrLibrary, as libvotequorum does.
func Initialize(cb *Callbacks, opts ...Option) (*Handle, error) {
	o := options{ctx: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	if cb == nil {
		return nil, cs.ErrInvalidParam
	}
	path := ipc.SocketPath(o.socket)
	// The request connection opens the session; the event connection
	// joins it by its id.
	var hello clientpb.VQMessage
	req, rd, err := ipc.DialLocal(o.ctx, path, &clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{Role: clientpb.VQHello_REQUESTS}}}, &hello)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cs.ErrLibrary, err)
	}
	id, err := helloAnswer(&hello)
	if err != nil {
		req.Close()
		return nil, err
	}
	ev, evrd, err := ipc.DialLocal(o.ctx, path, &clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{Role: clientpb.VQHello_EVENTS, Session: id}}}, &hello)
	if err != nil {
		req.Close()
		return nil, fmt.Errorf("%w: %v", cs.ErrLibrary, err)
	}
	if _, err := helloAnswer(&hello); err != nil {
		req.Close()
		ev.Close()
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		req.Close()
		ev.Close()
		return nil, fmt.Errorf("%w: %v", cs.ErrNoResources, err)
	}
	h := &Handle{cb: *cb, req: req, rd: rd, ev: ev,
		pr: pr, pw: pw, wake: make(chan struct{}, 1), finalized: make(chan struct{})}
	h.seen = sync.NewCond(&h.mu)
	go h.readEvents(evrd)
	return h, nil
}

// helloAnswer checks the agent's answer to a hello.
func helloAnswer(m *clientpb.VQMessage) (uint64, error) {
	h := m.GetHello()
	switch {
	case h == nil:
		return 0, fmt.Errorf("%w: the agent did not answer the hello", cs.ErrLibrary)
	case h.Error != "":
		return 0, fmt.Errorf("%w: %s", cs.ErrLibrary, h.Error)
	}
	return h.Session, nil
}

// readEvents reads the event connection into the dispatch queue.
func (h *Handle) readEvents(rd *ipc.FrameReader) {
	for {
		var m clientpb.VQMessage
		err := rd.Read(&m)
		if err == nil {
			switch b := m.Body.(type) {
			case *clientpb.VQMessage_Event:
				h.mu.Lock()
				h.events = append(h.events, b.Event)
				h.mu.Unlock()
				h.pw.Write([]byte{1}) // outside mu: a full pipe waits for Dispatch
				h.mu.Lock()
				h.evRead.Add(1)
				h.seen.Broadcast()
				h.mu.Unlock()
				h.signal()
				continue
			case *clientpb.VQMessage_Hello:
				if b.Hello.Error == "" {
					continue
				}
				err = agentSaid(b.Hello.Error)
			default:
				continue
			}
		}
		if errors.Is(err, io.EOF) && h.callMu.TryLock() {
			// The agent says why it ends a session on the request
			// connection (the event connection of a client cut off
			// for not reading is full): read it now if no call does.
			h.readBye()
			h.callMu.Unlock()
		}
		h.fail(err)
		return
	}
}

// readBye reads why the agent ended the session from the request
// connection, if it said so; under callMu.
func (h *Handle) readBye() {
	h.req.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var m clientpb.VQMessage
	if h.rd.Read(&m) == nil && m.GetHello().GetError() != "" {
		h.fail(agentSaid(m.GetHello().GetError()))
	}
}

// agentSaid is the reason the agent gave for ending the session.
type agentSaid string

func (e agentSaid) Error() string { return string(e) }

// fail records why the connection to the agent ended and wakes whoever
// waits on it. The first reason stays, but for the agent's own word over
// a bare end of connection.
func (h *Handle) fail(err error) {
	h.mu.Lock()
	var said agentSaid
	if h.err == nil || (errors.Is(h.err, io.EOF) && errors.As(err, &said)) {
		h.err = err
	}
	h.seen.Broadcast()
	h.mu.Unlock()
	h.signal()
}

// reason is h.err as callers see it; under mu.
func (h *Handle) reason() error {
	if errors.Is(h.err, io.EOF) {
		return errors.New("the agent closed the connection")
	}
	return h.err
}

func (h *Handle) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// call sends one request and reads its reply, on the caller's goroutine.
func (h *Handle) call(req *clientpb.VQRequest) (*clientpb.VQReply, error) {
	h.callMu.Lock()
	defer h.callMu.Unlock()
	h.mu.Lock()
	closed, broken := h.closed, h.reason()
	h.mu.Unlock()
	if closed {
		return nil, cs.ErrBadHandle
	}
	if broken != nil {
		return nil, fmt.Errorf("%w: %v", cs.ErrLibrary, broken)
	}
	h.nextID++
	req.Id = h.nextID
	b, err := ipc.AppendFrame(h.wbuf[:0], req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cs.ErrLibrary, err)
	}
	h.wbuf = b
	if _, err := h.req.Write(b); err != nil {
		h.readBye()
		return nil, h.brokenErr(err)
	}
	var r *clientpb.VQReply
	for r == nil {
		var m clientpb.VQMessage
		if err := h.rd.Read(&m); err != nil {
			return nil, h.brokenErr(err)
		}
		switch b := m.Body.(type) {
		case *clientpb.VQMessage_Reply:
			if b.Reply.Id == req.Id {
				r = b.Reply
			}
		case *clientpb.VQMessage_Hello: // the agent ends the session, saying why
			if b.Hello.Error != "" {
				return nil, h.brokenErr(agentSaid(b.Hello.Error))
			}
		}
	}
	// The events the agent sent before this reply are in the dispatch
	// queue before the call returns (TrackStart's current state).
	if h.evRead.Load() < r.LastEvent {
		h.mu.Lock()
		for h.evRead.Load() < r.LastEvent && h.err == nil && !h.closed {
			h.seen.Wait()
		}
		h.mu.Unlock()
		if h.evRead.Load() < r.LastEvent {
			return nil, h.brokenErr(nil)
		}
	}
	if e := cs.FromCode(r.Error); e != nil {
		return r, e
	}
	return r, nil
}

// brokenErr is the error of a call that lost the agent: cs.ErrBadHandle
// after Finalize, else cs.ErrLibrary with the first reason known.
func (h *Handle) brokenErr(err error) error {
	if err != nil {
		h.fail(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return cs.ErrBadHandle
	}
	return fmt.Errorf("%w: %v", cs.ErrLibrary, h.reason())
}

// Finalize closes the handle (votequorum_finalize). A registered quorum
// device stays registered and times out, as in Corosync. A second Finalize
// returns cs.ErrBadHandle.
func (h *Handle) Finalize() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return cs.ErrBadHandle
	}
	h.closed = true
	h.seen.Broadcast()
	h.mu.Unlock()
	close(h.finalized)
	h.req.Close()
	h.ev.Close()
	h.pw.Close()
	h.pr.Close()
	return nil
}

// Fd returns a file descriptor that is readable while events are queued
// for Dispatch (votequorum_fd_get); poll it, then Dispatch.
func (h *Handle) Fd() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return -1, cs.ErrBadHandle
	}
	return int(h.pr.Fd()), nil
}

// Dispatch runs callbacks for queued events (votequorum_dispatch):
// DispatchOne blocks for one event, DispatchAll runs what is queued,
// DispatchBlocking runs events until Finalize or an error,
// DispatchOneNonblocking runs at most one and returns cs.ErrTryAgain if
// none was queued. A lost agent connection ends it with cs.ErrLibrary.
func (h *Handle) Dispatch(flags cs.DispatchFlags) error {
	if flags < cs.DispatchOne || flags > cs.DispatchOneNonblocking {
		return cs.ErrInvalidParam
	}
	for {
		ev, err := h.next(flags == cs.DispatchOne || flags == cs.DispatchBlocking)
		if err != nil {
			return err
		}
		if ev == nil { // nothing queued and not blocking
			if flags == cs.DispatchOneNonblocking {
				return cs.ErrTryAgain
			}
			return nil
		}
		h.run(ev)
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return cs.ErrBadHandle // finalized inside the callback
		}
		if flags == cs.DispatchOne || flags == cs.DispatchOneNonblocking {
			return nil
		}
	}
}

// next takes the oldest queued event, waiting for one if block.
func (h *Handle) next(block bool) (*clientpb.VQEvent, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, cs.ErrBadHandle
		}
		if len(h.events) > 0 {
			ev := h.events[0]
			h.events = h.events[1:]
			h.mu.Unlock()
			var b [1]byte
			h.pr.Read(b[:]) // keep Fd readable exactly while events are queued
			return ev, nil
		}
		err := h.reason()
		h.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", cs.ErrLibrary, err)
		}
		if !block {
			return nil, nil
		}
		select {
		case <-h.wake:
		case <-h.finalized:
		}
	}
}

func (h *Handle) run(ev *clientpb.VQEvent) {
	ring := RingID{}
	if ev.RingId != nil {
		ring = RingID{NodeID: ev.RingId.Rep, Seq: ev.RingId.Seq}
	}
	switch ev.Kind {
	case clientpb.VQEvent_QUORUM:
		if h.cb.Quorum != nil {
			nodes := make([]Node, len(ev.Nodes))
			for i, n := range ev.Nodes {
				nodes[i] = Node{NodeID: n.NodeId, State: n.State, Votes: n.Votes}
			}
			h.cb.Quorum(h, ev.Context, ev.Quorate, ring, nodes)
		}
	case clientpb.VQEvent_NODELIST:
		if h.cb.Nodelist != nil {
			h.cb.Nodelist(h, ev.Context, ring, ev.Members)
		}
	case clientpb.VQEvent_EXPECTED_VOTES:
		if h.cb.ExpectedVotes != nil {
			h.cb.ExpectedVotes(h, ev.Context, ev.ExpectedVotes)
		}
	}
}

// GetInfo returns a node's quorum information (votequorum_getinfo); node 0
// is the local node. An unknown node is cs.ErrNotExist, with a zeroed Info
// (Corosync returns uninitialised memory there).
func (h *Handle) GetInfo(nodeid uint32) (Info, error) {
	r, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_GetInfo{GetInfo: &clientpb.VQGetInfo{NodeId: nodeid}}})
	if r == nil {
		return Info{}, err
	}
	return infoFrom(r.Info), err
}

func infoFrom(i *clientpb.VQInfo) Info {
	if i == nil {
		return Info{}
	}
	return Info{NodeID: i.NodeId, NodeState: i.NodeState, NodeVotes: i.NodeVotes, NodeExpectedVotes: i.NodeExpectedVotes,
		HighestExpected: i.HighestExpected, TotalVotes: i.TotalVotes, Quorum: i.Quorum, Flags: i.Flags,
		QdeviceVotes: i.QdeviceVotes, QdeviceName: i.QdeviceName}
}

// SetExpected sets the cluster's expected votes (votequorum_setexpected).
// cs.ErrInvalidParam when below the total votes, or when it would make a
// quorate cluster inquorate.
func (h *Handle) SetExpected(expected uint32) error {
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_SetExpected{SetExpected: &clientpb.VQSetExpected{ExpectedVotes: expected}}})
	return err
}

// SetVotes sets a node's votes (votequorum_setvotes). Node 0 is the quorum
// device, not the local node. cs.ErrNameNotFound for an unknown node.
func (h *Handle) SetVotes(nodeid, votes uint32) error {
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_SetVotes{SetVotes: &clientpb.VQSetVotes{NodeId: nodeid, Votes: votes}}})
	return err
}

// TrackStart asks for events (votequorum_trackstart): cs.TrackCurrent
// queues the current nodelist and quorum state once; cs.TrackChanges does
// that and then sends every change; cs.TrackChangesOnly only the changes.
// context comes back in every event. Tracking twice is cs.ErrExist (after
// the current state was queued, as Corosync does).
func (h *Handle) TrackStart(context uint64, flags uint32) error {
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_TrackStart{TrackStart: &clientpb.VQTrackStart{Context: context, Flags: flags}}})
	return err
}

// TrackStop stops events (votequorum_trackstop); cs.ErrNotExist if not
// tracking. Events already queued are still dispatched.
func (h *Handle) TrackStop() error {
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_TrackStop{TrackStop: &clientpb.VQTrackStop{}}})
	return err
}

// Context returns the value stored by SetContext (votequorum_context_get).
func (h *Handle) Context() (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, cs.ErrBadHandle
	}
	return h.ctxVal, nil
}

// SetContext stores a value in the handle (votequorum_context_set).
func (h *Handle) SetContext(v any) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return cs.ErrBadHandle
	}
	h.ctxVal = v
	return nil
}

// CancelWaitForAll clears the wait_for_all waiting state on every node (as
// setting quorum.cancel_wait_for_all in Corosync's cmap does).
func (h *Handle) CancelWaitForAll() error {
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_CancelWaitForAll{CancelWaitForAll: &clientpb.VQCancelWaitForAll{}}})
	return err
}

// checkName is libvotequorum's own check: 1..254 bytes.
func checkName(name string) error {
	if len(name) == 0 || len(name) >= QdeviceMaxNameLen {
		return cs.ErrInvalidParam
	}
	return nil
}

// QdeviceRegister registers this node's quorum device
// (votequorum_qdevice_register). The answer waits until the registration
// went round the cluster: cs.ErrExist if a device of another name is
// registered, cs.ErrAccess if the configuration forbids a device.
func (h *Handle) QdeviceRegister(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_QdeviceRegister{QdeviceRegister: &clientpb.VQQdeviceName{Name: name}}})
	return err
}

// QdeviceUnregister unregisters it (votequorum_qdevice_unregister).
func (h *Handle) QdeviceUnregister(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_QdeviceUnregister{QdeviceUnregister: &clientpb.VQQdeviceName{Name: name}}})
	return err
}

// QdeviceUpdate renames it (votequorum_qdevice_update).
func (h *Handle) QdeviceUpdate(oldName, newName string) error {
	if err := checkName(oldName); err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_QdeviceUpdate{QdeviceUpdate: &clientpb.VQQdeviceUpdate{OldName: oldName, NewName: newName}}})
	return err
}

// QdevicePoll tells the agent the device is alive and whether it casts its
// vote, for the membership ring (votequorum_qdevice_poll). A ring other than
// the latest nodelist callback's is cs.ErrMessageError and is ignored.
func (h *Handle) QdevicePoll(name string, castVote bool, ring RingID) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_QdevicePoll{QdevicePoll: &clientpb.VQQdevicePoll{
		Name: name, CastVote: castVote, RingId: &clientpb.RingID{Rep: ring.NodeID, Seq: ring.Seq}}}})
	return err
}

// QdeviceMasterWins sets the device's master_wins
// (votequorum_qdevice_master_wins).
func (h *Handle) QdeviceMasterWins(name string, allow bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_QdeviceMasterWins{QdeviceMasterWins: &clientpb.VQQdeviceMasterWins{Name: name, Allow: allow}}})
	return err
}

// Status is everything `conclave quorum status` shows, taken at one instant
// (a Conclave addition: corosync-quorumtool gathers it from several
// services).
func (h *Handle) Status() (*clientpb.VQStatus, error) {
	r, err := h.call(&clientpb.VQRequest{Body: &clientpb.VQRequest_Status{Status: &clientpb.VQStatusRequest{}}})
	if err != nil {
		return nil, err
	}
	return r.Status, nil
}

// Run dispatches events on a goroutine of its own until ctx ends or the
// handle fails; it is the idiomatic alternative to polling Fd. It returns
// nil when ctx ended, else the error that stopped it.
func (h *Handle) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { h.signal() })
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		ev, err := h.next(false)
		if err != nil {
			return err
		}
		if ev != nil {
			h.run(ev)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-h.finalized:
		}
	}
}
