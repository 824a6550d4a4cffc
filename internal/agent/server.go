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
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	return s.a.status(), nil
}

func (s *server) Watch(_ *clientpb.WatchRequest, stream clientpb.Agent_WatchServer) error {
	w := &watcher{ch: make(chan *clientpb.Event, 1024), gone: make(chan struct{})}
	ctx := stream.Context()
	s.a.mu.Lock()
	s.a.watchers = append(s.a.watchers, w)
	if s.a.lastEvent != nil {
		s.a.sendEvent(w, s.a.lastEvent)
	}
	s.a.mu.Unlock()
	defer s.a.dropWatcher(w)
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
		// Queue what fits now and act on it on this goroutine; the rest
		// waits until deliveries make room. That wait is the flow control
		// that keeps a fast publisher from exhausting the agent's memory.
		s.a.mu.Lock()
		s.a.pending = append(s.a.pending, p)
		s.a.unlockAfter()
		select {
		case err := <-p.done:
			if err != nil {
				return status.Error(codes.ResourceExhausted, err.Error())
			}
		case <-ctx.Done():
			s.a.cancelPublish(p)
			return ctx.Err()
		}
		queued += uint64(len(req.Payloads))
	}
}

func (s *server) Subscribe(req *clientpb.SubscribeRequest, stream clientpb.Agent_SubscribeServer) error {
	sub := &subscriber{payloads: req.Payloads, ch: make(chan *clientpb.DeliveryBatch, 4096), gone: make(chan struct{})}
	ctx := stream.Context()
	s.a.mu.Lock()
	s.a.subscribers = append(s.a.subscribers, sub)
	sub.ch <- &clientpb.DeliveryBatch{} // the subscription is live from here on
	s.a.mu.Unlock()
	defer s.a.dropSubscriber(sub)
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
