package ipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestFrames(t *testing.T) {
	var b []byte
	var err error
	for _, s := range []string{"one", "", strings.Repeat("x", 300)} {
		if b, err = AppendFrame(b, wrapperspb.String(s)); err != nil {
			t.Fatal(err)
		}
	}
	// One byte at a time: frames do not depend on how reads split them.
	fr := NewFrameReader(io.LimitReader(oneByte{bytes.NewReader(b)}, int64(len(b))), 1024)
	for _, want := range []string{"one", "", strings.Repeat("x", 300)} {
		var m wrapperspb.StringValue
		if err := fr.Read(&m); err != nil || m.Value != want {
			t.Fatalf("read %q, %v; want %q", m.Value, err, want)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"oversized", binary.AppendUvarint(nil, 1025), ErrFrameTooLarge},
		{"huge length", binary.AppendUvarint(nil, 1<<62), ErrFrameTooLarge},
		{"length overflows", bytes.Repeat([]byte{0xff}, 11), nil},
		{"cut in the length", []byte{0x80}, io.ErrUnexpectedEOF},
		{"cut in the payload", append(binary.AppendUvarint(nil, 10), "short"...), io.ErrUnexpectedEOF},
	} {
		_, err := NewFrameReader(bytes.NewReader(tc.in), 1024).Next()
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Garbage that frames fine but is no message.
	bad := appendRawFrame(nil, []byte{0xff, 0xff, 0xff})
	if err := NewFrameReader(bytes.NewReader(bad), 1024).Read(&wrapperspb.StringValue{}); err == nil || !strings.Contains(err.Error(), "bad frame") {
		t.Errorf("garbage payload: %v", err)
	}
}

type oneByte struct{ r io.Reader }

func (o oneByte) Read(b []byte) (int, error) { return o.r.Read(b[:min(len(b), 1)]) }

// sniffed serves gRPC (the health service) and an echo of the local
// protocol on one socket, through Sniff with allow as the policy.
func sniffed(t *testing.T, allow func(Cred) bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Policy{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	echo := func(c *LocalConn) {
		defer c.Close()
		fr := NewFrameReader(c, 1024)
		for {
			var m wrapperspb.StringValue
			if err := fr.Read(&m); err != nil {
				return
			}
			m.Value += " from uid " + uitoa(c.Cred.UID)
			b, _ := AppendFrame(nil, &m)
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
	go srv.Serve(sniff(l, allow, echo))
	t.Cleanup(srv.Stop)
	return path
}

func uitoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

func checkGRPC(t *testing.T, path string) {
	t.Helper()
	conn, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC through the sniffer: %v, %v", r, err)
	}
}

func checkLocal(t *testing.T, path string) {
	t.Helper()
	var reply wrapperspb.StringValue
	c, fr, err := DialLocal(context.Background(), path, wrapperspb.String("hello"), &reply)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := "hello from uid " + uitoa(uint32(os.Geteuid()))
	if reply.Value != want {
		t.Fatalf("hello answered %q, want %q", reply.Value, want)
	}
	for range 3 {
		b, _ := AppendFrame(nil, wrapperspb.String("ping"))
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := fr.Read(&reply); err != nil || !strings.HasPrefix(reply.Value, "ping from") {
			t.Fatalf("ping: %q, %v", reply.Value, err)
		}
	}
}

// TestSniff: gRPC and the local protocol share the socket; garbage,
// oversized frames and silent hang-ups close only their own connection.
func TestSniff(t *testing.T) {
	path := sniffed(t, func(Cred) bool { return true })
	checkGRPC(t, path)
	checkLocal(t, path)

	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"short then hang up", []byte("CQ")},
		{"oversized frame", append([]byte(LocalMagic), binary.AppendUvarint(nil, 1<<40)...)},
		{"garbage frame", append([]byte(LocalMagic), appendRawFrame(nil, []byte{0xff, 0xff})...)},
	} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(tc.send)
		if tc.name == "short then hang up" {
			c.(*net.UnixConn).CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) { // reset: closed with what we sent unread
			t.Errorf("%s: the agent did not close the connection: %v", tc.name, err)
		}
		if strings.HasPrefix(string(tc.send), LocalMagic) {
			// Accepted (an empty status frame), then closed by the service.
			if !bytes.Equal(got, []byte{0}) {
				t.Errorf("%s: got %q, want the accepting status frame only", tc.name, got)
			}
		} else if len(got) != 0 {
			t.Errorf("%s: got %q", tc.name, got)
		}
	}
	// The listener serves on.
	checkGRPC(t, path)
	checkLocal(t, path)
}

// TestSniffDenied: a caller the policy refuses is told why, naming its uid,
// and the connection is closed; gRPC callers get PermissionDenied as before.
func TestSniffDenied(t *testing.T) {
	path := sniffed(t, func(Cred) bool { return false })
	_, _, err := DialLocal(context.Background(), path, wrapperspb.String("hello"), &wrapperspb.StringValue{})
	want := "uid " + uitoa(uint32(os.Geteuid())) + ": permission denied"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("refused local caller: %v, want %q", err, want)
	}
	// A raw client sees the status frame, then the end.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(LocalMagic))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	status, err := NewFrameReader(bytes.NewReader(got), 1024).Next()
	if err != nil || !strings.Contains(string(status), ErrDenied.Error()) || len(got) != len(status)+1 {
		t.Fatalf("refusal: %q, %v", got, err)
	}
}

// TestDialLocalBounded: an agent that never answers the handshake does not
// hang the client past its context.
func TestDialLocalBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = DialLocal(ctx, path, wrapperspb.String("hello"), &wrapperspb.StringValue{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("mute agent: %v after %v", err, time.Since(start))
	}
	_, _, err = DialLocal(context.Background(), filepath.Join(t.TempDir(), "none.sock"), wrapperspb.String("hello"), &wrapperspb.StringValue{})
	if err == nil || !strings.Contains(err.Error(), "is the agent running") {
		t.Fatalf("no socket: %v", err)
	}
}
