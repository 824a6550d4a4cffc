package transport

import (
	"bytes"
	"testing"
	"time"
)

// split cuts msg into fragments of size f, the way Send does.
func split(sender uint32, inc uint64, id uint32, msg []byte, f int) []Frag {
	count := (len(msg) + f - 1) / f
	var out []Frag
	for i := 0; i < count; i++ {
		end := min((i+1)*f, len(msg))
		out = append(out, Frag{Sender: sender, Incarnation: inc, Fragment: Fragment{MsgID: id, Index: uint16(i), Count: uint16(count), Total: uint32(len(msg))}, Data: msg[i*f : end]})
	}
	return out
}

func testMessage(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestReassembler(t *testing.T) {
	t0 := time.Unix(1000, 0)
	msgA := testMessage(1000, 1) // 4 fragments of 300: 300,300,300,100
	fa := split(2, 1, 1, msgA, 300)
	msgB := testMessage(900, 2) // 3 fragments of 300, last one full
	fb := split(3, 1, 1, msgB, 300)

	type step struct {
		at   time.Duration
		frag Frag
		want []byte // nil: not complete
	}
	mod := func(f Frag, m func(*Frag)) Frag { m(&f); return f }
	for _, tc := range []struct {
		name      string
		cfg       ReassemblerConfig
		steps     []step
		drops     ReassemblyDrops
		pending   int
		expireAt  time.Duration // if non-zero, Expire at this time before checking
		wantAfter int           // messages pending at the end
	}{
		{name: "in order", steps: []step{
			{0, fa[0], nil}, {0, fa[1], nil}, {0, fa[2], nil}, {0, fa[3], msgA},
		}},
		{name: "out of order, last first", steps: []step{
			{0, fa[3], nil}, {0, fa[1], nil}, {0, fa[0], nil}, {0, fa[2], msgA},
		}},
		{name: "full last fragment", steps: []step{
			{0, fb[2], nil}, {0, fb[0], nil}, {0, fb[1], msgB},
		}},
		{name: "interleaved senders", steps: []step{
			{0, fa[0], nil}, {0, fb[0], nil}, {0, fa[1], nil}, {0, fb[1], nil},
			{0, fa[2], nil}, {0, fb[2], msgB}, {0, fa[3], msgA},
		}},
		{name: "duplicates are ignored", steps: []step{
			{0, fa[0], nil}, {0, fa[0], nil}, {0, fa[1], nil}, {0, fa[1], nil}, {0, fa[2], nil}, {0, fa[3], msgA},
		}},
		{name: "duplicate with different content is corrupt", steps: []step{
			{0, fa[0], nil}, {0, mod(fa[0], func(f *Frag) { f.Data = testMessage(300, 9) }), nil},
			{0, fa[1], nil}, {0, fa[2], nil}, {0, fa[3], nil},
		}, drops: ReassemblyDrops{Corrupt: 1}, wantAfter: 1},
		{name: "missing fragment expires", steps: []step{
			{0, fa[0], nil}, {time.Second, fa[1], nil}, {1900 * time.Millisecond, fa[3], nil},
			{2 * time.Second, fb[0], nil}, // Add expires msgA first
		}, drops: ReassemblyDrops{Timeout: 1}, wantAfter: 1},
		{name: "expire by the clock alone", steps: []step{
			{0, fa[0], nil}, {0, fb[0], nil},
		}, expireAt: 2 * time.Second, drops: ReassemblyDrops{Timeout: 2}},
		{name: "timeout measured from the first fragment", steps: []step{
			{0, fa[0], nil}, {1999 * time.Millisecond, fa[1], nil}, {1999 * time.Millisecond, fa[2], nil}, {1999 * time.Millisecond, fa[3], msgA},
		}},
		{name: "same message id from a new incarnation is another message", steps: []step{
			{0, fa[0], nil}, {0, split(2, 2, 1, msgA, 300)[0], nil}, {0, fa[1], nil}, {0, fa[2], nil}, {0, fa[3], msgA},
		}, wantAfter: 1},
		{name: "count disagrees with the first fragment", steps: []step{
			{0, fa[0], nil}, {0, mod(fa[1], func(f *Frag) { f.Count = 5; f.Total = 1300 }), nil}, {0, fa[2], nil},
		}, drops: ReassemblyDrops{Corrupt: 1}, wantAfter: 1},
		{name: "fragment size disagrees", steps: []step{
			{0, fa[0], nil}, {0, mod(fa[1], func(f *Frag) { f.Data = f.Data[:299] }), nil},
		}, drops: ReassemblyDrops{Corrupt: 1}},
		{name: "inconsistent on its own", steps: []step{
			{0, mod(fa[0], func(f *Frag) { f.Count = 2 }), nil},                                  // 2*300 < 1000
			{0, mod(fa[3], func(f *Frag) { f.Data = testMessage(99, 0) }), nil},                  // 901 not a multiple of 3
			{0, mod(fa[3], func(f *Frag) { f.Total = 1300; f.Data = testMessage(400, 0) }), nil}, // last > F
			{0, mod(fa[0], func(f *Frag) { f.Index = 4 }), nil},
			{0, mod(fa[0], func(f *Frag) { f.Data = nil }), nil},
			{0, Frag{Sender: 2, Fragment: Fragment{Count: 1, Total: 10}, Data: []byte("short")}, nil},
		}, drops: ReassemblyDrops{Corrupt: 6}},
		{name: "fragments below the minimum size", steps: []step{
			{0, split(2, 1, 5, testMessage(400, 3), 100)[0], nil},
		}, drops: ReassemblyDrops{Corrupt: 1}},
		{name: "single fragment message", steps: []step{
			{0, split(2, 1, 5, msgA, 1000)[0], msgA},
		}},
		{name: "too large", cfg: ReassemblerConfig{MaxMessage: 999}, steps: []step{
			{0, fa[0], nil},
		}, drops: ReassemblyDrops{TooLarge: 1}},
		{name: "per-sender memory bound evicts that sender's oldest",
			cfg: ReassemblerConfig{MaxMessage: 1000, MaxPerSender: 2000, MaxTotal: 100000},
			steps: []step{
				{0, split(2, 1, 1, msgA, 300)[0], nil},
				{0, fb[0], nil}, // another sender, untouched
				{0, split(2, 1, 2, msgA, 300)[0], nil},
				{0, split(2, 1, 3, msgA, 300)[0], nil}, // evicts id 1
				{0, split(2, 1, 1, msgA, 300)[1], nil}, // id 1 starts over
			}, drops: ReassemblyDrops{Overflow: 2}, wantAfter: 3},
		{name: "total memory bound evicts the oldest",
			cfg: ReassemblerConfig{MaxMessage: 1000, MaxPerSender: 1000, MaxTotal: 2000},
			steps: []step{
				{0, fa[0], nil}, {0, fb[0], nil}, {0, split(4, 1, 1, msgA, 300)[0], nil}, // evicts sender 2
				{0, fa[1], nil}, // evicts sender 3 to start sender 2 again
			}, drops: ReassemblyDrops{Overflow: 2}, wantAfter: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReassembler(tc.cfg)
			for i, st := range tc.steps {
				data := st.frag.Data
				got, ok := r.Add(t0.Add(st.at), st.frag)
				if ok != (st.want != nil) || !bytes.Equal(got, st.want) {
					t.Fatalf("step %d: Add = %d bytes, %v; want %d bytes", i, len(got), ok, len(st.want))
				}
				if len(data) > 0 && len(got) > 0 && &got[0] == &data[0] {
					t.Fatalf("step %d: result aliases the caller's buffer", i)
				}
			}
			if tc.expireAt != 0 {
				r.Expire(t0.Add(tc.expireAt))
			}
			if d := r.Drops(); d != tc.drops {
				t.Fatalf("drops %+v, want %+v", d, tc.drops)
			}
			n, b := r.Pending()
			if n != tc.wantAfter {
				t.Fatalf("pending %d messages (%d bytes), want %d", n, b, tc.wantAfter)
			}
			if n == 0 && b != 0 {
				t.Fatalf("no message pending but %d bytes charged", b)
			}
		})
	}
}

// TestReassemblerAccounting drives a random workload and checks the memory
// bounds and the byte accounting after every step.
func TestReassemblerAccounting(t *testing.T) {
	cfg := ReassemblerConfig{MaxMessage: 8000, MaxPerSender: 16000, MaxTotal: 40000}
	r := NewReassembler(cfg)
	now := time.Unix(0, 0)
	rnd := uint64(99)
	next := func(n int) int { rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17; return int(rnd % uint64(n)) }
	done := 0
	for i := 0; i < 20000; i++ {
		now = now.Add(time.Duration(next(5)) * time.Millisecond)
		msg := testMessage(300+next(7700), byte(i))
		frags := split(uint32(next(6)), 1, uint32(next(40)), msg, 300+next(200))
		f := frags[next(len(frags))]
		if _, ok := r.Add(now, f); ok {
			done++
		}
		n, b := r.Pending()
		sum, per := 0, map[uint32]int{}
		for _, p := range r.msgs {
			sum += p.charged
			per[p.key.sender] += p.charged
		}
		if b != sum || n != len(r.msgs) || b > cfg.MaxTotal {
			t.Fatalf("step %d: pending %d/%d bytes, sum %d, bound %d", i, n, b, sum, cfg.MaxTotal)
		}
		for s, v := range per {
			if v != r.perSender[s] || v > cfg.MaxPerSender {
				t.Fatalf("step %d: sender %d holds %d, accounted %d, bound %d", i, s, v, r.perSender[s], cfg.MaxPerSender)
			}
		}
	}
	t.Logf("completed %d, drops %+v", done, r.Drops())
}
