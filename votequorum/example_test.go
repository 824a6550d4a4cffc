package votequorum_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/votequorum"
)

// Ask the local agent whether this node is quorate, then follow every
// change: the C pattern of trackstart + Fd + Dispatch, with Run doing the
// dispatching on a goroutine.
func Example() {
	cb := &votequorum.Callbacks{
		Quorum: func(_ *votequorum.Handle, _ uint64, quorate bool, ring votequorum.RingID, nodes []votequorum.Node) {
			fmt.Printf("ring %s: quorate=%v, %d known nodes\n", ring, quorate, len(nodes))
		},
		Nodelist: func(_ *votequorum.Handle, _ uint64, ring votequorum.RingID, members []uint32) {
			fmt.Printf("ring %s: members %v\n", ring, members)
		},
	}
	h, err := votequorum.Initialize(cb) // $CONCLAVE_SOCKET or /run/conclave/conclave.sock
	if err != nil {
		log.Fatal(err) // cs.ErrLibrary when no agent runs
	}
	defer h.Finalize()

	info, err := h.GetInfo(0) // 0 = this node
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("node %d: %d of %d expected votes, quorum %d, quorate %v\n",
		info.NodeID, info.TotalVotes, info.NodeExpectedVotes, info.Quorum, info.Flags&votequorum.InfoQuorate != 0)

	// Errors are cs_error_t values.
	if err := h.SetExpected(info.TotalVotes - 1); errors.Is(err, cs.ErrInvalidParam) {
		fmt.Println("expected votes cannot go below the total votes")
	}

	if err := h.TrackStart(0, cs.TrackChanges); err != nil {
		log.Fatal(err)
	}
	// Either poll h.Fd() and call h.Dispatch(cs.DispatchAll), as a C
	// program would, or let Run dispatch until the context ends.
	if err := h.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
