package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/ipc"
)

// statusTimeout bounds one Status call inside the wait loops, so that an
// agent stopped with SIGSTOP cannot hang them past their context.
const statusTimeout = time.Second

func (n *Node) dropConn() {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
}

// cachedConn returns the node's cached connection, dialling one if needed.
// gRPC reconnects by itself, but with a backoff of up to minutes; a
// connection that failed once is dropped instead, so that the next call
// dials afresh and finds a restarted agent at once.
func (n *Node) cachedConn(ctx context.Context) (*grpc.ClientConn, error) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.conn != nil {
		return n.conn, nil
	}
	conn, err := ipc.Dial(ctx, n.Socket)
	if err != nil {
		return nil, err
	}
	n.conn = conn
	return conn, nil
}

// Status asks node id's agent for its status.
func (c *Cluster) Status(ctx context.Context, id uint32) (*clientpb.StatusReply, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, err
	}
	conn, err := n.cachedConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", id, err)
	}
	r, err := clientpb.NewAgentClient(conn).Status(ctx, &clientpb.StatusRequest{})
	if err != nil {
		n.dropConn()
		return nil, fmt.Errorf("node %d: status: %w", id, err)
	}
	return r, nil
}

// Client connects to node id's agent. Close the returned io.Closer when
// done.
func (c *Cluster) Client(ctx context.Context, id uint32) (clientpb.AgentClient, io.Closer, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, nil, err
	}
	conn, err := ipc.Dial(ctx, n.Socket)
	if err != nil {
		return nil, nil, fmt.Errorf("node %d: %w", id, err)
	}
	return clientpb.NewAgentClient(conn), conn, nil
}

// Watch streams node id's membership events until ctx ends or the agent
// goes away; the channel is closed then. It retries until the agent's
// socket is up, so it may be called right after StartNode. The first event
// is the agent's current view, if it has one.
func (c *Cluster) Watch(ctx context.Context, id uint32) (<-chan *clientpb.Event, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, err
	}
	// A Status call proves the agent serves; the stream itself says
	// nothing until the first event, which an agent without a view yet
	// does not send at once.
	var conn *grpc.ClientConn
	var stream grpc.ServerStreamingClient[clientpb.Event]
	err = c.retry(ctx, id, func(cctx context.Context) error {
		cc, err := ipc.Dial(cctx, n.Socket)
		if err != nil {
			return err
		}
		client := clientpb.NewAgentClient(cc)
		if _, err := client.Status(cctx, &clientpb.StatusRequest{}); err != nil {
			cc.Close()
			return err
		}
		// The stream lives on after this attempt: it takes ctx, not cctx.
		s, err := client.Watch(ctx, &clientpb.WatchRequest{})
		if err != nil {
			cc.Close()
			return err
		}
		conn, stream = cc, s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %d: watch: %w", id, err)
	}
	ch := make(chan *clientpb.Event, 1024)
	go func() {
		defer close(ch)
		defer conn.Close()
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// retry calls f with backoff (2 ms growing to 100 ms) until it succeeds or
// ctx ends. It gives up early if node id's process exited.
func (c *Cluster) retry(ctx context.Context, id uint32, f func(context.Context) error) error {
	delay := 2 * time.Millisecond
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, statusTimeout)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if p, perr := c.proc(id); perr == nil && p.exited() {
			return fmt.Errorf("the agent exited (%s): %w; log tail:\n%s", exitString(p.err), last, c.LogTail(id, 10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 100*time.Millisecond)
	}
}

// WaitSocket waits until node id's agent answers Status on its socket. It
// fails early if the agent exits, with the end of its log.
func (c *Cluster) WaitSocket(ctx context.Context, id uint32) error {
	if _, err := c.node(id); err != nil {
		return err
	}
	err := c.retry(ctx, id, func(ctx context.Context) error {
		_, err := c.Status(ctx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("node %d: waiting for its socket: %w", id, err)
	}
	return nil
}

// DescribeStatus renders the parts of a status that say which view a node
// is in, for messages: "operational installed ring 1.2a members [1 2 3]".
func DescribeStatus(r *clientpb.StatusReply) string {
	inst := "not installed"
	if r.Installed {
		inst = "installed"
	}
	return fmt.Sprintf("%s %s ring %s members %v", r.State, inst, r.RingId.Text(), r.Members)
}

// SameRing reports whether two ring ids are equal (nil equals only nil).
func SameRing(a, b *clientpb.RingID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Rep == b.Rep && a.Seq == b.Seq
}

// InView reports whether a status says: operational, view installed, with
// exactly these members (sorted).
func InView(r *clientpb.StatusReply, members []uint32) bool {
	return r.State == "operational" && r.Installed && r.RingId != nil && slices.Equal(r.Members, members)
}

// WaitView polls the nodes in ids (every 2 ms at first, backing off to
// 100 ms) until every one is operational and installed in the same ring
// with exactly members, and returns that ring. On ctx expiry the error
// says what each node reported last; it fails early if one of the nodes'
// agents exits.
func (c *Cluster) WaitView(ctx context.Context, ids []uint32, members []uint32) (*clientpb.RingID, error) {
	want := slices.Clone(members)
	slices.Sort(want)
	for _, id := range ids {
		if _, err := c.node(id); err != nil {
			return nil, err
		}
	}
	last := make(map[uint32]string, len(ids))
	delay := 2 * time.Millisecond
	for {
		var ring *clientpb.RingID
		ok := true
		for _, id := range ids {
			if p, err := c.proc(id); err != nil {
				return nil, err
			} else if p.exited() {
				return nil, fmt.Errorf("waiting for view %v at nodes %v: node %d exited (%s); log tail:\n%s",
					want, ids, id, exitString(p.err), c.LogTail(id, 10))
			}
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			r, err := c.Status(cctx, id)
			cancel()
			if err != nil {
				last[id] = err.Error()
				ok = false
				continue
			}
			last[id] = DescribeStatus(r)
			switch {
			case !InView(r, want):
				ok = false
			case ring == nil:
				ring = r.RingId
			case !SameRing(ring, r.RingId):
				ok = false
			}
		}
		if ok {
			return ring, nil
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, id := range ids {
				fmt.Fprintf(&b, "\n  node %d: %s", id, last[id])
			}
			return nil, fmt.Errorf("waiting for view %v at nodes %v: %w; last seen:%s", want, ids, ctx.Err(), b.String())
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 100*time.Millisecond)
	}
}

// errNotNetns is returned by the fault-injection methods in loopback mode.
var errNotNetns = errors.New("lab: needs a cluster started with Options.Netns")
