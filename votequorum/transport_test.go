package votequorum

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/ipc"
)

// fakeAgent speaks the local transport: it answers TrackStart at once
// with last_event 2 but sends those two events only after delay, and ends
// the session with bye on a GetInfo for node 99.
type fakeAgent struct {
	delay  time.Duration
	bye    string
	events chan int // TrackStart asks for events
}

func (f *fakeAgent) serve(c *ipc.LocalConn) {
	defer c.Close()
	fr := ipc.NewFrameReader(c, 1<<16)
	write := func(m *clientpb.VQMessage) {
		b, _ := ipc.AppendFrame(nil, m)
		c.Write(b)
	}
	var req clientpb.VQRequest
	if fr.Read(&req) != nil {
		return
	}
	if req.GetHello().GetRole() == clientpb.VQHello_EVENTS {
		write(&clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Session: 1}}})
		for range f.events {
			time.Sleep(f.delay)
			for _, k := range []clientpb.VQEvent_Kind{clientpb.VQEvent_NODELIST, clientpb.VQEvent_QUORUM} {
				write(&clientpb.VQMessage{Body: &clientpb.VQMessage_Event{Event: &clientpb.VQEvent{Kind: k, Context: 5}}})
			}
		}
		return
	}
	write(&clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Session: 1}}})
	var sent uint64
	for fr.Read(&req) == nil {
		r := &clientpb.VQReply{Id: req.Id, Error: int32(cs.Code(nil))}
		switch {
		case req.GetTrackStart() != nil:
			sent += 2
			f.events <- 1
		case req.GetGetInfo().GetNodeId() == 99:
			write(&clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Error: f.bye}}})
			return
		case req.GetGetInfo() != nil:
			r.Info = &clientpb.VQInfo{NodeId: 1}
		}
		r.LastEvent = sent
		write(&clientpb.VQMessage{Body: &clientpb.VQMessage_Reply{Reply: r}})
	}
}

func startFake(t *testing.T, f *fakeAgent) string {
	path := filepath.Join(t.TempDir(), "fake.sock")
	l, err := ipc.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	gl := ipc.Sniff(l, ipc.Policy{}, f.serve)
	t.Cleanup(func() { gl.Close() })
	go func() { // no gRPC here
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return path
}

// TestTrackStartWaitsForEvents: a reply waits for the events the agent sent
// before it, however late they arrive on the event connection.
func TestTrackStartWaitsForEvents(t *testing.T) {
	f := &fakeAgent{delay: 50 * time.Millisecond, bye: "told to go", events: make(chan int, 1)}
	path := startFake(t, f)
	var got []uint64
	h, err := Initialize(&Callbacks{
		Nodelist: func(_ *Handle, ctx uint64, _ RingID, _ []uint32) { got = append(got, ctx) },
		Quorum:   func(_ *Handle, ctx uint64, _ bool, _ RingID, _ []Node) { got = append(got, ctx) },
	}, WithSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Finalize()
	if info, err := h.GetInfo(0); err != nil || info.NodeID != 1 {
		t.Fatalf("getinfo: %+v, %v", info, err)
	}
	start := time.Now()
	if err := h.TrackStart(5, cs.TrackCurrent); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < f.delay {
		t.Errorf("TrackStart returned after %v, before its events arrived (%v)", d, f.delay)
	}
	for range 2 {
		if err := h.Dispatch(cs.DispatchOneNonblocking); err != nil {
			t.Fatalf("dispatch right after TrackStart: %v", err)
		}
	}
	if len(got) != 2 || got[0] != 5 || got[1] != 5 {
		t.Fatalf("callbacks %v", got)
	}
	if err := h.Dispatch(cs.DispatchOneNonblocking); !errors.Is(err, cs.ErrTryAgain) {
		t.Fatalf("dispatch with nothing queued: %v", err)
	}

	// The agent's reason for ending the session reaches the caller.
	if _, err := h.GetInfo(99); !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "told to go") {
		t.Fatalf("getinfo when the agent ends the session: %v", err)
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "told to go") {
		t.Fatalf("getinfo after: %v", err)
	}
	if err := h.Finalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrBadHandle) {
		t.Fatalf("getinfo after finalize: %v", err)
	}
}

// TestInitializeErrors: no agent, and an agent that refuses the hello, are
// CS_ERR_LIBRARY with the reason.
func TestInitializeErrors(t *testing.T) {
	if _, err := Initialize(&Callbacks{}, WithSocket(filepath.Join(t.TempDir(), "none.sock"))); !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "is the agent running") {
		t.Errorf("no agent: %v", err)
	}
	if _, err := Initialize(nil); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("nil callbacks: %v", err)
	}
	path := filepath.Join(t.TempDir(), "refuse.sock")
	l, err := ipc.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	gl := ipc.Sniff(l, ipc.Policy{}, func(c *ipc.LocalConn) {
		defer c.Close()
		b, _ := ipc.AppendFrame(nil, &clientpb.VQMessage{Body: &clientpb.VQMessage_Hello{Hello: &clientpb.VQHello{Error: "quorum is not configured"}}})
		c.Write(b)
	})
	defer gl.Close()
	if _, err := Initialize(&Callbacks{}, WithSocket(path)); !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "quorum is not configured") {
		t.Errorf("refused: %v", err)
	}
}
