package lab

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/conclave/conclave/api/clientpb"
)

// Timings in this file come from the agents' own event timestamps (they all
// read the same host clock), so how fast the caller polls does not enter the
// figures.

// InstalledAt returns when the last of ids installed ring. Each node's event
// stream opens with its current view, stamped when the agent saw it.
func (c *Cluster) InstalledAt(ctx context.Context, ids []uint32, ring *clientpb.RingID) (time.Time, error) {
	var at time.Time
	for _, id := range ids {
		ch, err := c.Watch(ctx, id)
		if err != nil {
			return at, err
		}
		select {
		case ev, ok := <-ch:
			if !ok {
				return at, fmt.Errorf("node %d closed its event stream", id)
			}
			if !SameRing(ev.RingId, ring) {
				return at, fmt.Errorf("node %d moved on to ring %s", id, ev.RingId.Text())
			}
			if t := time.Unix(0, ev.UnixNano); t.After(at) {
				at = t
			}
		case <-ctx.Done():
			return at, ctx.Err()
		}
	}
	return at, nil
}

// WatchNews opens event streams on ids and consumes the current view each
// opens with, so what the streams deliver from now on is news.
func (c *Cluster) WatchNews(ctx context.Context, ids []uint32) (map[uint32]<-chan *clientpb.Event, error) {
	out := map[uint32]<-chan *clientpb.Event{}
	for _, id := range ids {
		ch, err := c.Watch(ctx, id)
		if err != nil {
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		out[id] = ch
	}
	return out, nil
}

// WaitInstalled waits until every stream in watches reports an installed
// view of exactly members, and returns the latest of their timestamps.
func WaitInstalled(ctx context.Context, watches map[uint32]<-chan *clientpb.Event, members []uint32) (time.Time, error) {
	var last time.Time
	for id, ch := range watches {
		for done := false; !done; {
			select {
			case ev, ok := <-ch:
				if !ok {
					return last, fmt.Errorf("node %d closed its event stream", id)
				}
				if ev.Kind == clientpb.Event_INSTALLED && slices.Equal(ev.Members, members) {
					if t := time.Unix(0, ev.UnixNano); t.After(last) {
						last = t
					}
					done = true
				}
			case <-ctx.Done():
				return last, fmt.Errorf("node %d: no view %v: %w", id, members, ctx.Err())
			}
		}
	}
	return last, nil
}
