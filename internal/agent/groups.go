package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/internal/membership"
)

// The group services' client side of the agent: one gsSession per client
// (one GroupServices.Session stream, one ha_gs_init), the deactivate
// scripts of expelled providers, responsiveness checks, and the operators'
// ListGroups / ShowGroup / WatchGroup.
//
// Everything a session shares with the engine is guarded by a.mu, like the
// rest of the agent: a request is served under the lock by the session's
// handler goroutine, and the engine's notifications are handed to the
// sessions' bounded queues under the lock (groupsOutput). Each session's
// own writer goroutine drains its queue onto the stream, so a client that
// stops reading never blocks the agent: when its queue overflows it is cut
// off (ErrSlowClient), and its providers fail and leave their groups.

// gsQueue and gsQueueBytes bound what waits to be written to one client
// (messages, and bytes of them), gsQueue what waits for one watcher. A
// client that falls this far behind is cut off.
const (
	gsQueue      = 4096
	gsQueueBytes = 16 << 20
)

// Responsiveness checks: the shortest interval the agent accepts, and how
// long a deactivate script gets after SIGTERM before SIGKILL (spec U-9).
const (
	minRespInterval = 100 * time.Millisecond
	deactivateGrace = 5 * time.Second
)

// gsState is the agent's side of the group services: its clients.
type gsState struct {
	nextClient groups.ClientID
	sessions   map[groups.ClientID]*gsSession
	watchers   map[string][]*gsWatcher
}

func newGSState() *gsState {
	return &gsState{sessions: map[groups.ClientID]*gsSession{}, watchers: map[string][]*gsWatcher{}}
}

// gsSession is one GS client. Its fields are guarded by a.mu, but for out
// and queued, which its writer goroutine drains, and the fields set before
// the session is published (id, cred, ctx).
type gsSession struct {
	id   groups.ClientID
	cred ipc.Cred
	ctx  context.Context // the stream's: ends with it
	out  chan gsOut
	// queued is the bytes in out (written under the lock, read back by
	// the writer goroutine).
	queued atomic.Int64
	gone   chan struct{} // closed when the agent cuts the client off
	// reason is why the client was cut off (nil while it is served).
	reason error
	// ended: ClientGone was called (Quit, or the stream ended).
	ended bool

	inited    bool
	script    string
	domain    string
	respEvery time.Duration
	respLimit time.Duration

	pingSeq      uint64
	awaiting     uint64 // the check not answered yet, 0 if none
	unresponsive bool
}

// send queues m for the client; it reports whether this send cut the
// client off.
func (s *gsSession) send(m *clientpb.GSMessage) (cutOff bool) {
	if s.reason != nil || s.ended {
		return false
	}
	size := proto.Size(m)
	if s.queued.Load()+int64(size) <= gsQueueBytes {
		select {
		case s.out <- gsOut{m, size}:
			s.queued.Add(int64(size))
			return false
		default:
		}
	}
	s.reason = ErrSlowClient
	close(s.gone)
	return true
}

// gsOut is one message waiting for a client's writer, with its size.
type gsOut struct {
	m    *clientpb.GSMessage
	size int
}

// write sends one queued message on the stream.
func (s *gsSession) write(stream clientpb.GroupServices_SessionServer, o gsOut) error {
	s.queued.Add(-int64(o.size))
	return stream.Send(o.m)
}

func (s *gsSession) reply(id uint64, err error, fill func(*clientpb.GSReply)) {
	r := &clientpb.GSReply{Id: id, Error: int32(groups.Code(err))}
	if fill != nil && err == nil {
		fill(r)
	}
	s.send(&clientpb.GSMessage{Body: &clientpb.GSMessage_Reply{Reply: r}})
}

// gsWatcher is one `conclave groups watch`, bounded like a session.
type gsWatcher struct {
	ch     chan *clientpb.GSTrace
	queued atomic.Int64 // bytes in ch
	gone   chan struct{}
	reason error
}

func (w *gsWatcher) send(t *clientpb.GSTrace) {
	if w.reason != nil {
		return
	}
	size := int64(proto.Size(t))
	if w.queued.Load()+size <= gsQueueBytes {
		select {
		case w.ch <- t:
			w.queued.Add(size)
			return
		default:
		}
	}
	w.reason = ErrSlowClient
	close(w.gone)
}

// registerGroups serves the group-services API on srv.
func (a *Agent) registerGroups(srv *grpc.Server) {
	clientpb.RegisterGroupServicesServer(srv, &gsServer{a: a})
}

// groupsOutput acts on the groups engine's output: notifications to the
// sessions' queues, deactivate scripts started, trace to the watchers.
// Called under the lock at the end of process().
func (a *Agent) groupsOutput() error {
	r := a.g.Ready()
	if len(r.Notifications) == 0 && len(r.Deactivations) == 0 && len(r.Trace) == 0 {
		return nil
	}
	now := time.Now()
	for i := range r.Notifications {
		n := &r.Notifications[i]
		s := a.gs.sessions[n.Client]
		if s == nil {
			continue // the client is gone; its departure is on its way
		}
		if s.send(&clientpb.GSMessage{Body: &clientpb.GSMessage_Notification{Notification: notificationPB(n, now)}}) {
			a.log.Warn("groups: a client did not read its notifications and was cut off; its providers fail",
				"client", s.id, "pid", s.cred.PID, "uid", s.cred.UID, "ring", n.Ring.String())
		}
	}
	for _, d := range r.Deactivations {
		a.startDeactivation(d)
	}
	if len(r.Trace) > 0 {
		a.traceOut(r.Trace, now)
	}
	return nil
}

// traceOut sends trace events to the watchers of their groups, one
// GSTrace per run of identical notifications to several providers.
func (a *Agent) traceOut(evs []groups.TraceEvent, now time.Time) {
	var last *clientpb.GSTrace
	flush := func() {
		if last == nil {
			return
		}
		for _, w := range a.gs.watchers[last.GroupName] {
			w.send(last)
		}
		last = nil
	}
	for i := range evs {
		t := tracePB(&evs[i], now)
		if last != nil && t.Kind == clientpb.GSTrace_NOTIFY && last.Kind == clientpb.GSTrace_NOTIFY &&
			t.GroupName == last.GroupName && proto.Equal(t.Notification, last.Notification) {
			last.Providers = append(last.Providers, t.Providers...)
			continue
		}
		flush()
		last = t
	}
	flush()
	for name, ws := range a.gs.watchers {
		a.gs.watchers[name] = slices.DeleteFunc(ws, func(w *gsWatcher) bool { return w.reason != nil })
	}
}

// closeGroupClients cuts every client and watcher off (the agent stops).
func (a *Agent) closeGroupClients(reason error) {
	for _, s := range a.gs.sessions {
		if s.reason == nil {
			s.reason = reason
			close(s.gone)
		}
	}
	for _, ws := range a.gs.watchers {
		for _, w := range ws {
			if w.reason == nil {
				w.reason = reason
				close(w.gone)
			}
		}
	}
}

// gsServer serves the GroupServices API.
type gsServer struct {
	clientpb.UnimplementedGroupServicesServer
	a *Agent
}

func (g *gsServer) Session(stream clientpb.GroupServices_SessionServer) error {
	a := g.a
	ctx := stream.Context()
	cred, _ := ipc.CallerCred(ctx)
	s := &gsSession{cred: cred, ctx: ctx, out: make(chan gsOut, gsQueue), gone: make(chan struct{})}
	a.mu.Lock()
	a.gs.nextClient++
	s.id = a.gs.nextClient
	a.gs.sessions[s.id] = s
	a.mu.Unlock()
	quit := false
	defer func() { a.gsDrop(s, quit) }()

	flush := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-s.out:
				if err := s.write(stream, m); err != nil {
					writeErr <- err
					return
				}
			case <-s.gone:
				writeErr <- status.Error(codes.Unavailable, s.reason.Error())
				return
			case <-flush: // quit: send what is queued (the reply), then end
				for {
					select {
					case m := <-s.out:
						if err := s.write(stream, m); err != nil {
							writeErr <- err
							return
						}
					default:
						writeErr <- nil
						return
					}
				}
			case <-ctx.Done():
				writeErr <- ctx.Err()
				return
			}
		}
	}()
	reqs := make(chan *clientpb.GSRequest)
	readErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case req := <-reqs:
			a.mu.Lock()
			if a.stopped || a.failure != nil {
				a.mu.Unlock()
				return status.Error(codes.Unavailable, "agent stopping")
			}
			mutated := a.gsRequest(s, req)
			ended := s.ended
			if mutated {
				a.unlockAfter()
			} else {
				a.mu.Unlock()
			}
			if ended {
				quit = true
				close(flush)
				return <-writeErr
			}
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				quit = true // the client closed its side cleanly: ha_gs_quit
				return nil
			}
			return err
		case err := <-writeErr:
			return err
		case <-s.gone:
			// The writer may be stuck in Send to a client that does not
			// read: returning ends the stream and unblocks it.
			return status.Error(codes.Unavailable, s.reason.Error())
		}
	}
}

// gsDrop forgets a session whose stream ended: its providers fail (leave
// reason PROVIDER_QUIT if quit, else PROVIDER_FAILED_LEAVE).
func (a *Agent) gsDrop(s *gsSession, quit bool) {
	a.mu.Lock()
	if a.gs.sessions[s.id] == s {
		delete(a.gs.sessions, s.id)
	}
	if s.ended || a.stopped || a.failure != nil {
		a.mu.Unlock()
		return
	}
	s.ended = true
	a.g.ClientGone(time.Now(), s.id, quit)
	a.unlockAfter()
}

// gsRequest serves one request under the lock; it says whether the engine
// may have output to act on.
func (a *Agent) gsRequest(s *gsSession, req *clientpb.GSRequest) bool {
	now := time.Now()
	e := a.g
	if b, ok := req.Body.(*clientpb.GSRequest_PingReply); ok {
		return a.gsPingReply(s, b.PingReply)
	}
	if init, ok := req.Body.(*clientpb.GSRequest_Init); ok {
		err := a.gsInit(s, init.Init)
		s.reply(req.Id, err, func(r *clientpb.GSReply) { r.NodeNumber = uint32(e.NodeNumber()) })
		return false
	}
	if !s.inited {
		s.reply(req.Id, groups.ErrNoInit, nil)
		return false
	}
	c := s.id
	switch b := req.Body.(type) {
	case *clientpb.GSRequest_Join:
		j := b.Join
		at, err := attrsFromPB(j.GetAttributes())
		if err == nil && (j.Instance < 0 || j.Instance > 1<<15-1) {
			err = groups.ErrBadParameter
		}
		var tok groups.Token
		if err == nil {
			tok, err = e.Join(now, c, groups.JoinArgs{Attributes: at, Instance: int16(j.Instance), LocalName: j.LocalName,
				DeactivateScript: s.script})
		}
		s.reply(req.Id, err, func(r *clientpb.GSReply) {
			r.Token = uint64(tok)
			r.Provider = &clientpb.GSProviderID{Node: uint32(e.NodeNumber()), Instance: j.Instance}
		})
	case *clientpb.GSRequest_Subscribe:
		tok, err := e.Subscribe(now, c, groups.SubscribeArgs{Control: groups.SubscriptionControl(b.Subscribe.Control), Group: b.Subscribe.Group})
		s.reply(req.Id, err, func(r *clientpb.GSReply) { r.Token = uint64(tok) })
	case *clientpb.GSRequest_Unsubscribe:
		s.reply(req.Id, e.Unsubscribe(now, c, groups.Token(b.Unsubscribe.Token)), nil)
		return false
	case *clientpb.GSRequest_Vote:
		v := b.Vote
		s.reply(req.Id, e.Vote(now, c, groups.Token(v.Token), groups.VoteArgs{Value: groups.VoteValue(v.Value),
			State: v.State, HasState: v.HasState, Message: v.Message, HasMessage: v.HasMessage,
			Default: groups.VoteValue(v.DefaultVote)}), nil)
	case *clientpb.GSRequest_ChangeStateValue:
		v := b.ChangeStateValue
		st := v.NewState
		if st == nil {
			st = []byte{} // the wire cannot carry nil; the client refuses it
		}
		s.reply(req.Id, e.ChangeState(now, c, groups.Token(v.Token), groups.StateChangeArgs{
			NumPhases: groups.NumPhases(v.NumPhases), TimeLimit: v.TimeLimit, NewState: st}), nil)
	case *clientpb.GSRequest_SendMessage:
		v := b.SendMessage
		msg := v.Message
		if msg == nil {
			msg = []byte{}
		}
		s.reply(req.Id, e.SendMessage(now, c, groups.Token(v.Token), groups.MessageArgs{
			NumPhases: groups.NumPhases(v.NumPhases), TimeLimit: v.TimeLimit, Message: msg}), nil)
	case *clientpb.GSRequest_Leave:
		v := b.Leave
		s.reply(req.Id, e.Leave(now, c, groups.Token(v.Token), groups.LeaveArgs{
			NumPhases: groups.NumPhases(v.NumPhases), TimeLimit: v.TimeLimit, LeaveCode: v.LeaveCode}), nil)
	case *clientpb.GSRequest_Goodbye:
		s.reply(req.Id, e.Goodbye(now, c, groups.Token(b.Goodbye.Token)), nil)
	case *clientpb.GSRequest_Expel:
		v := b.Expel
		list, err := idsFromPB(v.List)
		if err == nil {
			err = e.Expel(now, c, groups.Token(v.Token), groups.ExpelArgs{NumPhases: groups.NumPhases(v.NumPhases),
				TimeLimit: v.TimeLimit, List: list, ExpelCode: v.ExpelCode, DeactivatePhase: int(v.DeactivatePhase),
				DeactivateTimeLimit: v.DeactivateTimeLimit, DeactivateArgument: v.DeactivateArgument})
		}
		s.reply(req.Id, err, nil)
	case *clientpb.GSRequest_ChangeAttributes:
		v := b.ChangeAttributes
		at, err := attrsFromPB(v.GetAttributes())
		if err == nil {
			err = e.ChangeAttributes(now, c, groups.Token(v.Token), groups.AttributesArgs{
				NumPhases: groups.NumPhases(v.NumPhases), TimeLimit: v.TimeLimit, Attributes: at})
		} else {
			err = groups.ErrBadGroupAttributes
		}
		s.reply(req.Id, err, nil)
	case *clientpb.GSRequest_Quit:
		// Say goodbye for every provider before the reply, so that the
		// failures are ordered before anything the client does next.
		e.ClientGone(now, c, true)
		s.reply(req.Id, nil, nil)
		s.ended = true
		delete(a.gs.sessions, s.id)
	default:
		s.reply(req.Id, groups.ErrBadParameter, nil)
		return false
	}
	return true
}

// gsInit is ha_gs_init's checks (spec §3.1).
func (a *Agent) gsInit(s *gsSession, in *clientpb.GSInit) error {
	if s.inited {
		return groups.ErrExists
	}
	if in.Domain != "" && in.Domain != a.cfg.ClusterName {
		return fmt.Errorf("%w: domain %q is not served by this agent (cluster %q)", groups.ErrNotOK, in.Domain, a.cfg.ClusterName)
	}
	if in.SocketOptions&^3 != 0 {
		return groups.ErrBadParameter
	}
	if in.DeactivateScript != "" {
		if err := checkScript(in.DeactivateScript); err != nil {
			a.log.Info("groups: refused a deactivate script", "client", s.id, "pid", s.cred.PID, "err", err)
			return groups.ErrBadParameter
		}
	}
	if r := in.Responsiveness; r != nil && r.Type != 0 {
		if r.Type != 1 && r.Type != 2 || r.IntervalMs == 0 {
			return groups.ErrBadParameter
		}
		s.respEvery = max(time.Duration(r.IntervalMs)*time.Millisecond, minRespInterval)
		s.respLimit = s.respEvery
		if r.ResponseTimeLimitMs != 0 {
			s.respLimit = max(time.Duration(r.ResponseTimeLimitMs)*time.Millisecond, minRespInterval)
		}
		go a.gsPinger(s)
	}
	s.inited = true
	s.script, s.domain = in.DeactivateScript, in.Domain
	return nil
}

// checkScript: an absolute path to a regular, executable file.
func checkScript(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("deactivate script %q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("deactivate script: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("deactivate script %s is not an executable file", path)
	}
	return nil
}

// ---- responsiveness (spec U-15) ----
//
// The agent checks a client that asked for it at Init: every interval it
// sends a ping, unless one is still unanswered; a ping unanswered after the
// response time limit, or answered "not OK", makes the client
// unresponsive (Responsiveness(false): an announcement to every group it
// provides for); the next good answer makes it responsive again. The
// client library answers a PING check when Dispatch runs the
// responsiveness callback, a COUNTER check on its own goroutine by
// sampling the counter; so a client that stops dispatching (PING) or
// stops counting (COUNTER) is caught, and nobody is removed for it.

func (a *Agent) gsPinger(s *gsSession) {
	tick := time.NewTicker(s.respEvery)
	defer tick.Stop()
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.gone:
			return
		case <-tick.C:
			a.mu.Lock()
			if s.ended {
				a.mu.Unlock()
				return
			}
			if s.awaiting == 0 {
				s.pingSeq++
				s.awaiting = s.pingSeq
				s.send(&clientpb.GSMessage{Body: &clientpb.GSMessage_Ping{Ping: &clientpb.GSPing{Seq: s.pingSeq}}})
				deadline.Reset(s.respLimit)
			}
			a.mu.Unlock()
		case <-deadline.C:
			a.mu.Lock()
			if s.awaiting != 0 && !s.unresponsive && !s.ended && !a.stopped && a.failure == nil {
				a.gsResponsive(s, false)
				a.unlockAfter()
			} else {
				a.mu.Unlock()
			}
		}
	}
}

// gsPingReply records a client's answer to a check (under the lock).
func (a *Agent) gsPingReply(s *gsSession, r *clientpb.GSPingReply) bool {
	if r == nil || r.Seq == 0 || r.Seq != s.awaiting {
		return false // not the check in flight: late or bogus
	}
	s.awaiting = 0
	if r.Ok == s.unresponsive { // a change
		a.gsResponsive(s, r.Ok)
		return true
	}
	return false
}

func (a *Agent) gsResponsive(s *gsSession, ok bool) {
	s.unresponsive = !ok
	a.log.Info("groups: client responsiveness changed", "client", s.id, "pid", s.cred.PID, "responding", ok)
	a.g.Responsiveness(time.Now(), s.id, ok)
}

// ---- deactivate scripts (spec U-9, U-10) ----

// scriptRun is what a deactivate script needs to know of its client.
type scriptRun struct {
	d      groups.Deactivation
	cred   ipc.Cred
	domain string
}

// startDeactivation runs a Deactivation on a goroutine of its own; the
// result comes back through DeactivateDone under the lock. Called under
// the lock.
func (a *Agent) startDeactivation(d groups.Deactivation) {
	s := a.gs.sessions[d.Client]
	run := scriptRun{d: d}
	if s != nil {
		run.cred, run.domain = s.cred, s.domain
	}
	go func() {
		st := groups.DeactivateFailed
		if s == nil {
			a.log.Warn("groups: deactivate script not run: its client is gone", "group", d.ID.Group, "provider", d.ID.Provider.String())
		} else {
			st = a.runScript(run)
		}
		a.mu.Lock()
		if a.stopped || a.failure != nil {
			a.mu.Unlock()
			return
		}
		if err := a.g.DeactivateDone(time.Now(), d.ID, st); err != nil {
			a.log.Warn("groups: deactivate result refused", "group", d.ID.Group, "err", err)
		}
		a.unlockAfter()
	}()
}

// scriptCredential says as whom a client's script runs: as the client's
// uid, gid and groups when the agent is root; as the agent itself when it
// runs as the client's uid; otherwise not at all (an unprivileged agent
// cannot become another user, and must not run it as itself).
func scriptCredential(agentUID uint32, c ipc.Cred) (*syscall.Credential, error) {
	if agentUID == 0 {
		return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Gids}, nil
	}
	if c.UID == agentUID {
		return nil, nil
	}
	return nil, fmt.Errorf("the agent (uid %d) cannot run a script as uid %d", agentUID, c.UID)
}

// scriptCommand builds the command of spec U-9.
func scriptCommand(r scriptRun) *exec.Cmd {
	d := r.d
	inst := strconv.Itoa(int(d.ID.Provider.Instance))
	pid := strconv.Itoa(int(r.cred.PID))
	code := strconv.FormatUint(uint64(d.ExpelCode), 10)
	args := []string{d.ID.Group, inst, pid, code}
	if d.Argument != "" {
		args = append(args, d.Argument)
	}
	cmd := exec.Command(d.Script, args...)
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HA_DOMAIN_NAME=" + r.domain,
		"HA_GS_GROUP_NAME=" + d.ID.Group,
		"HA_GS_PROVIDER_INSTANCE=" + inst,
		"HA_GS_PROVIDER_PID=" + pid,
		"HA_GS_EXPEL_CODE=" + code,
	}
	// Its own process group, so that the time limit kills what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// runScript runs one deactivate script to its end or its time limit.
func (a *Agent) runScript(r scriptRun) groups.DeactivateStatus {
	d := r.d
	log := a.log.With("group", d.ID.Group, "provider", d.ID.Provider.String(), "script", d.Script)
	cred, err := scriptCredential(uint32(os.Geteuid()), r.cred)
	if err != nil {
		log.Warn("groups: deactivate script not run", "err", err)
		return groups.DeactivateFailed
	}
	cmd := scriptCommand(r)
	cmd.SysProcAttr.Credential = cred
	out := &tailBuffer{max: 2048}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second // a child holding the output open cannot hold us
	if err := cmd.Start(); err != nil {
		log.Warn("groups: deactivate script did not start", "err", err)
		return groups.DeactivateFailed
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var limit <-chan time.Time
	if d.TimeLimit > 0 {
		t := time.NewTimer(d.TimeLimit)
		defer t.Stop()
		limit = t.C
	}
	select {
	case err := <-done:
		if err != nil {
			log.Info("groups: deactivate script failed", "err", err, "output", out.String())
			return groups.DeactivateFailed
		}
		log.Info("groups: deactivate script succeeded")
		return groups.DeactivateOK
	case <-limit:
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		go func() {
			select {
			case <-done:
			case <-time.After(deactivateGrace):
				syscall.Kill(-pgid, syscall.SIGKILL)
				<-done
			}
		}()
		log.Warn("groups: deactivate script exceeded its time limit and was killed", "limit", d.TimeLimit)
		return groups.DeactivateTimedOut
	}
}

// tailBuffer keeps the last max bytes written to it, for the log.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// ---- operators' calls ----

func (g *gsServer) ListGroups(context.Context, *clientpb.GSListRequest) (*clientpb.GSListReply, error) {
	a := g.a
	a.mu.Lock()
	defer a.mu.Unlock()
	ring, _ := a.eng.Ring()
	r := &clientpb.GSListReply{NodeId: a.self.ID, RingId: ringPB(ring)}
	for _, gi := range a.g.Groups() {
		p := groupPB(gi)
		p.State = nil
		r.Groups = append(r.Groups, p)
	}
	return r, nil
}

func (g *gsServer) ShowGroup(_ context.Context, req *clientpb.GSShowRequest) (*clientpb.GSGroup, error) {
	a := g.a
	a.mu.Lock()
	defer a.mu.Unlock()
	gi, ok := a.g.Group(req.Name)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no group %q on node %d", req.Name, a.self.ID)
	}
	p := groupPB(gi)
	ring, _ := a.eng.Ring()
	p.RingId = ringPB(ring)
	return p, nil
}

func (g *gsServer) WatchGroup(req *clientpb.GSWatchRequest, stream clientpb.GroupServices_WatchGroupServer) error {
	a := g.a
	if req.Name == "" {
		return status.Error(codes.InvalidArgument, "watch: a group name is required")
	}
	ctx := stream.Context()
	w := &gsWatcher{ch: make(chan *clientpb.GSTrace, gsQueue), gone: make(chan struct{})}
	a.mu.Lock()
	if a.stopped || a.failure != nil {
		a.mu.Unlock()
		return status.Error(codes.Unavailable, "agent stopping")
	}
	if len(a.gs.watchers[req.Name]) == 0 {
		a.g.Trace(req.Name, true)
	}
	a.gs.watchers[req.Name] = append(a.gs.watchers[req.Name], w)
	ring, _ := a.eng.Ring()
	snap := &clientpb.GSTrace{Kind: clientpb.GSTrace_SNAPSHOT, GroupName: req.Name, RingId: ringPB(ring), UnixNano: time.Now().UnixNano()}
	if gi, ok := a.g.Group(req.Name); ok {
		snap.Group = groupPB(gi)
	}
	w.send(snap)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		ws := slices.DeleteFunc(a.gs.watchers[req.Name], func(x *gsWatcher) bool { return x == w })
		if len(ws) == 0 {
			delete(a.gs.watchers, req.Name)
			a.g.Trace(req.Name, false)
		} else {
			a.gs.watchers[req.Name] = ws
		}
		a.mu.Unlock()
	}()
	for {
		select {
		case t := <-w.ch:
			w.queued.Add(-int64(proto.Size(t)))
			if err := stream.Send(t); err != nil {
				return err
			}
		case <-w.gone:
			return status.Error(codes.Unavailable, w.reason.Error())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---- conversions between the engine and the wire ----

func idPB(id groups.ProviderID) *clientpb.GSProviderID {
	return &clientpb.GSProviderID{Node: uint32(id.Node), Instance: int32(id.Instance)}
}

func idsPB(ids []groups.ProviderID) []*clientpb.GSProviderID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]*clientpb.GSProviderID, len(ids))
	for i, id := range ids {
		out[i] = idPB(id)
	}
	return out
}

// idsFromPB: instance numbers are C shorts; anything else is a bad
// parameter, not a number to truncate.
func idsFromPB(ids []*clientpb.GSProviderID) ([]groups.ProviderID, error) {
	out := make([]groups.ProviderID, 0, len(ids))
	for _, id := range ids {
		if id == nil || id.Instance < 0 || id.Instance > 1<<15-1 {
			return nil, groups.ErrBadParameter
		}
		out = append(out, groups.ProviderID{Node: membership.NodeID(id.Node), Instance: int16(id.Instance)})
	}
	return out, nil
}

func attrsPB(a groups.Attributes) *clientpb.GSAttributes {
	return &clientpb.GSAttributes{
		Version: int32(a.Version), ClientVersion: int32(a.ClientVersion), BatchControl: int32(a.BatchControl),
		NumPhases: int32(a.NumPhases), SourceReflectionNumPhases: int32(a.SourceReflectionNumPhases),
		DefaultVote: int32(a.DefaultVote), MergeControl: int32(a.MergeControl), TimeLimit: a.TimeLimit,
		SourceProtocolTimeLimit: a.SourceProtocolTimeLimit, GroupName: a.GroupName, SourceGroupName: a.SourceGroupName,
	}
}

// attrsFromPB: missing attributes, or versions that are not C shorts, are
// bad attributes; the engine validates the rest.
func attrsFromPB(a *clientpb.GSAttributes) (groups.Attributes, error) {
	if a == nil {
		return groups.Attributes{}, groups.ErrBadParameter
	}
	short := func(v int32) bool { return v >= -1<<15 && v < 1<<15 }
	if !short(a.Version) || !short(a.ClientVersion) {
		return groups.Attributes{}, groups.ErrBadGroupAttributes
	}
	return groups.Attributes{
		Version: int16(a.Version), ClientVersion: int16(a.ClientVersion), BatchControl: groups.BatchControl(a.BatchControl),
		NumPhases: groups.NumPhases(a.NumPhases), SourceReflectionNumPhases: groups.NumPhases(a.SourceReflectionNumPhases),
		DefaultVote: groups.VoteValue(a.DefaultVote), MergeControl: groups.MergeControl(a.MergeControl), TimeLimit: a.TimeLimit,
		SourceProtocolTimeLimit: a.SourceProtocolTimeLimit, GroupName: a.GroupName, SourceGroupName: a.SourceGroupName,
	}, nil
}

func proposalPB(p *groups.Proposal) *clientpb.GSProposal {
	if p == nil {
		return nil
	}
	out := &clientpb.GSProposal{
		WhatsChanged:       uint32(p.WhatsChanged),
		Phase:              &clientpb.GSPhaseInfo{Number: int32(p.Phase.Number), NumPhases: int32(p.Phase.NumPhases), TimeLimit: p.Phase.TimeLimit},
		CurrentState:       p.CurrentState,
		ProposedState:      p.ProposedState,
		HasProposedState:   p.HasProposedState,
		Message:            p.Message,
		HasMessage:         p.HasMessage,
		CurrentMembership:  idsPB(p.CurrentMembership),
		ChangingMembership: idsPB(p.ChangingMembership),
		ProposedMembership: idsPB(p.ProposedMembership),
		SourceState:        p.SourceState,
		HasSourceState:     p.HasSourceState,
		CurrentAttributes:  attrsPB(p.CurrentAttributes),
	}
	for _, l := range p.LeaveInfo {
		out.LeaveInfo = append(out.LeaveInfo, &clientpb.GSLeaveInfo{Reason: int32(l.Reason), Code: l.Code})
	}
	if p.ProposedAttributes != nil {
		out.ProposedAttributes = attrsPB(*p.ProposedAttributes)
	}
	return out
}

func requestPB(r *groups.Request) *clientpb.GSFailingRequest {
	if r == nil {
		return nil
	}
	out := &clientpb.GSFailingRequest{Protocol: int32(r.Protocol), BacklevelProviders: idsPB(r.BacklevelProviders)}
	if j := r.Join; j != nil {
		out.Join = &clientpb.GSJoin{Attributes: attrsPB(j.Attributes), Instance: int32(j.Instance), LocalName: j.LocalName}
	}
	if l := r.Leave; l != nil {
		out.Leave = &clientpb.GSLeave{NumPhases: int32(l.NumPhases), TimeLimit: l.TimeLimit, LeaveCode: l.LeaveCode}
	}
	if x := r.Expel; x != nil {
		out.Expel = &clientpb.GSExpel{NumPhases: int32(x.NumPhases), TimeLimit: x.TimeLimit, List: idsPB(x.List),
			ExpelCode: x.ExpelCode, DeactivatePhase: int32(x.DeactivatePhase), DeactivateTimeLimit: x.DeactivateTimeLimit,
			DeactivateArgument: x.DeactivateArgument}
	}
	if s := r.State; s != nil {
		out.State = &clientpb.GSStateChange{NumPhases: int32(s.NumPhases), TimeLimit: s.TimeLimit, NewState: s.NewState}
	}
	if m := r.Message; m != nil {
		out.Message = &clientpb.GSSendMessage{NumPhases: int32(m.NumPhases), TimeLimit: m.TimeLimit, Message: m.Message}
	}
	if at := r.Attrs; at != nil {
		out.Attributes = &clientpb.GSChangeAttributes{NumPhases: int32(at.NumPhases), TimeLimit: at.TimeLimit, Attributes: attrsPB(at.Attributes)}
	}
	if s := r.Subscribe; s != nil {
		out.Subscribe = &clientpb.GSSubscribe{Control: uint32(s.Control), Group: s.Group}
	}
	return out
}

func ringOf(r groups.RingID) *clientpb.RingID {
	return &clientpb.RingID{Rep: uint32(r.Rep), Seq: r.Seq}
}

// notificationPB converts n; now stamps it (the zero time leaves it
// unstamped).
func notificationPB(n *groups.Notification, now time.Time) *clientpb.GSNotification {
	out := &clientpb.GSNotification{
		Type: int32(n.Type), Token: uint64(n.Token), Group: n.Group, RingId: ringOf(n.Ring), Protocol: int32(n.Protocol),
		Summary: uint32(n.Summary), Proposal: proposalPB(n.Proposal), Announcement: idsPB(n.Announcement),
		Merging: idsPB(n.Merging), MergeState: n.MergeState, WinnerState: n.WinnerState, Error: int32(n.Err),
		FailingRequest: requestPB(n.FailingRequest), SubscriptionType: uint32(n.SubscriptionType), State: n.State,
		FullMembership: idsPB(n.FullMembership), ChangingMembership: idsPB(n.ChangingMembership),
	}
	if !now.IsZero() {
		out.UnixNano = now.UnixNano()
	}
	return out
}

func groupPB(gi groups.GroupInfo) *clientpb.GSGroup {
	out := &clientpb.GSGroup{Name: gi.Name, Attributes: attrsPB(gi.Attributes), State: gi.State,
		StateSize: uint32(len(gi.State)), Queued: uint32(gi.Queued), Subscribers: uint32(gi.Subscribers)}
	for _, p := range gi.Providers {
		out.Providers = append(out.Providers, &clientpb.GSProviderInfo{Id: idPB(p.ID), LocalName: p.LocalName})
	}
	if p := gi.Protocol; p != nil {
		out.Protocol = &clientpb.GSProtocolInfo{Type: int32(p.Type), Seq: p.Seq, Phase: int32(p.Phase), NumPhases: int32(p.NumPhases),
			Changing: idsPB(p.Changing), Voters: idsPB(p.Voters), Voted: idsPB(p.Voted)}
	}
	return out
}

func tracePB(t *groups.TraceEvent, now time.Time) *clientpb.GSTrace {
	out := &clientpb.GSTrace{GroupName: t.Group, RingId: ringOf(t.Ring), UnixNano: now.UnixNano(), Seq: t.Seq,
		Phase: int32(t.Phase), Providers: []*clientpb.GSProviderID{idPB(t.Provider)}}
	switch t.Kind {
	case groups.TraceNotify:
		out.Kind = clientpb.GSTrace_NOTIFY
		out.Notification = notificationPB(t.Notification, time.Time{})
	case groups.TraceVote:
		out.Kind = clientpb.GSTrace_VOTE
		out.Vote, out.DefaultVote, out.HasState, out.HasMessage = int32(t.Vote), int32(t.Default), t.HasState, t.HasMessage
	case groups.TraceTimeout:
		out.Kind, out.Providers = clientpb.GSTrace_TIMEOUT, nil
	case groups.TraceDeactivate:
		out.Kind, out.DeactivateStatus = clientpb.GSTrace_DEACTIVATE, int32(t.Deactivate)
	}
	return out
}
