package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/lab"
)

// messageCheck publishes count messages at each node of publishers, while
// every node of subscribers subscribes, and checks that every subscriber
// delivers all of them, in one and the same order, each publisher's in the
// order it published them. If midway is not nil it is called once, when
// the first subscriber has delivered a third of the messages.
func messageCheck(t *testing.T, c *lab.Cluster, subscribers, publishers []uint32, count int, timeout time.Duration, midway func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	type sub struct {
		id   uint32
		mu   sync.Mutex
		got  []string // payloads, in delivery order
		cond chan struct{}
		err  error
	}
	subs := make([]*sub, len(subscribers))
	var wg sync.WaitGroup
	// Also on t.Fatal: no goroutine may outlive the test.
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, id := range subscribers {
		client, closer, err := c.Client(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		stream, err := client.Subscribe(ctx, &clientpb.SubscribeRequest{Payloads: true})
		if err != nil {
			t.Fatal(err)
		}
		s := &sub{id: id, cond: make(chan struct{}, 1)}
		subs[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b, err := stream.Recv()
				if err != nil {
					s.mu.Lock()
					s.err = err
					s.mu.Unlock()
					return
				}
				s.mu.Lock()
				for _, d := range b.Deliveries {
					s.got = append(s.got, string(d.Payload))
				}
				s.mu.Unlock()
				select {
				case s.cond <- struct{}{}:
				default:
				}
			}
		}()
	}
	snapshot := func(s *sub) ([]string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append([]string(nil), s.got...), s.err
	}

	// A subscription is registered some time after the call returns. Ping
	// until every subscriber delivered a ping: messages published after that
	// are ordered after it, so every subscriber must deliver all of them.
	pub := func(id uint32, payloads ...string) error {
		client, closer, err := c.Client(ctx, id)
		if err != nil {
			return err
		}
		defer closer.Close()
		stream, err := client.Publish(ctx)
		if err != nil {
			return err
		}
		req := &clientpb.PublishRequest{}
		for _, p := range payloads {
			req.Payloads = append(req.Payloads, []byte(p))
			// Several requests per stream, as a real client sends them.
			if len(req.Payloads) == 16 {
				if err := stream.Send(req); err != nil {
					return err
				}
				req = &clientpb.PublishRequest{}
			}
		}
		if len(req.Payloads) > 0 {
			if err := stream.Send(req); err != nil {
				return err
			}
		}
		r, err := stream.CloseAndRecv()
		if err != nil {
			return err
		}
		if r.Queued != uint64(len(payloads)) {
			return fmt.Errorf("node %d queued %d of %d messages", id, r.Queued, len(payloads))
		}
		return nil
	}
	for ping := 0; ; ping++ {
		if err := pub(publishers[0], fmt.Sprintf("ping-%d", ping)); err != nil {
			t.Fatal(err)
		}
		all := true
		for _, s := range subs {
			got, err := snapshot(s)
			if err != nil {
				t.Fatalf("node %d: subscription: %v", s.id, err)
			}
			if len(got) == 0 {
				all = false
			}
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("subscribers never delivered a ping")
		case <-time.After(20 * time.Millisecond):
		}
	}

	want := count * len(publishers)
	if midway != nil {
		// Interrupt while messages are being published and ordered.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				got, _ := snapshot(subs[0])
				if n := len(got); n >= want/3 {
					t.Logf("midway: node %d delivered %d messages", subs[0].id, n)
					midway()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}

	// Publish concurrently at every publisher.
	errs := make(chan error, len(publishers))
	for _, id := range publishers {
		go func() {
			var payloads []string
			for i := range count {
				payloads = append(payloads, fmt.Sprintf("m-%d-%04d", id, i))
			}
			errs <- pub(id, payloads...)
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if midway != nil {
		got, _ := snapshot(subs[0])
		t.Logf("all published: node %d delivered %d messages", subs[0].id, len(got))
	}

	// Wait for every subscriber to deliver every message.
	msgs := func(got []string) []string {
		var out []string
		for _, p := range got {
			if strings.HasPrefix(p, "m-") {
				out = append(out, p)
			}
		}
		return out
	}
	results := make([][]string, len(subs))
	for i, s := range subs {
		for {
			got, err := snapshot(s)
			results[i] = msgs(got)
			if len(results[i]) >= want {
				break
			}
			if err != nil {
				t.Fatalf("node %d: subscription ended after %d of %d messages: %v", s.id, len(results[i]), want, err)
			}
			select {
			case <-s.cond:
			case <-ctx.Done():
				t.Fatalf("node %d delivered %d of %d messages", s.id, len(results[i]), want)
			}
		}
	}
	for i, s := range subs {
		got := results[i]
		if len(got) != want {
			t.Errorf("node %d delivered %d messages, want %d", s.id, len(got), want)
		}
		// Per publisher: each message once, in publication order.
		next := map[string]int{}
		for _, p := range got {
			var from, n int
			if _, err := fmt.Sscanf(p, "m-%d-%d", &from, &n); err != nil {
				t.Fatalf("node %d delivered %q", s.id, p)
			}
			key := fmt.Sprint(from)
			if n != next[key] {
				t.Errorf("node %d delivered %s when message %d of node %d was next", s.id, p, next[key], from)
				break
			}
			next[key]++
		}
		if i > 0 {
			for j := range min(len(got), len(results[0])) {
				if got[j] != results[0][j] {
					t.Errorf("delivery %d: node %d delivered %s, node %d delivered %s: the orders differ",
						j, s.id, got[j], subs[0].id, results[0][j])
					break
				}
			}
		}
	}
}

// TestPublishSubscribe: messages published at two nodes are delivered at
// all three in the same order.
func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3})
	waitView(t, c, ids(3), ids(3))
	messageCheck(t, c, ids(3), []uint32{1, 2}, 500, waitTimeout, nil)
}

// TestMessagesAcrossViewChange: node 3 is killed while messages from nodes
// 1 and 2 are being ordered; the survivors move to the new view together,
// so they deliver the same messages in the same order (virtual synchrony),
// and none of their own is lost.
func TestMessagesAcrossViewChange(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Cleartext: true})
	r1 := waitView(t, c, ids(3), ids(3))
	messageCheck(t, c, []uint32{1, 2}, []uint32{1, 2}, 3000, waitTimeout, func() {
		if err := c.Kill(3); err != nil {
			t.Error(err)
		}
	})
	r2 := waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	if r2.Seq <= r1.Seq {
		t.Errorf("ring %s not above %s", r2, r1)
	}
}
