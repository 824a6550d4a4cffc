package quorum

import (
	"math/rand/v2"
	"testing"
)

// naiveQuorum is the quorum as votequorum(5) describes it, written
// independently of calculateQuorum: a strict majority, floor(x/2)+1, of the
// expected votes (the largest any member expects, unless an override is
// given; allow_downscale never lets the override fall below the
// configured/last-set value) and of the votes present; the quorum does not
// fall unless decreases are allowed; two_node makes it 1 with at most two
// voters. Arithmetic in int64, so it is exact where the uint32 C code does
// not wrap.
func naiveQuorum(members []node, deviceVotes int64, deviceVoting bool, current int64,
	allowDecrease bool, override, evBarrier int64, downscale, twoNode bool) (quorum, total int64) {
	var expected, voters int64
	for _, n := range members {
		if n.state != NodestateMember {
			continue
		}
		total += int64(n.votes)
		voters++
		if int64(n.expected) > expected {
			expected = int64(n.expected)
		}
	}
	if deviceVoting {
		total += deviceVotes
		voters++
	}
	if override > 0 {
		expected = override
		if downscale && allowDecrease && evBarrier > override {
			expected = evBarrier
		}
	}
	quorum = expected/2 + 1
	if total/2+1 > quorum {
		quorum = total/2 + 1
	}
	if !allowDecrease && current > quorum {
		quorum = current
	}
	if twoNode && voters <= 2 {
		quorum = 1
	}
	return quorum, total
}

// TestCalculateQuorumAgainstNaive compares calculateQuorum with the naive
// model over random tables (fixed seeds, so failures reproduce).
func TestCalculateQuorumAgainstNaive(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		for range 2000 {
			e := mustNew(t, nodelist(1)(1))
			n := 1 + rng.IntN(12)
			small := rng.IntN(4) != 0 // mostly cluster-sized numbers, sometimes large
			val := func() uint32 {
				if small {
					return uint32(rng.IntN(10))
				}
				return uint32(rng.IntN(1 << 28))
			}
			e.nodes = nil
			var table []node
			for i := range n {
				nd := node{id: NodeID(i + 1), state: uint32(1 + rng.IntN(3)), votes: val(), expected: val()}
				if i == 0 {
					nd.state = NodestateMember
					if rng.IntN(2) == 0 {
						nd.flags = flagQdevCastVote
					}
				}
				table = append(table, nd)
				c := nd
				e.nodes = append(e.nodes, &c)
			}
			e.us = e.nodes[0]
			e.self = 1
			e.qdev.votes = val()
			e.quorum = uint8(rng.IntN(256))
			e.twoNode = rng.IntN(3) == 0
			e.allowDownscale = rng.IntN(3) == 0
			e.evBarrier = val()
			allow := rng.IntN(2) == 0
			override := uint32(0)
			if rng.IntN(2) == 0 {
				override = val()
			}
			gotQ, gotT := e.calculateQuorum(allow, override)
			wantQ, wantT := naiveQuorum(table, int64(e.qdev.votes), table[0].flags&flagQdevCastVote != 0,
				int64(e.quorum), allow, int64(override), int64(e.evBarrier), e.allowDownscale, e.twoNode)
			if int64(gotQ) != wantQ || int64(gotT) != wantT {
				t.Fatalf("seed %d: table %+v device %d (voting %v) quorum %d allow %v override %d barrier %d downscale %v two_node %v:\n got q=%d T=%d, want q=%d T=%d",
					seed, table, e.qdev.votes, table[0].flags&flagQdevCastVote != 0, e.quorum, allow, override, e.evBarrier,
					e.allowDownscale, e.twoNode, gotQ, gotT, wantQ, wantT)
			}
		}
	}
}

// TestQuorateAgainstNaive: without wait_for_all, ATB and master_wins a
// node is quorate exactly when the votes present reach the quorum, and
// the quorum is the man page's floor(E/2)+1 over the expected votes.
func TestQuorateAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 3000 {
		n := 1 + rng.IntN(9)
		up := 1 + rng.IntN(n)
		votes := make([]uint32, n)
		var sum int64
		for i := range votes {
			votes[i] = uint32(rng.IntN(4))
			sum += int64(votes[i])
		}
		if sum == 0 {
			continue
		}
		cfg := func(id NodeID) Config {
			c := Config{Self: id}
			for i, v := range votes {
				c.Nodes = append(c.Nodes, NodeVotes{ID: NodeID(i + 1), Votes: v})
			}
			c.Quorum.WaitForAll = bp(false)
			return c
		}
		h := newHarness(t, cfg)
		h.boot(ids(1, up)...)
		var present int64
		for _, v := range votes[:up] {
			present += int64(v)
		}
		expected := max(sum, present)
		wantQ := max(expected/2+1, present/2+1)
		in := h.info(1)
		if int64(in.Quorum) != wantQ || int64(in.TotalVotes) != present || (in.Flags&InfoQuorate != 0) != (present >= wantQ) {
			t.Fatalf("votes %v, %d up: %+v, want quorum %d total %d", votes, up, in, wantQ, present)
		}
	}
}
