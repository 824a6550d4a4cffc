package agent

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conclave/conclave/api/clientpb"
)

// server implements the client API by asking the loop.
type server struct {
	clientpb.UnimplementedAgentServer
	a *Agent
}

func (s *server) Status(ctx context.Context, _ *clientpb.StatusRequest) (*clientpb.StatusReply, error) {
	reply := make(chan *clientpb.StatusReply, 1)
	select {
	case s.a.statusCh <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *server) Watch(_ *clientpb.WatchRequest, stream clientpb.Agent_WatchServer) error {
	w := &watcher{ch: make(chan *clientpb.Event, 1024), gone: make(chan struct{})}
	ctx := stream.Context()
	select {
	case s.a.watchCh <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		select {
		case ev := <-w.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-w.gone:
			return status.Error(codes.Unavailable, w.reason.Error())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *server) Publish(stream clientpb.Agent_PublishServer) error {
	ctx := stream.Context()
	var queued uint64
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&clientpb.PublishReply{Queued: queued})
		}
		if err != nil {
			return err
		}
		p := &publishReq{done: make(chan error, 1)}
		for _, pl := range req.Payloads {
			b := make([]byte, 1+len(pl))
			b[0] = svcMessages
			copy(b[1:], pl)
			p.payloads = append(p.payloads, b)
		}
		n := len(p.payloads)
		select {
		case s.a.publishCh <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Wait until the agent queued them: this is the flow control that
		// keeps a fast publisher from exhausting the agent's memory.
		select {
		case err := <-p.done:
			if err != nil {
				return status.Error(codes.ResourceExhausted, err.Error())
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		queued += uint64(n)
	}
}

func (s *server) Subscribe(req *clientpb.SubscribeRequest, stream clientpb.Agent_SubscribeServer) error {
	sub := &subscriber{payloads: req.Payloads, ch: make(chan *clientpb.DeliveryBatch, 4096), gone: make(chan struct{})}
	ctx := stream.Context()
	select {
	case s.a.subscribeCh <- sub:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		select {
		case b := <-sub.ch:
			if err := stream.Send(b); err != nil {
				return err
			}
		case <-sub.gone:
			return status.Error(codes.Unavailable, sub.reason.Error())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
