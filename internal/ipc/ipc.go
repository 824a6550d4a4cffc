// Package ipc is the local socket between the agent and its clients: gRPC
// over a Unix socket, with the caller's uid and groups checked by the kernel
// (SO_PEERCRED) before any call is served; and, on the same socket, a lean
// framed protocol for clients whose round trips matter (local.go).
package ipc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// DefaultSocket is where the agent listens unless told otherwise.
const DefaultSocket = "/run/conclave/conclave.sock"

// SocketEnv overrides the socket path for every client command.
const SocketEnv = "CONCLAVE_SOCKET"

// SocketPath returns flag if set, else $CONCLAVE_SOCKET, else DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(SocketEnv); v != "" {
		return v
	}
	return DefaultSocket
}

// Policy says who may use the socket: root, the agent's own uid, the listed
// uids, and members (primary or supplementary) of the listed groups.
type Policy struct {
	UIDs []uint32
	GIDs []uint32
}

// Cred is what the kernel says about a caller.
type Cred struct {
	PID  int32
	UID  uint32
	GID  uint32
	Gids []uint32 // supplementary groups, from /proc/PID/status
}

// AuthInfo carries a caller's credentials into gRPC handlers.
type AuthInfo struct {
	credentials.CommonAuthInfo
	Cred    Cred
	Allowed bool
}

// AuthType implements credentials.AuthInfo.
func (AuthInfo) AuthType() string { return "peercred" }

// CallerCred returns the credentials of the caller of a gRPC handler.
func CallerCred(ctx context.Context) (Cred, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Cred{}, false
	}
	ai, ok := p.AuthInfo.(AuthInfo)
	return ai.Cred, ok
}

// Allowed reports whether c may use the socket under p.
func (p Policy) Allowed(c Cred) bool {
	if c.UID == 0 || c.UID == uint32(os.Geteuid()) || slices.Contains(p.UIDs, c.UID) {
		return true
	}
	if slices.Contains(p.GIDs, c.GID) {
		return true
	}
	for _, g := range c.Gids {
		if slices.Contains(p.GIDs, g) {
			return true
		}
	}
	return false
}

// ErrDenied is returned to callers the policy refuses.
var ErrDenied = errors.New("permission denied: this user may not use the conclave socket (root, the agent's user and the configured uids/gids may)")

// serverCreds does the peer-credential check as the gRPC handshake.
type serverCreds struct {
	policy Policy
}

func (s serverCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	var uc *net.UnixConn
	switch c := c.(type) {
	case *net.UnixConn:
		uc = c
	case *replayConn: // through Sniff
		uc = c.UnixConn
	default:
		return nil, nil, fmt.Errorf("ipc: not a unix socket connection")
	}
	cred, err := PeerCred(uc)
	if err != nil {
		return nil, nil, err
	}
	// A refused caller still completes the handshake, so that every call
	// it makes gets a clear PermissionDenied (see NewServer) rather than a
	// reset connection it cannot explain.
	return c, AuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, Cred: cred, Allowed: s.policy.Allowed(cred)}, nil
}

func (serverCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("ipc: server credentials used by a client")
}
func (serverCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (s serverCreds) Clone() credentials.TransportCredentials { return s }
func (serverCreds) OverrideServerName(string) error           { return nil }

// PeerCred asks the kernel who is at the other end of c.
func PeerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	cred := Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
	cred.Gids = supplementaryGroups(uc.Pid)
	return cred, nil
}

// supplementaryGroups reads the Groups line of /proc/PID/status. A process
// that exited already simply has none.
func supplementaryGroups(pid int32) []uint32 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range strings.Fields(rest) {
			if v, err := strconv.ParseUint(f, 10, 32); err == nil {
				out = append(out, uint32(v))
			}
		}
		return out
	}
	return nil
}

// Listen creates the socket at path (its directory too), removing a stale
// socket left by a crashed agent but refusing to steal one in use.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s is in use by another agent", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Anyone may connect; the peer-credential check decides who is served.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// NewServer returns a gRPC server that serves only callers p allows; others
// get PermissionDenied on every call, naming their uid.
func NewServer(p Policy, opts ...grpc.ServerOption) *grpc.Server {
	check := func(ctx context.Context) error {
		pr, ok := peer.FromContext(ctx)
		if !ok {
			return status.Error(codes.PermissionDenied, ErrDenied.Error())
		}
		ai, ok := pr.AuthInfo.(AuthInfo)
		if !ok || !ai.Allowed {
			return status.Errorf(codes.PermissionDenied, "uid %d: %v", ai.Cred.UID, ErrDenied)
		}
		return nil
	}
	return grpc.NewServer(append([]grpc.ServerOption{
		grpc.Creds(serverCreds{policy: p}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}, opts...)...)
}

// Dial connects to the agent socket at path. It fails at once, with a
// message that says what to check, when no agent listens there.
func Dial(ctx context.Context, path string) (*grpc.ClientConn, error) {
	c, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	c.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return conn, nil
}

// dialUnix connects to the agent socket at path, with messages that say
// what to check when no agent listens there.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no agent socket at %s: is the agent running? (set --socket or %s)", path, SocketEnv)
		}
		return nil, fmt.Errorf("agent socket %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", abs)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no agent listens on %s (stale socket?)", path)
		}
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return c, nil
}
