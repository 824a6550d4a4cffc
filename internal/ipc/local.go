package ipc

// The local protocol: a lean alternative to gRPC on the same socket, for
// clients whose round trips matter (package votequorum), as libqb's IPC is
// to Corosync's libraries. gRPC hands every message between goroutines
// (and so between CPUs); here the caller's goroutine writes its request and
// reads the reply itself, and the agent's goroutine for that connection
// reads the request, serves it and writes the reply.
//
// A connection opens with LocalMagic (HTTP/2 clients open with "PRI *", so
// the agent tells the two apart by the first bytes: Sniff). The client may
// send its first frame at once; the agent checks the caller's credentials
// (SO_PEERCRED, as for gRPC) and answers with one frame: empty when the
// caller may use the socket, else why not, and then closes. After that both
// sides exchange frames: a uvarint length, then that many bytes, a protobuf
// message of the service (for votequorum: VQRequest one way, VQMessage the
// other).

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// LocalMagic is the first bytes of every local-protocol connection.
const LocalMagic = "CQVQ\x01"

// http2Preface is how every gRPC (HTTP/2) client connection opens.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// MaxFrame is the largest frame a client accepts; servers choose their own
// bound for requests (NewFrameReader).
const MaxFrame = 16 << 20

// SniffTimeout bounds how long a new connection may take to say which
// protocol it speaks, and a local client's handshake.
const SniffTimeout = 10 * time.Second

// ErrFrameTooLarge is a frame longer than the reader accepts; the
// connection cannot be trusted after it and should be closed.
var ErrFrameTooLarge = errors.New("ipc: frame too large")

// AppendFrame appends m as one frame to b.
func AppendFrame(b []byte, m proto.Message) ([]byte, error) {
	n := proto.Size(m)
	b = binary.AppendUvarint(b, uint64(n))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
}

// appendRawFrame appends payload as one frame to b.
func appendRawFrame(b, payload []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(payload))), payload...)
}

// FrameReader reads frames from a connection.
type FrameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewFrameReader reads frames of at most max bytes from r.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// Next returns the next frame's payload, valid until the next call. A
// connection that ends between frames is io.EOF; inside one,
// io.ErrUnexpectedEOF.
func (f *FrameReader) Next() ([]byte, error) {
	n, err := binary.ReadUvarint(f.r)
	if err != nil {
		return nil, err
	}
	if n > uint64(f.max) {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, f.max)
	}
	if uint64(cap(f.buf)) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

// Read reads the next frame into m.
func (f *FrameReader) Read(m proto.Message) error {
	b, err := f.Next()
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("ipc: bad frame: %w", err)
	}
	return nil
}

// LocalConn is a local-protocol connection whose caller the policy allows;
// the magic is read and the caller told it is accepted.
type LocalConn struct {
	*net.UnixConn
	Cred Cred
}

// Sniff splits l by protocol: it returns the listener of the gRPC
// connections (to give to grpc.Server.Serve), and gives each
// local-protocol connection whose caller p allows to local, on a goroutine
// of its own. Callers p refuses get a frame saying so and are closed;
// connections that open with neither protocol's bytes are closed. Closing
// the returned listener closes l.
func Sniff(l net.Listener, p Policy, local func(*LocalConn)) net.Listener {
	return sniff(l, p.Allowed, local)
}

func sniff(l net.Listener, allowed func(Cred) bool, local func(*LocalConn)) net.Listener {
	s := &sniffer{l: l, allowed: allowed, local: local, conns: make(chan net.Conn), done: make(chan struct{})}
	go s.acceptLoop()
	return s
}

type sniffer struct {
	l       net.Listener
	allowed func(Cred) bool
	local   func(*LocalConn)
	conns   chan net.Conn // gRPC connections, for Accept
	done    chan struct{} // closed by Close or when l fails
	once    sync.Once
	err     error // why l failed, set before done is closed
}

func (s *sniffer) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := s.l.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() { // out of file descriptors, say
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-s.done:
					return
				}
			}
			s.once.Do(func() {
				s.err = err
				close(s.done)
			})
			return
		}
		backoff = 0
		go s.classify(c)
	}
}

// classify reads the first bytes of c and hands it on.
func (s *sniffer) classify(c net.Conn) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return
	}
	uc.SetReadDeadline(time.Now().Add(SniffTimeout))
	var head [len(LocalMagic)]byte
	if _, err := io.ReadFull(uc, head[:]); err != nil {
		uc.Close()
		return
	}
	uc.SetReadDeadline(time.Time{})
	switch string(head[:]) {
	case http2Preface[:len(head)]:
		select {
		case s.conns <- &replayConn{UnixConn: uc, pre: head[:]}:
		case <-s.done:
			uc.Close()
		}
	case LocalMagic:
		cred, err := PeerCred(uc)
		if err != nil {
			uc.Close()
			return
		}
		var status []byte
		if !s.allowed(cred) {
			status = fmt.Appendf(nil, "uid %d: %v", cred.UID, ErrDenied)
		}
		uc.SetWriteDeadline(time.Now().Add(SniffTimeout))
		_, err = uc.Write(appendRawFrame(nil, status))
		uc.SetWriteDeadline(time.Time{})
		if err != nil || status != nil {
			uc.Close()
			return
		}
		s.local(&LocalConn{UnixConn: uc, Cred: cred})
	default:
		uc.Close()
	}
}

// Accept returns the next gRPC connection.
func (s *sniffer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		if s.err != nil {
			return nil, s.err
		}
		return nil, net.ErrClosed
	}
}

func (s *sniffer) Close() error {
	s.once.Do(func() { close(s.done) })
	return s.l.Close()
}

func (s *sniffer) Addr() net.Addr { return s.l.Addr() }

// replayConn gives gRPC back the bytes the sniffer read.
type replayConn struct {
	*net.UnixConn
	pre []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.UnixConn.Read(b)
}

// DialLocal connects to the agent socket at path with the local protocol
// and sends hello as the first frame; it returns the connection and its
// reader once the agent accepted the caller and answered hello into reply.
// ctx bounds it (SniffTimeout when ctx has no deadline). The errors are
// Dial's, or the agent's refusal (permission denied, naming the uid).
func DialLocal(ctx context.Context, path string, hello, reply proto.Message) (*net.UnixConn, *FrameReader, error) {
	c, err := dialUnix(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	uc := c.(*net.UnixConn)
	deadline, bounded := ctx.Deadline()
	if !bounded {
		deadline = time.Now().Add(SniffTimeout)
	}
	uc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*net.UnixConn, *FrameReader, error) {
		stop()
		uc.Close()
		if bounded && errors.Is(err, os.ErrDeadlineExceeded) {
			select { // ctx's deadline, seen by the connection first
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	b, err := AppendFrame([]byte(LocalMagic), hello)
	if err != nil {
		return fail(err)
	}
	if _, err := uc.Write(b); err != nil {
		return fail(err)
	}
	fr := NewFrameReader(uc, MaxFrame)
	status, err := fr.Next()
	if err != nil {
		return fail(err)
	}
	if len(status) > 0 {
		stop()
		uc.Close()
		return nil, nil, errors.New(string(status))
	}
	if err := fr.Read(reply); err != nil {
		return fail(err)
	}
	if !stop() {
		return fail(ctx.Err())
	}
	uc.SetDeadline(time.Time{})
	return uc, fr, nil
}
