package ipc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyAllowed(t *testing.T) {
	me := uint32(os.Geteuid())
	p := Policy{UIDs: []uint32{1000}, GIDs: []uint32{500}}
	for _, tc := range []struct {
		name string
		c    Cred
		want bool
	}{
		{"root", Cred{UID: 0, GID: 0}, true},
		{"the agent's own user", Cred{UID: me, GID: 12345}, true},
		{"a listed uid", Cred{UID: 1000, GID: 1000}, true},
		{"primary group listed", Cred{UID: 2000, GID: 500}, true},
		{"supplementary group listed", Cred{UID: 2000, GID: 2000, Gids: []uint32{7, 500}}, true},
		{"anyone else", Cred{UID: 2000, GID: 2000, Gids: []uint32{7}}, me == 2000},
	} {
		if got := p.Allowed(tc.c); got != tc.want {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if got := SocketPath(""); got != DefaultSocket {
		t.Errorf("default: %q", got)
	}
	t.Setenv(SocketEnv, "/tmp/x.sock")
	if got := SocketPath(""); got != "/tmp/x.sock" {
		t.Errorf("env: %q", got)
	}
	if got := SocketPath("/a.sock"); got != "/a.sock" {
		t.Errorf("flag over env: %q", got)
	}
}

func TestListenStaleAndBusy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "a.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	// In use: refused.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second listener: %v", err)
	}
	// Stale (nobody listens): replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Dial(context.Background(), filepath.Join(dir, "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is the agent running") {
		t.Fatalf("missing socket: %v", err)
	}
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Dial(context.Background(), stale); err == nil || !strings.Contains(err.Error(), "no agent listens") {
		t.Fatalf("stale socket: %v", err)
	}
}

// TestPeerCred asks the kernel about our own connection.
func TestPeerCred(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "c.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("unix", filepath.Join(dir, "c.sock"))
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			c.Read(buf)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := PeerCred(c.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	if cred.UID != uint32(os.Geteuid()) || cred.PID != int32(os.Getpid()) {
		t.Fatalf("got %+v, want uid %d pid %d", cred, os.Geteuid(), os.Getpid())
	}
}
