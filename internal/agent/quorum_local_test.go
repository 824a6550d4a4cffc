package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/ipc"
	"github.com/conclave/conclave/votequorum"
)

// quorumAgent is a one-node agent with the quorum service, in this
// process.
type quorumAgent struct {
	a      *Agent
	sock   string
	cancel context.CancelFunc
	done   chan error
}

// startQuorumAgent runs a one-node agent with votequorum on ip and waits
// until a handle gets its GetInfo answered.
func startQuorumAgent(tb testing.TB, ip string) *quorumAgent {
	tb.Helper()
	dir := tb.TempDir()
	text := "[totem]\ncluster_name = \"t\"\ncrypto_cipher = \"none\"\ncrypto_hash = \"none\"\n" +
		"[[nodelist.node]]\nnodeid = 1\nring0_addr = \"" + ip + "\"\n[quorum]\nprovider = \"corosync_votequorum\"\n"
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	qa := &quorumAgent{sock: filepath.Join(dir, "s.sock"), cancel: cancel, done: make(chan error, 1)}
	qa.a, err = New(ctx, Options{Config: cfg, NodeID: 1, Socket: qa.sock, DataDir: filepath.Join(dir, "d"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	go func() { qa.done <- qa.a.Run(ctx) }()
	tb.Cleanup(qa.stop)
	for end := time.Now().Add(5 * time.Second); ; {
		h, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(qa.sock))
		if err == nil {
			_, err = h.GetInfo(0)
			h.Finalize()
			if err == nil {
				return qa
			}
		}
		if time.Now().After(end) {
			tb.Fatal(fmt.Errorf("no agent: %w", err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (qa *quorumAgent) stop() {
	if qa.cancel != nil {
		qa.cancel()
		<-qa.done
		qa.cancel = nil
	}
}

func (qa *quorumAgent) handle(t *testing.T, cb *votequorum.Callbacks) *votequorum.Handle {
	t.Helper()
	h, err := votequorum.Initialize(cb, votequorum.WithSocket(qa.sock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Finalize() })
	return h
}

// sessions counts the agent's votequorum sessions.
func (qa *quorumAgent) sessions() int {
	qa.a.mu.Lock()
	defer qa.a.mu.Unlock()
	return len(qa.a.vqSessions)
}

func (qa *quorumAgent) waitSessions(t *testing.T, n int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); qa.sessions() != n; {
		if time.Now().After(end) {
			t.Fatalf("%d votequorum sessions, want %d", qa.sessions(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawVQ is a hand-made client of the local transport.
type rawVQ struct {
	req, ev     net.Conn
	reqRd, evRd *ipc.FrameReader
	id          uint64
}

func (qa *quorumAgent) raw(t *testing.T) *rawVQ {
	t.Helper()
	var hello clientpb.VQMessage
	req, reqRd, err := ipc.DialLocal(context.Background(), qa.sock, &clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{}}}, &hello)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.Close() })
	id := hello.GetHello().GetSession()
	if id == 0 {
		t.Fatalf("hello answered %v", &hello)
	}
	ev, evRd, err := ipc.DialLocal(context.Background(), qa.sock, &clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{Role: clientpb.VQHello_EVENTS, Session: id}}}, &hello)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	if hello.GetHello().GetError() != "" {
		t.Fatalf("event hello: %v", &hello)
	}
	return &rawVQ{req: req, ev: ev, reqRd: reqRd, evRd: evRd, id: id}
}

func (r *rawVQ) call(t *testing.T, req *clientpb.VQRequest) *clientpb.VQMessage {
	t.Helper()
	b, err := ipc.AppendFrame(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	r.req.Write(b) // the agent may have closed the connection, saying why first
	r.req.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m clientpb.VQMessage
	if err := r.reqRd.Read(&m); err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return &m
}

var getInfo = &clientpb.VQRequest{Id: 1, Body: &clientpb.VQRequest_GetInfo{GetInfo: &clientpb.VQGetInfo{}}}

// TestVQLocalTrackStart: the current state TrackStart queues is in the
// dispatch queue when TrackStart returns, on every try; the reply says how
// many events were sent before it.
func TestVQLocalTrackStart(t *testing.T) {
	qa := startQuorumAgent(t, "127.0.0.72")
	for i := range 50 {
		var got []string
		h := qa.handle(t, &votequorum.Callbacks{
			Nodelist: func(_ *votequorum.Handle, ctx uint64, _ votequorum.RingID, _ []uint32) {
				got = append(got, fmt.Sprintf("nodelist %d", ctx))
			},
			Quorum: func(_ *votequorum.Handle, ctx uint64, quorate bool, _ votequorum.RingID, nodes []votequorum.Node) {
				got = append(got, fmt.Sprintf("quorum %d %v %d", ctx, quorate, len(nodes)))
			},
		})
		if err := h.TrackStart(uint64(i), cs.TrackCurrent); err != nil {
			t.Fatal(err)
		}
		if err := h.Dispatch(cs.DispatchAll); err != nil {
			t.Fatal(err)
		}
		want := []string{fmt.Sprintf("nodelist %d", i), fmt.Sprintf("quorum %d true 1", i)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("try %d: dispatched %q right after TrackStart, want %q", i, got, want)
		}
		if err := h.Finalize(); err != nil {
			t.Fatal(err)
		}
	}
	qa.waitSessions(t, 0)

	r := qa.raw(t)
	m := r.call(t, &clientpb.VQRequest{Id: 7, Body: &clientpb.VQRequest_TrackStart{TrackStart: &clientpb.VQTrackStart{Flags: cs.TrackChanges}}})
	if rep := m.GetReply(); rep == nil || rep.Id != 7 || rep.LastEvent != 2 || rep.Error != int32(cs.Code(nil)) {
		t.Fatalf("trackstart reply %v, want id 7, last_event 2", m)
	}
	m = r.call(t, getInfo)
	if rep := m.GetReply(); rep == nil || rep.LastEvent != 2 || rep.Info.GetNodeId() != 1 {
		t.Fatalf("getinfo reply %v", m)
	}
	for _, kind := range []clientpb.VQEvent_Kind{clientpb.VQEvent_NODELIST, clientpb.VQEvent_QUORUM} {
		if err := r.evRd.Read(m); err != nil || m.GetEvent().GetKind() != kind {
			t.Fatalf("event: %v, %v; want %v", m, err, kind)
		}
	}
}

// TestVQLocalBadInput: garbage, oversized frames and strangers' hellos
// close their own connection, say why when they can, and nothing else.
func TestVQLocalBadInput(t *testing.T) {
	qa := startQuorumAgent(t, "127.0.0.73")
	h := qa.handle(t, &votequorum.Callbacks{})
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		t.Fatal(err)
	}
	qa.waitSessions(t, 1)

	send := func(frames ...[]byte) string {
		c, err := net.Dial("unix", qa.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out := []byte(ipc.LocalMagic)
		for _, f := range frames {
			out = append(out, f...)
		}
		c.Write(out)
		c.(*net.UnixConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the agent did not close the connection: %v", err)
		}
		fr := ipc.NewFrameReader(strings.NewReader(string(b)), 1<<20)
		if st, err := fr.Next(); err != nil || len(st) != 0 {
			t.Fatalf("status %q, %v", st, err)
		}
		var why []string
		for {
			var m clientpb.VQMessage
			if err := fr.Read(&m); err != nil {
				break
			}
			if m.GetHello().GetError() != "" {
				why = append(why, m.GetHello().GetError())
			} else {
				why = append(why, "ok")
			}
		}
		return strings.Join(why, "; ")
	}
	frame := func(m *clientpb.VQRequest) []byte {
		b, err := ipc.AppendFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hello := frame(&clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{}}})
	huge := []byte{0x80, 0x80, 0x80, 0x80, 0x10} // 4 GiB
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   string
	}{
		{"oversized first frame", [][]byte{huge}, "frame too large"},
		{"garbage first frame", [][]byte{{3, 0xff, 0xff, 0xff}}, "bad frame"},
		{"no hello", [][]byte{frame(getInfo)}, "opens with a hello"},
		{"unknown role", [][]byte{frame(&clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{Role: 9}}})}, "unknown role"},
		{"unknown session", [][]byte{frame(&clientpb.VQRequest{Body: &clientpb.VQRequest_Hello{Hello: &clientpb.VQHello{Role: clientpb.VQHello_EVENTS, Session: 12345}}})}, "no such votequorum session"},
		{"oversized request", [][]byte{hello, huge}, "ok; ipc: frame too large"},
		{"garbage request", [][]byte{hello, {3, 0xff, 0xff, 0xff}}, "ok; ipc: bad frame"},
		{"request cut short", [][]byte{hello, {10, 1}}, "ok"},
	} {
		if got := send(tc.frames...); !strings.Contains(got, tc.want) {
			t.Errorf("%s: the agent said %q, want %q", tc.name, got, tc.want)
		}
	}
	// The handle, the agent and its sessions are unaffected.
	if info, err := h.GetInfo(0); err != nil || info.NodeID != 1 {
		t.Fatalf("getinfo after bad input: %+v, %v", info, err)
	}
	qa.waitSessions(t, 1)
	if _, err := h.Fd(); err != nil {
		t.Fatal(err)
	}
}

// TestVQLocalSlowClient: a client that stops reading its events is cut off
// when its queue is full; queuing never waits for it, and the client is
// told why on its next call.
func TestVQLocalSlowClient(t *testing.T) {
	qa := startQuorumAgent(t, "127.0.0.74")
	r := qa.raw(t)
	if m := r.call(t, &clientpb.VQRequest{Id: 1, Body: &clientpb.VQRequest_TrackStart{TrackStart: &clientpb.VQTrackStart{Flags: cs.TrackChanges}}}); m.GetReply() == nil {
		t.Fatal(m)
	}
	other := qa.handle(t, &votequorum.Callbacks{})
	qa.waitSessions(t, 2)
	// Big events fill the socket buffer at once; the queue fills behind it.
	big := &clientpb.VQMessage{Body: &clientpb.VQMessage_Event{Event: &clientpb.VQEvent{Kind: clientpb.VQEvent_NODELIST, Members: make([]uint32, 8192)}}}
	for i := range big.GetEvent().Members {
		big.GetEvent().Members[i] = 1 << 30
	}
	var sess *vqSession
	start := time.Now()
	qa.a.mu.Lock()
	for _, s := range qa.a.vqSessions {
		if s.local != nil && s.tracking {
			sess = s
		}
	}
	for range 2 * vqQueue {
		sess.send(big)
	}
	qa.a.mu.Unlock()
	if d := time.Since(start); d > time.Second {
		t.Errorf("queuing %d events took %v", 2*vqQueue, d)
	}
	select {
	case <-sess.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow client was not cut off")
	}
	if !errors.Is(sess.reason, ErrSlowClient) {
		t.Fatalf("cut off for %v", sess.reason)
	}
	qa.waitSessions(t, 1)
	m := r.call(t, getInfo)
	if got := m.GetHello().GetError(); got != ErrSlowClient.Error() {
		t.Fatalf("next call answered %v, want %q", m, ErrSlowClient)
	}
	if _, err := other.GetInfo(0); err != nil {
		t.Fatal(err)
	}

	// A handle of the client package that is cut off learns why, from
	// Dispatch and from its next call, though its event connection just
	// ends.
	h := qa.handle(t, &votequorum.Callbacks{})
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		t.Fatal(err)
	}
	qa.waitSessions(t, 2)
	qa.a.mu.Lock()
	for _, s := range qa.a.vqSessions {
		if s.local != nil && s.tracking {
			sess = s
		}
	}
	sess.end(ErrSlowClient)
	qa.a.mu.Unlock()
	for end := time.Now().Add(5 * time.Second); ; {
		err := h.Dispatch(cs.DispatchAll) // drains what arrived, then the error
		if err != nil {
			if !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), ErrSlowClient.Error()) {
				t.Fatalf("dispatch after the cut: %v", err)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatal("dispatch never reported the cut")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), ErrSlowClient.Error()) {
		t.Fatalf("getinfo after the cut: %v", err)
	}
}

// TestVQLocalAgentGone: a handle whose agent stops fails with
// CS_ERR_LIBRARY; after Finalize, CS_ERR_BAD_HANDLE.
func TestVQLocalAgentGone(t *testing.T) {
	qa := startQuorumAgent(t, "127.0.0.75")
	h := qa.handle(t, &votequorum.Callbacks{})
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		t.Fatal(err)
	}
	if err := h.Dispatch(cs.DispatchAll); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Dispatch(cs.DispatchBlocking) }()
	qa.stop()
	select {
	case err := <-done:
		if !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "agent stopped") {
			t.Errorf("blocking dispatch when the agent stopped: %v, want CS_ERR_LIBRARY: agent stopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking dispatch outlived the agent")
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrLibrary) {
		t.Errorf("getinfo with the agent gone: %v, want CS_ERR_LIBRARY", err)
	}
	if err := h.Finalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrBadHandle) {
		t.Errorf("getinfo after finalize: %v, want CS_ERR_BAD_HANDLE", err)
	}
	if _, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(qa.sock)); !errors.Is(err, cs.ErrLibrary) {
		t.Errorf("initialize with the agent gone: %v, want CS_ERR_LIBRARY", err)
	}
}

// TestVQGRPCSession: the gRPC Session still serves on the same socket.
func TestVQGRPCSession(t *testing.T) {
	qa := startQuorumAgent(t, "127.0.0.76")
	cc, err := ipc.Dial(context.Background(), qa.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := clientpb.NewVotequorumClient(cc).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&clientpb.VQRequest{Id: 1, Body: &clientpb.VQRequest_TrackStart{TrackStart: &clientpb.VQTrackStart{Flags: cs.TrackCurrent}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev := m.GetEvent(); ev != nil {
			got = append(got, ev.Kind.String())
		} else {
			got = append(got, fmt.Sprintf("reply %d", m.GetReply().GetId()))
		}
	}
	if want := "[NODELIST QUORUM reply 1]"; fmt.Sprint(got) != want {
		t.Fatalf("over gRPC: %v, want %s", got, want)
	}
}
