package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/lab"
	"github.com/conclave/conclave/votequorum"
)

// TestVotequorumClient exercises the client package against a real agent:
// trackstart's immediate state, dispatch modes, Fd, tracking errors,
// finalize, the quorum device calls and their errors.
func TestVotequorumClient(t *testing.T) {
	t.Parallel()
	if _, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(filepath.Join(t.TempDir(), "none.sock"))); !errors.Is(err, cs.ErrLibrary) {
		t.Errorf("initialize with no agent: %v, want CS_ERR_LIBRARY", err)
	}
	c := start(t, lab.Options{Nodes: 2})
	waitView(t, c, ids(2), ids(2))
	waitQuorum(t, c, ids(2), want{true, 2, 2, 2, 2, 2, "Quorate ", ids(2)})

	var got []string
	var lastRing votequorum.RingID
	cb := &votequorum.Callbacks{
		Quorum: func(h *votequorum.Handle, ctx uint64, quorate bool, ring votequorum.RingID, nodes []votequorum.Node) {
			got = append(got, "quorum")
			if ctx != 42 || !quorate || len(nodes) != 2 || nodes[0].Votes != 1 {
				t.Errorf("quorum callback: context %d quorate %v nodes %+v", ctx, quorate, nodes)
			}
		},
		Nodelist: func(h *votequorum.Handle, ctx uint64, ring votequorum.RingID, members []uint32) {
			got = append(got, "nodelist")
			lastRing = ring
		},
	}
	h, err := votequorum.Initialize(cb, votequorum.WithSocket(c.Node(1).Socket))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Dispatch(cs.DispatchOneNonblocking); !errors.Is(err, cs.ErrTryAgain) {
		t.Errorf("dispatch one-nonblocking with nothing queued: %v, want CS_ERR_TRY_AGAIN", err)
	}
	if err := h.Dispatch(cs.DispatchAll); err != nil {
		t.Errorf("dispatch all with nothing queued: %v", err)
	}
	if err := h.Dispatch(9); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("dispatch 9: %v, want CS_ERR_INVALID_PARAM", err)
	}
	if err := h.TrackStart(42, cs.TrackChanges); err != nil {
		t.Fatal(err)
	}
	// The current state is queued before TrackStart returned: Fd is
	// readable now.
	fd, err := h.Fd()
	if err != nil {
		t.Fatal(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); err != nil || n != 1 {
		t.Fatalf("poll on Fd: %d, %v", n, err)
	}
	if err := h.Dispatch(cs.DispatchAll); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "nodelist" || got[1] != "quorum" {
		t.Errorf("trackstart delivered %v, want [nodelist quorum]", got)
	}
	if n, _ := unix.Poll(pfd, 0); n != 0 {
		t.Errorf("Fd still readable with nothing queued")
	}
	if err := h.TrackStart(42, cs.TrackChanges); !errors.Is(err, cs.ErrExist) {
		t.Errorf("second trackstart: %v, want CS_ERR_EXIST", err)
	}
	h.Dispatch(cs.DispatchAll)

	// The quorum device: register, poll with the ring of the nodelist
	// callback, stale ring, wrong name, rename, unregister.
	if err := h.QdeviceRegister("Qdevice"); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := h.QdeviceRegister("Other"); !errors.Is(err, cs.ErrExist) {
		t.Errorf("registering a second name: %v, want CS_ERR_EXIST", err)
	}
	if err := h.QdevicePoll("Qdevice", true, votequorum.RingID{NodeID: lastRing.NodeID, Seq: lastRing.Seq - 4}); !errors.Is(err, cs.ErrMessageError) {
		t.Errorf("poll with a stale ring: %v, want CS_ERR_MESSAGE_ERROR", err)
	}
	if err := h.QdevicePoll("Wrong", true, lastRing); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("poll with a wrong name: %v, want CS_ERR_INVALID_PARAM", err)
	}
	if err := h.QdevicePoll("Qdevice", true, lastRing); err != nil {
		t.Errorf("poll: %v", err)
	}
	info, err := h.GetInfo(0)
	if err != nil || info.Flags&votequorum.InfoQdeviceRegistered == 0 || info.Flags&votequorum.InfoQdeviceAlive == 0 || info.QdeviceName != "Qdevice" {
		t.Errorf("getinfo after register and poll: %+v, %v", info, err)
	}
	if err := h.QdeviceUpdate("Qdevice", "Renamed"); err != nil {
		t.Errorf("update: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		info, _ = h.GetInfo(0)
		if info.QdeviceName == "Renamed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if info.QdeviceName != "Renamed" {
		t.Errorf("device name after update: %q", info.QdeviceName)
	}
	if err := h.QdeviceUnregister("Qdevice"); !errors.Is(err, cs.ErrInvalidParam) {
		t.Errorf("unregister with the old name: %v, want CS_ERR_INVALID_PARAM", err)
	}
	if err := h.QdeviceUnregister("Renamed"); err != nil {
		t.Errorf("unregister: %v", err)
	}
	if err := h.QdeviceUnregister("Renamed"); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("unregister twice: %v, want CS_ERR_NOT_EXIST", err)
	}

	if err := h.TrackStop(); err != nil {
		t.Errorf("trackstop: %v", err)
	}
	if err := h.TrackStop(); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("trackstop twice: %v, want CS_ERR_NOT_EXIST", err)
	}
	if err := h.SetContext("mine"); err != nil {
		t.Fatal(err)
	}
	if v, err := h.Context(); err != nil || v != "mine" {
		t.Errorf("context: %v, %v", v, err)
	}
	if err := h.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := h.Finalize(); !errors.Is(err, cs.ErrBadHandle) {
		t.Errorf("finalize twice: %v, want CS_ERR_BAD_HANDLE", err)
	}
	if _, err := h.GetInfo(0); !errors.Is(err, cs.ErrBadHandle) {
		t.Errorf("getinfo after finalize: %v, want CS_ERR_BAD_HANDLE", err)
	}
}

// TestQuorumDeviceWithTwoNodeRefused: a configuration with two_node and a
// quorum device does not start, with Corosync's message.
func TestQuorumDeviceWithTwoNodeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "corosync.conf")
	if err := os.WriteFile(conf, []byte(`totem {
    version: 2
    cluster_name: x
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        nodeid: 1
    }
    node {
        ring0_addr: 127.0.0.2
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
    device {
        model: net
    }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := agentFails(t, "--config", conf)
	if code != 2 || !strings.Contains(out, conf+":19: quorum.two_node: configuration error: two_node and quorum device cannot be configured at the same time!") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}
