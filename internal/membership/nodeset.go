package membership

import "math/bits"

// nodeSet is a set of nodes as a bitmap over their index in the sorted
// nodelist. It travels in heartbeats (Heartbeat.deaf) as little-endian
// 64-bit words.
type nodeSet []uint64

func newNodeSet(n int) nodeSet { return make(nodeSet, (n+63)/64) }

func (s nodeSet) has(i int) bool {
	w := i / 64
	return w < len(s) && s[w]&(1<<(uint(i)%64)) != 0
}

func (s nodeSet) set(i int)   { s[i/64] |= 1 << (uint(i) % 64) }
func (s nodeSet) clear(i int) { s[i/64] &^= 1 << (uint(i) % 64) }

func (s nodeSet) or(o nodeSet) {
	for i := range min(len(s), len(o)) {
		s[i] |= o[i]
	}
}

func (s nodeSet) intersects(o nodeSet) bool {
	for i := range min(len(s), len(o)) {
		if s[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

func (s nodeSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

func (s nodeSet) equal(o nodeSet) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// bytes encodes the set for the wire.
func (s nodeSet) bytes() []byte {
	b := make([]byte, 8*len(s))
	for i, w := range s {
		for j := range 8 {
			b[8*i+j] = byte(w >> (8 * j))
		}
	}
	return b
}

// nodeSetFrom decodes a wire set for a nodelist of n nodes. Extra bytes are
// ignored and missing ones read as empty, so a malformed set cannot make the
// engine index out of range.
func nodeSetFrom(b []byte, n int) nodeSet {
	s := newNodeSet(n)
	for i := range s {
		for j := range 8 {
			k := 8*i + j
			if k < len(b) {
				s[i] |= uint64(b[k]) << (8 * j)
			}
		}
	}
	if r := n % 64; r != 0 && len(s) > 0 {
		s[len(s)-1] &= (1 << uint(r)) - 1
	}
	return s
}
