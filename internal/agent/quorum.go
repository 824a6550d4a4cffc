package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/membership"
	"github.com/conclave/conclave/internal/quorum"
)

// evFile holds the expected_votes_tracking barrier (Corosync's
// <state_dir>/ev_tracking).
const evFile = "ev_tracking"

// newQuorum builds the quorum service when the configuration asks for
// votequorum, as corosync loads it only with quorum.provider set.
func (a *Agent) newQuorum() (*quorum.Engine, error) {
	if a.cfg.Quorum.Provider != config.QuorumProvider {
		return nil, nil
	}
	barrier, err := a.store.readUint(evFile)
	if err != nil {
		return nil, err
	}
	var nodes []quorum.NodeVotes
	for _, n := range a.cfg.Nodes {
		nodes = append(nodes, quorum.NodeVotes{ID: membership.NodeID(n.ID), Votes: n.QuorumVotes})
	}
	qc := quorum.Config{
		Self: membership.NodeID(a.self.ID), Nodes: nodes, Quorum: a.cfg.Quorum, Path: a.cfg.Path,
		EVBarrier: uint32(barrier), LeaseTimeout: a.cfg.Totem.EffectiveToken(len(a.cfg.Nodes)),
	}
	if a.cfg.Quorum.Lease == nil || *a.cfg.Quorum.Lease {
		qc.Leases = a.eng
	}
	q, err := quorum.New(qc)
	if err != nil {
		return nil, err
	}
	for _, w := range q.Warnings() {
		a.log.Warn("quorum: " + w)
	}
	return q, nil
}

// vqSession is one votequorum handle, over gRPC (Session) or over the local
// transport (vqLocal); local is set for the latter.
//
// Over gRPC its replies and events go out in order through out: whoever
// holds sendMu takes messages off out and sends them, so they leave in the
// order they were queued: the goroutine that served a request sends its
// reply itself, and the writer goroutine sends what arrives in between
// (events).
type vqSession struct {
	gone     chan struct{} // closed, with reason set, when the session ends
	reason   error
	tracking bool
	context  uint64

	out    chan *clientpb.VQMessage
	wake   chan struct{} // something was queued
	sendMu sync.Mutex
	stream clientpb.Votequorum_SessionServer

	local *vqLocalSession
}

// vqLocalSession is the local transport's side of a session: events go to
// the event connection's writer through events, numbered by seq; the reply
// to the request being served goes to the request connection's goroutine
// through replies.
type vqLocalSession struct {
	uid     uint32                   // the event connection must come from the same user
	events  chan *clientpb.VQMessage // bounded: a client that stops reading is cut off
	seq     uint64                   // events queued so far (under the agent's lock)
	replies chan *clientpb.VQReply   // one request is served at a time
}

// end cuts the session off; under the agent's lock.
func (s *vqSession) end(reason error) {
	if s.reason == nil {
		s.reason = reason
		close(s.gone)
	}
}

// flush sends everything queued, in order.
func (s *vqSession) flush() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for {
		select {
		case m := <-s.out:
			if err := s.stream.Send(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// vqPending is a QdeviceRegister waiting for its registration to go round
// the cluster.
type vqPending struct {
	sess *vqSession
	id   uint64
}

// send queues an event (or, over gRPC, a reply) under the agent's lock; a
// client whose queue is full is cut off.
func (s *vqSession) send(m *clientpb.VQMessage) {
	if s.reason != nil {
		return
	}
	if l := s.local; l != nil {
		select {
		case l.events <- m:
			l.seq++
		default:
			s.end(ErrSlowClient)
		}
		return
	}
	select {
	case s.out <- m:
		select {
		case s.wake <- struct{}{}:
		default:
		}
	default:
		s.end(ErrSlowClient)
	}
}

func (s *vqSession) reply(id uint64, err error, fill func(*clientpb.VQReply)) {
	r := &clientpb.VQReply{Id: id, Error: int32(cs.Code(err))}
	if fill != nil {
		fill(r)
	}
	if l := s.local; l != nil {
		if s.reason == nil {
			r.LastEvent = l.seq
			select {
			case l.replies <- r:
			default: // a second reply for one request: cannot happen
			}
		}
		return
	}
	s.send(&clientpb.VQMessage{Body: &clientpb.VQMessage_Reply{Reply: r}})
}

// quorumOutput acts on the quorum engine's output: the expected-votes
// barrier is made durable before anything else is said, then events go to
// the trackers and deferred replies to their callers.
func (a *Agent) quorumOutput() error {
	if a.q == nil {
		return nil
	}
	r := a.q.Ready()
	if r.PersistBarrier != 0 {
		if err := a.store.writeUint(evFile, uint64(r.PersistBarrier)); err != nil {
			return fmt.Errorf("persisting the expected votes barrier %d: %w", r.PersistBarrier, err)
		}
	}
	for _, l := range r.Logs {
		a.log.Log(context.Background(), l.Level, "quorum: "+l.Msg)
	}
	now := time.Now()
	for _, ev := range r.Events {
		for _, s := range a.vqSessions {
			if s.tracking {
				s.send(eventMsg(ev, s.context, now))
			}
		}
	}
	for _, rep := range r.Replies {
		if p, ok := a.vqPending[rep.Token]; ok {
			delete(a.vqPending, rep.Token)
			p.sess.reply(p.id, rep.Err, nil)
		}
	}
	a.vqSessions = slices.DeleteFunc(a.vqSessions, func(s *vqSession) bool { return s.reason != nil })
	return nil
}

func eventMsg(ev quorum.Event, ctx uint64, now time.Time) *clientpb.VQMessage {
	e := &clientpb.VQEvent{Context: ctx, UnixNano: now.UnixNano(), RingId: ringPB(ev.Ring)}
	switch ev.Kind {
	case quorum.EventQuorum:
		e.Kind, e.Quorate = clientpb.VQEvent_QUORUM, ev.Quorate
		for _, n := range ev.Nodes {
			e.Nodes = append(e.Nodes, &clientpb.VQNode{NodeId: uint32(n.ID), State: n.State, Votes: n.Votes})
		}
	case quorum.EventNodelist:
		e.Kind, e.Members = clientpb.VQEvent_NODELIST, ids32(ev.Members)
	case quorum.EventExpected:
		e.Kind, e.ExpectedVotes, e.RingId = clientpb.VQEvent_EXPECTED_VOTES, ev.Expected, nil
	}
	return &clientpb.VQMessage{Body: &clientpb.VQMessage_Event{Event: e}}
}

// vqQueue is how many messages a handle may have waiting before the agent
// cuts it off (ErrSlowClient).
const vqQueue = 4096

func (a *Agent) vqNotConfigured() string {
	return "quorum is not configured: set quorum.provider to corosync_votequorum in " + a.cfg.Path
}

// vqServer serves the votequorum API over gRPC; vqLocal (below)
// over the local transport.
type vqServer struct {
	clientpb.UnimplementedVotequorumServer
	a *Agent
}

func (v *vqServer) Session(stream clientpb.Votequorum_SessionServer) error {
	a := v.a
	if a.q == nil {
		return status.Error(codes.FailedPrecondition, a.vqNotConfigured())
	}
	ctx := stream.Context()
	sess := &vqSession{out: make(chan *clientpb.VQMessage, vqQueue), wake: make(chan struct{}, 1), gone: make(chan struct{}), stream: stream}
	a.mu.Lock()
	a.vqSessions = append(a.vqSessions, sess)
	a.mu.Unlock()
	defer a.dropSession(sess)
	// The writer sends what is queued while no request is being served;
	// the reader serves requests and sends their replies itself. This
	// goroutine ends the stream when either fails or the client is cut
	// off (a client that stops reading must not hold the agent).
	done := make(chan error, 2)
	go func() {
		for {
			select {
			case <-sess.wake:
				if err := sess.flush(); err != nil {
					done <- err
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
			a.mu.Lock()
			if a.stopped || a.failure != nil {
				a.mu.Unlock()
				done <- status.Error(codes.Unavailable, "agent stopping")
				return
			}
			if a.vqRequest(sess, req) {
				a.unlockAfter()
			} else {
				a.mu.Unlock()
			}
			if err := sess.flush(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-sess.gone:
		return status.Error(codes.Unavailable, ErrSlowClient.Error())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Agent) dropSession(s *vqSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vqSessions = slices.DeleteFunc(a.vqSessions, func(x *vqSession) bool { return x == s })
	for tok, p := range a.vqPending {
		if p.sess == s {
			delete(a.vqPending, tok)
		}
	}
}

// vqRequest serves one request under the lock; it says whether the engine
// may have output to act on.
func (a *Agent) vqRequest(s *vqSession, req *clientpb.VQRequest) bool {
	now := time.Now()
	q := a.q
	switch b := req.Body.(type) {
	case *clientpb.VQRequest_GetInfo:
		info, err := q.GetInfo(now, b.GetInfo.NodeId)
		s.reply(req.Id, err, func(r *clientpb.VQReply) { r.Info = infoPB(info) })
		return false
	case *clientpb.VQRequest_SetExpected:
		s.reply(req.Id, q.SetExpected(now, b.SetExpected.ExpectedVotes), nil)
	case *clientpb.VQRequest_SetVotes:
		s.reply(req.Id, q.SetVotes(now, b.SetVotes.NodeId, b.SetVotes.Votes), nil)
	case *clientpb.VQRequest_CancelWaitForAll:
		s.reply(req.Id, q.CancelWaitForAll(now), nil)
	case *clientpb.VQRequest_TrackStart:
		t := b.TrackStart
		if t.Flags&(cs.TrackCurrent|cs.TrackChanges) != 0 {
			nl, qe := q.Snapshot(now)
			s.send(eventMsg(nl, t.Context, now))
			s.send(eventMsg(qe, t.Context, now))
		}
		var err error
		switch {
		case s.tracking:
			err = cs.ErrExist
		case t.Flags&(cs.TrackChanges|cs.TrackChangesOnly) != 0:
			s.tracking, s.context = true, t.Context
		}
		s.reply(req.Id, err, nil)
		return false
	case *clientpb.VQRequest_TrackStop:
		var err error
		if !s.tracking {
			err = cs.ErrNotExist
		}
		s.tracking = false
		s.reply(req.Id, err, nil)
		return false
	case *clientpb.VQRequest_QdeviceRegister:
		a.vqToken++
		pending, err := q.QdeviceRegister(now, b.QdeviceRegister.Name, a.vqToken)
		if pending {
			a.vqPending[a.vqToken] = vqPending{sess: s, id: req.Id}
		} else {
			s.reply(req.Id, err, nil)
		}
	case *clientpb.VQRequest_QdeviceUnregister:
		s.reply(req.Id, q.QdeviceUnregister(now, b.QdeviceUnregister.Name), nil)
	case *clientpb.VQRequest_QdeviceUpdate:
		s.reply(req.Id, q.QdeviceUpdate(now, b.QdeviceUpdate.OldName, b.QdeviceUpdate.NewName), nil)
	case *clientpb.VQRequest_QdevicePoll:
		p := b.QdevicePoll
		ring := membership.RingID{}
		if p.RingId != nil {
			ring = membership.RingID{Rep: membership.NodeID(p.RingId.Rep), Seq: p.RingId.Seq}
		}
		s.reply(req.Id, q.QdevicePoll(now, p.Name, p.CastVote, ring), nil)
	case *clientpb.VQRequest_QdeviceMasterWins:
		s.reply(req.Id, q.QdeviceMasterWins(now, b.QdeviceMasterWins.Name, b.QdeviceMasterWins.Allow), nil)
	case *clientpb.VQRequest_Status:
		st := a.vqStatus(now)
		s.reply(req.Id, nil, func(r *clientpb.VQReply) { r.Status = st })
		return false
	default:
		s.reply(req.Id, cs.ErrNotSupported, nil)
		return false
	}
	return true
}

func infoPB(i quorum.Info) *clientpb.VQInfo {
	return &clientpb.VQInfo{NodeId: i.NodeID, NodeState: i.NodeState, NodeVotes: i.NodeVotes, NodeExpectedVotes: i.NodeExpectedVotes,
		HighestExpected: i.HighestExpected, TotalVotes: i.TotalVotes, Quorum: i.Quorum, Flags: i.Flags,
		QdeviceVotes: i.QdeviceVotes, QdeviceName: i.QdeviceName}
}

// vqStatus takes everything `conclave quorum status` prints at one instant.
func (a *Agent) vqStatus(now time.Time) *clientpb.VQStatus {
	st := a.q.Status(now)
	local, _ := a.q.GetInfo(now, 0)
	out := &clientpb.VQStatus{
		Provider: config.QuorumProvider, Quorate: local.Flags&quorum.InfoQuorate != 0, RingId: ringPB(st.Ring),
		Members: ids32(st.Members), Local: infoPB(local), WaitForAllStatus: st.WaitForAllStatus, LeaseOk: st.LeaseOK,
	}
	for _, n := range st.Nodes {
		info, _ := a.q.GetInfo(now, uint32(n.ID))
		ns := &clientpb.VQNodeStatus{Info: infoPB(info)}
		if nd, ok := a.cfg.NodeByID(uint32(n.ID)); ok {
			ns.Name = nd.Name
			for l := range a.cfg.LinkCount() {
				if ap, err := nd.Addr(l); err == nil && ap.IsValid() {
					ns.Addrs = append(ns.Addrs, ap.Addr().String())
				}
			}
		}
		out.Nodes = append(out.Nodes, ns)
	}
	return out
}

// vqLocal serves the votequorum API over the local transport (the
// connections ipc.Sniff hands over): per handle, a request connection whose
// goroutine reads each request, serves it and writes the reply (no other
// goroutine on the round trip), and an event connection written by a
// goroutine of its own from a bounded queue, so that a client that stops
// reading its events is cut off and never holds the agent.
type vqLocal struct {
	a       *Agent
	mu      sync.Mutex
	waiting map[uint64]*vqSession // by id: sessions whose event connection has not come yet
}

func newVQLocal(a *Agent) *vqLocal { return &vqLocal{a: a, waiting: map[uint64]*vqSession{}} }

const (
	vqMaxRequest   = 64 << 10         // a larger request frame closes the connection
	vqEventTimeout = 10 * time.Second // an event write blocked this long cuts the handle off
	vqByeTimeout   = 100 * time.Millisecond
)

// serve serves one local-transport connection, from its hello on.
func (v *vqLocal) serve(c *ipc.LocalConn) {
	defer c.Close()
	fr := ipc.NewFrameReader(c, vqMaxRequest)
	c.SetReadDeadline(time.Now().Add(ipc.SniffTimeout))
	var req clientpb.VQRequest
	if err := fr.Read(&req); err != nil {
		vqBye(c, err)
		return
	}
	c.SetReadDeadline(time.Time{})
	h := req.GetHello()
	switch {
	case h == nil:
		vqBye(c, errors.New("a votequorum connection opens with a hello"))
	case h.Role == clientpb.VQHello_REQUESTS:
		v.requests(c, fr)
	case h.Role == clientpb.VQHello_EVENTS:
		v.events(c, h.Session)
	default:
		vqBye(c, fmt.Errorf("hello: unknown role %d", h.Role))
	}
}

// vqBye tells the client why its connection ends, if that can be done at
// once (nothing is said when it closed the connection itself).
func vqBye(c net.Conn, why error) {
	if errors.Is(why, io.EOF) || errors.Is(why, net.ErrClosed) {
		return
	}
	b, _ := ipc.AppendFrame(nil, &clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Error: why.Error()}}})
	c.SetWriteDeadline(time.Now().Add(vqByeTimeout))
	c.Write(b)
}

// errClientClosed ends a session whose client closed its connection.
var errClientClosed = errors.New("the client closed the connection")

// requests serves a handle's request connection; the session lives as
// long as it does.
func (v *vqLocal) requests(c *ipc.LocalConn, fr *ipc.FrameReader) {
	a := v.a
	if a.q == nil {
		vqBye(c, errors.New(a.vqNotConfigured()))
		return
	}
	l := &vqLocalSession{uid: c.Cred.UID, events: make(chan *clientpb.VQMessage, vqQueue), replies: make(chan *clientpb.VQReply, 1)}
	sess := &vqSession{gone: make(chan struct{}), local: l}
	a.mu.Lock()
	if a.stopped || a.failure != nil {
		a.mu.Unlock()
		vqBye(c, errors.New("agent stopping"))
		return
	}
	a.vqSessions = append(a.vqSessions, sess)
	a.mu.Unlock()
	id := v.register(sess)
	defer func() {
		v.mu.Lock()
		delete(v.waiting, id)
		v.mu.Unlock()
		a.mu.Lock()
		sess.end(errClientClosed)
		a.mu.Unlock()
		a.dropSession(sess)
	}()
	// However the session ends (cut off, the agent stopping, the event
	// connection failing), the read below returns and says why.
	go func() {
		<-sess.gone
		c.SetReadDeadline(time.Unix(1, 0))
	}()
	b, err := ipc.AppendFrame(nil, &clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Session: id}}})
	if err != nil {
		return
	}
	if _, err := c.Write(b); err != nil {
		return
	}
	var req clientpb.VQRequest
	for {
		if err := fr.Read(&req); err != nil {
			select {
			case <-sess.gone:
				vqBye(c, sess.reason)
			default:
				vqBye(c, err) // a bad frame; nothing when the client closed
			}
			return
		}
		a.mu.Lock()
		if a.stopped || a.failure != nil {
			sess.end(errors.New("agent stopping"))
		}
		if sess.reason != nil {
			a.mu.Unlock()
			vqBye(c, sess.reason)
			return
		}
		if a.vqRequest(sess, &req) {
			a.unlockAfter()
		} else {
			a.mu.Unlock()
		}
		var r *clientpb.VQReply
		select {
		case r = <-l.replies: // at once, unless a registration goes round the cluster first
		case <-sess.gone:
			vqBye(c, sess.reason)
			return
		}
		b, err = ipc.AppendFrame(b[:0], &clientpb.VQMessage{Body: &clientpb.VQMessage_Reply{Reply: r}})
		if err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

// register gives sess a random id for its event connection to name.
func (v *vqLocal) register(sess *vqSession) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		id := binary.LittleEndian.Uint64(b[:])
		if _, taken := v.waiting[id]; id != 0 && !taken {
			v.waiting[id] = sess
			return id
		}
	}
}

// events writes a session's events to its event connection, in order.
func (v *vqLocal) events(c *ipc.LocalConn, id uint64) {
	a := v.a
	v.mu.Lock()
	sess := v.waiting[id]
	if sess != nil && sess.local.uid == c.Cred.UID {
		delete(v.waiting, id)
	} else {
		sess = nil
	}
	v.mu.Unlock()
	if sess == nil {
		vqBye(c, errors.New("no such votequorum session"))
		return
	}
	l := sess.local
	fail := func(err error) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ErrSlowClient
		} else {
			err = fmt.Errorf("event connection: %w", err)
		}
		a.mu.Lock()
		sess.end(err)
		a.mu.Unlock()
	}
	c.SetWriteDeadline(time.Now().Add(vqEventTimeout))
	b, err := ipc.AppendFrame(nil, &clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Role: clientpb.VQHello_EVENTS, Session: id}}})
	if err == nil {
		_, err = c.Write(b)
	}
	if err != nil {
		fail(err)
		return
	}
	go func() { // a client cut off for not reading: end the blocked write
		<-sess.gone
		if errors.Is(sess.reason, ErrSlowClient) {
			c.SetWriteDeadline(time.Unix(1, 0))
		}
	}()
	bye := func() {
		if !errors.Is(sess.reason, ErrSlowClient) { // else its socket buffer is full
			vqBye(c, sess.reason)
		}
	}
	for {
		select {
		case m := <-l.events:
			b = b[:0]
			for m != nil { // what is queued, in one write
				if b, err = ipc.AppendFrame(b, m); err != nil {
					fail(err)
					return
				}
				m = nil
				if len(b) < 64<<10 {
					select {
					case m = <-l.events:
					default:
					}
				}
			}
			c.SetWriteDeadline(time.Now().Add(vqEventTimeout))
			select {
			case <-sess.gone: // the watcher may have set its deadline before ours
				bye()
				return
			default:
			}
			if _, err := c.Write(b); err != nil {
				fail(err)
				return
			}
		case <-sess.gone:
			bye()
			return
		}
	}
}
