// Command testqdevice is a small quorum device for trying the quorum device
// API (and for tests): it registers a device with the local agent, follows
// the membership through the nodelist callback, and polls with the current
// ring id every --interval, casting its vote or not, as corosync-qdevice
// does after asking its arbiter. SIGINT or SIGTERM unregisters and exits.
//
//	go run ./examples/testqdevice --socket /run/conclave/conclave.sock --vote
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/votequorum"
)

func main() {
	socket := flag.String("socket", "", "agent socket (default $CONCLAVE_SOCKET, then /run/conclave/conclave.sock)")
	name := flag.String("name", "Qdevice", "device name (every node must use the same)")
	vote := flag.Bool("vote", true, "cast the device's vote")
	interval := flag.Duration("interval", 5*time.Second, "poll interval (corosync-qdevice polls every device timeout / 2)")
	masterWins := flag.Bool("master-wins", false, "declare master_wins")
	flag.Parse()
	if err := run(*socket, *name, *vote, *interval, *masterWins); err != nil {
		log.Fatal(err)
	}
}

func run(socket, name string, vote bool, interval time.Duration, masterWins bool) error {
	var mu sync.Mutex
	var ring votequorum.RingID
	changed := make(chan struct{}, 1)
	cb := &votequorum.Callbacks{
		Nodelist: func(_ *votequorum.Handle, _ uint64, r votequorum.RingID, members []uint32) {
			mu.Lock()
			ring = r
			mu.Unlock()
			log.Printf("membership %s: %v", r, members)
			select {
			case changed <- struct{}{}: // poll the new ring at once: the agent holds the view for it
			default:
			}
		},
		Quorum: func(_ *votequorum.Handle, _ uint64, quorate bool, r votequorum.RingID, _ []votequorum.Node) {
			log.Printf("quorate=%v ring %s", quorate, r)
		},
	}
	var opts []votequorum.Option
	if socket != "" {
		opts = append(opts, votequorum.WithSocket(socket))
	}
	h, err := votequorum.Initialize(cb, opts...)
	if err != nil {
		return fmt.Errorf("votequorum_initialize: %w", err)
	}
	defer h.Finalize()
	if err := h.QdeviceRegister(name); err != nil {
		return fmt.Errorf("registering device %q: %w", name, err)
	}
	defer func() {
		if err := h.QdeviceUnregister(name); err != nil {
			log.Printf("unregistering: %v", err)
		}
	}()
	if err := h.QdeviceMasterWins(name, masterWins); err != nil {
		return fmt.Errorf("master_wins: %w", err)
	}
	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		return fmt.Errorf("trackstart: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go h.Run(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		mu.Lock()
		r := ring
		mu.Unlock()
		if r != (votequorum.RingID{}) {
			// A stale ring id is refused with CS_ERR_MESSAGE_ERROR; the
			// nodelist callback brings the new one.
			if err := h.QdevicePoll(name, vote, r); err != nil && !errors.Is(err, cs.ErrMessageError) {
				return fmt.Errorf("poll: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-changed:
		}
	}
}
