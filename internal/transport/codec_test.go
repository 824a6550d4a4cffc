package transport

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/netip"
	"testing"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	otherKey  = []byte("fedcba9876543210fedcba9876543210")
	addrNode1 = netip.MustParseAddr("127.0.0.1")
	addrNode2 = netip.MustParseAddr("127.0.0.2")
	addrNode3 = netip.MustParseAddr("127.0.0.3")
)

const testCluster = "test-cluster"

// codecPeers: node 2 has two links, node 3 only link 0.
func codecPeers() map[uint32][]netip.AddrPort {
	return map[uint32][]netip.AddrPort{
		1: {netip.AddrPortFrom(addrNode1, 5405), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 5405)},
		2: {netip.AddrPortFrom(addrNode2, 5405), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), 5405)},
		3: {netip.AddrPortFrom(addrNode3, 5405)},
	}
}

func mustSealer(t testing.TB, cluster string, key []byte, self uint32, inc uint64) *Sealer {
	t.Helper()
	s, err := NewSealer(cluster, key, self, inc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpener(t testing.TB, key []byte, self uint32) *Opener {
	t.Helper()
	o, err := NewOpener(OpenerConfig{ClusterName: testCluster, Key: key, Self: self, Incarnation: 1, Peers: codecPeers()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestClusterTag(t *testing.T) {
	a, b := ClusterTagOf("alpha"), ClusterTagOf("beta")
	if a == b || a != ClusterTagOf("alpha") {
		t.Fatalf("tags: alpha %x beta %x", a, b)
	}
	sum := sha256.Sum256([]byte("conclave-cluster\x00alpha"))
	if !bytes.Equal(a[:], sum[:8]) {
		t.Fatalf("tag of alpha = %x, want %x", a, sum[:8])
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     []byte
		payload []byte
		frag    *Fragment
	}{
		{"encrypted empty", testKey, nil, nil},
		{"encrypted small", testKey, []byte("hello, ring"), nil},
		{"encrypted 1400", testKey, bytes.Repeat([]byte{0xA5}, 1400), nil},
		{"encrypted fragment", testKey, bytes.Repeat([]byte{7}, 1000), &Fragment{MsgID: 9, Index: 1, Count: 3, Total: 2500}},
		{"cleartext small", nil, []byte("hello, ring"), nil},
		{"cleartext fragment", nil, bytes.Repeat([]byte{7}, 1000), &Fragment{MsgID: 9, Index: 2, Count: 3, Total: 2500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSealer(t, testCluster, tc.key, 2, 77)
			o := mustOpener(t, tc.key, 1)
			frame := s.Seal(nil, 1, 1, 1, tc.frag, tc.payload)
			wantLen := HeaderLen + len(tc.payload) + s.Overhead()
			if tc.frag != nil {
				wantLen += FragmentHeaderLen - HeaderLen
			}
			if len(frame) != wantLen {
				t.Fatalf("frame length %d, want %d", len(frame), wantLen)
			}
			if tc.key != nil && len(tc.payload) > 8 && bytes.Contains(frame, tc.payload[:8]) {
				t.Fatal("encrypted frame contains the plaintext")
			}
			h, got, err := o.Open(netip.MustParseAddr("10.0.0.2"), 1, frame)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.payload) {
				t.Fatalf("payload %q, want %q", got, tc.payload)
			}
			if h.Sender != 2 || h.Dest != 1 || h.Link != 1 || h.Incarnation != 77 || h.Counter != 1 || h.DestIncarnation != 1 {
				t.Fatalf("header %+v", h)
			}
			if (h.Flags&FlagEncrypted != 0) != (tc.key != nil) {
				t.Fatalf("flags %#x", h.Flags)
			}
			if tc.frag != nil && (h.Flags&FlagFragment == 0 || h.Frag != *tc.frag) {
				t.Fatalf("fragment %+v, want %+v", h.Frag, *tc.frag)
			}
		})
	}
}

// TestOpenDrops checks every drop reason of a single frame.
func TestOpenDrops(t *testing.T) {
	src2 := addrNode2
	type input struct {
		src   netip.Addr
		link  int
		frame []byte
	}
	seal := func(key []byte, cluster string, from, to uint32, link int, payload string) []byte {
		return mustSealer(t, cluster, key, from, 1).Seal(nil, to, 0, link, nil, []byte(payload))
	}
	flip := func(b []byte, i int) []byte { b[i] ^= 0x01; return b }
	for _, tc := range []struct {
		name string
		key  []byte // opener key
		in   func() input
		want error
	}{
		{"forged: flipped ciphertext byte", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), HeaderLen+2)}
		}, ErrForged},
		{"forged: flipped gcm tag byte", testKey, func() input {
			f := seal(testKey, testCluster, 2, 1, 0, "payload")
			return input{src2, 0, flip(f, len(f)-1)}
		}, ErrForged},
		{"forged: flipped incarnation byte in header", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), 31)}
		}, ErrForged},
		{"forged: flipped counter byte in header", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), 38)}
		}, ErrForged},
		{"forged: wrong key", testKey, func() input {
			return input{src2, 0, seal(otherKey, testCluster, 2, 1, 0, "payload")}
		}, ErrForged},
		{"forged: sender claims another node", testKey, func() input {
			f := seal(testKey, testCluster, 2, 1, 0, "payload")
			f[15] = 3 // sender 2 -> 3: authenticates under node 3's key, fails
			return input{src2, 0, f}
		}, ErrForged},
		{"forged: cleartext frame in encrypted mode", testKey, func() input {
			return input{src2, 0, seal(nil, testCluster, 2, 1, 0, "payload")}
		}, ErrForged},
		{"forged: cleartext from wrong source address", nil, func() input {
			return input{addrNode3, 0, seal(nil, testCluster, 2, 1, 0, "payload")}
		}, ErrForged},
		{"corrupt: truncated header", testKey, func() input {
			return input{src2, 0, seal(testKey, testCluster, 2, 1, 0, "payload")[:HeaderLen-1]}
		}, ErrCorrupt},
		{"corrupt: truncated body", testKey, func() input {
			return input{src2, 0, seal(testKey, testCluster, 2, 1, 0, "")[:HeaderLen+GCMTagLen-1]}
		}, ErrCorrupt},
		{"corrupt: empty", testKey, func() input { return input{src2, 0, nil} }, ErrCorrupt},
		{"corrupt: bad magic", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), 0)}
		}, ErrCorrupt},
		{"corrupt: bad version", testKey, func() input {
			f := seal(testKey, testCluster, 2, 1, 0, "payload")
			f[2] = 2
			return input{src2, 0, f}
		}, ErrCorrupt},
		{"corrupt: unknown flag", testKey, func() input {
			f := seal(testKey, testCluster, 2, 1, 0, "payload")
			f[3] |= 0x80
			return input{src2, 0, f}
		}, ErrCorrupt},
		{"corrupt: reserved byte set", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), 22)}
		}, ErrCorrupt},
		{"corrupt: fragment index beyond count", testKey, func() input {
			f := mustSealer(t, testCluster, testKey, 2, 1).Seal(nil, 1, 0, 0, &Fragment{MsgID: 1, Index: 3, Count: 3, Total: 10}, []byte("x"))
			return input{src2, 0, f}
		}, ErrCorrupt},
		{"corrupt: cleartext crc mismatch", nil, func() input {
			return input{src2, 0, flip(seal(nil, testCluster, 2, 1, 0, "payload"), HeaderLen+1)}
		}, ErrCorrupt},
		{"corrupt: cleartext header byte changed", nil, func() input {
			return input{src2, 0, flip(seal(nil, testCluster, 2, 1, 0, "payload"), 31)}
		}, ErrCorrupt},
		{"corrupt: encrypted frame in cleartext mode", nil, func() input {
			return input{src2, 0, seal(testKey, testCluster, 2, 1, 0, "payload")}
		}, ErrCorrupt},
		{"foreign: other cluster name", testKey, func() input {
			return input{src2, 0, seal(testKey, "other-cluster", 2, 1, 0, "payload")}
		}, ErrForeign},
		{"foreign: other cluster name, cleartext", nil, func() input {
			return input{src2, 0, seal(nil, "other-cluster", 2, 1, 0, "payload")}
		}, ErrForeign},
		{"misrouted: destination is another node", testKey, func() input {
			return input{src2, 0, seal(testKey, testCluster, 2, 3, 0, "payload")}
		}, ErrMisrouted},
		{"misrouted: arrived on another link", testKey, func() input {
			return input{src2, 1, seal(testKey, testCluster, 2, 1, 0, "payload")}
		}, ErrMisrouted},
		{"misrouted: sender has no address on that link", testKey, func() input {
			return input{addrNode3, 1, seal(testKey, testCluster, 3, 1, 1, "payload")}
		}, ErrMisrouted},
		{"stale: addressed to an earlier run of this node", testKey, func() input {
			return input{src2, 0, mustSealer(t, testCluster, testKey, 2, 1).Seal(nil, 1, 5, 0, nil, []byte("payload"))}
		}, ErrStale},
		{"stale: addressed to an earlier run of this node, cleartext", nil, func() input {
			return input{src2, 0, mustSealer(t, testCluster, nil, 2, 1).Seal(nil, 1, 5, 0, nil, []byte("payload"))}
		}, ErrStale},
		{"forged: destination incarnation changed", testKey, func() input {
			return input{src2, 0, flip(seal(testKey, testCluster, 2, 1, 0, "payload"), 47)}
		}, ErrForged},
		{"unknown sender", testKey, func() input {
			return input{src2, 0, seal(testKey, testCluster, 9, 1, 0, "payload")}
		}, ErrUnknownSender},
		{"unknown sender: self", testKey, func() input {
			return input{addrNode1, 0, seal(testKey, testCluster, 1, 1, 0, "payload")}
		}, ErrUnknownSender},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustOpener(t, tc.key, 1)
			in := tc.in()
			_, _, err := o.Open(in.src, in.link, in.frame)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOpenSequences checks the stateful rules: replay window, incarnations,
// and that frames that fail authentication change no state.
func TestOpenSequences(t *testing.T) {
	type step struct {
		sealer  int    // index into sealers
		counter uint64 // if non-zero, the sealer jumps to this counter first
		reuse   int    // if > 0, resend the frame of step reuse-1 instead
		forge   bool   // flip a ciphertext byte
		toInc   uint64 // destination incarnation
		want    error
	}
	for _, tc := range []struct {
		name  string
		key   []byte
		incs  []uint64 // one sealer per incarnation, all node 2
		steps []step
	}{
		{"same frame twice is a replay", testKey, []uint64{1}, []step{
			{want: nil}, {reuse: 1, want: ErrReplayed},
		}},
		{"same frame twice is a replay, cleartext", nil, []uint64{1}, []step{
			{want: nil}, {reuse: 1, want: ErrReplayed},
		}},
		{"reordering within the window is fine", testKey, []uint64{1}, []step{
			{counter: 1000, want: nil}, {counter: 10, want: nil}, {counter: 500, want: nil}, {reuse: 2, want: ErrReplayed},
		}},
		{"older than the window is a replay", testKey, []uint64{1}, []step{
			{counter: 5, want: nil}, {counter: 5 + ReplayWindow, want: nil}, {counter: 6, want: ErrReplayed},
		}},
		{"edge of the window", testKey, []uint64{1}, []step{
			{counter: 100000, want: nil},
			{counter: 100000 - (ReplayWindow - 64) + 1, want: nil},
			{counter: 100000 - (ReplayWindow - 64), want: ErrReplayed},
		}},
		{"higher incarnation replaces the window, lower is stale", testKey, []uint64{1, 2}, []step{
			{sealer: 0, counter: 50, want: nil},
			{sealer: 1, counter: 1, want: nil}, // counter restarts with the new session
			{sealer: 0, counter: 60, want: ErrStale},
			{sealer: 1, counter: 2, want: nil},
		}},
		{"stale in cleartext too", nil, []uint64{5, 7}, []step{
			{sealer: 1, want: nil}, {sealer: 0, want: ErrStale},
		}},
		{"forged frames do not poison the window", testKey, []uint64{1}, []step{
			{counter: 1 << 40, forge: true, want: ErrForged},
			{counter: 1, want: nil},
		}},
		{"forged higher incarnation does not make the real one stale", testKey, []uint64{1, 9}, []step{
			{sealer: 1, forge: true, want: ErrForged},
			{sealer: 0, want: nil},
		}},
		{"a frame for an earlier run of the receiver leaves the window alone", testKey, []uint64{1}, []step{
			{counter: 7, toInc: 3, want: ErrStale},
			{counter: 7, toInc: 1, want: nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustOpener(t, tc.key, 1)
			var sealers []*Sealer
			for _, inc := range tc.incs {
				sealers = append(sealers, mustSealer(t, testCluster, tc.key, 2, inc))
			}
			var sent [][]byte
			for i, st := range tc.steps {
				var frame []byte
				if st.reuse > 0 {
					frame = bytes.Clone(sent[st.reuse-1])
				} else {
					s := sealers[st.sealer]
					if st.counter != 0 {
						s.counter.Store(st.counter - 1)
					}
					frame = s.Seal(nil, 1, st.toInc, 0, nil, []byte("payload"))
					if st.forge {
						frame[HeaderLen] ^= 1
					}
				}
				sent = append(sent, bytes.Clone(frame))
				_, _, err := o.Open(addrNode2, 0, frame)
				if !errors.Is(err, st.want) {
					t.Fatalf("step %d: Open = %v, want %v", i, err, st.want)
				}
			}
		})
	}
}

func TestReplayWindowModel(t *testing.T) {
	// Compare the ring bitmap with a naive set over a random walk.
	var w replayWindow
	seen := map[uint64]bool{}
	top := uint64(0)
	rnd := uint64(12345)
	next := func() uint64 { rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17; return rnd }
	for i := 0; i < 200000; i++ {
		var c uint64
		switch next() % 4 {
		case 0:
			c = top + 1 + next()%(3*ReplayWindow)
		default:
			d := next() % (ReplayWindow + 200)
			if d >= top {
				d = top - 1
			}
			c = top - d
		}
		if c == 0 {
			continue
		}
		want := !seen[c] && (c > top || top-c < ReplayWindow-64)
		if got := w.admit(c); got != want {
			t.Fatalf("step %d: admit(%d) with top %d = %v, want %v", i, c, top, got, want)
		}
		if want {
			seen[c] = true
			top = max(top, c)
		}
	}
}

func TestPeerIncarnation(t *testing.T) {
	o := mustOpener(t, testKey, 1)
	if got := o.PeerIncarnation(2); got != 0 {
		t.Fatalf("before any frame: %d", got)
	}
	o.Open(addrNode2, 0, mustSealer(t, testCluster, otherKey, 2, 9).Seal(nil, 1, 0, 0, nil, nil))
	if got := o.PeerIncarnation(2); got != 0 {
		t.Fatalf("after a forged frame: %d", got)
	}
	for _, inc := range []uint64{4, 6, 5} {
		o.Open(addrNode2, 0, mustSealer(t, testCluster, testKey, 2, inc).Seal(nil, 1, 0, 0, nil, nil))
	}
	if got := o.PeerIncarnation(2); got != 6 {
		t.Fatalf("after incarnations 4, 6, 5: %d", got)
	}
	if got := o.PeerIncarnation(42); got != 0 {
		t.Fatalf("unknown node: %d", got)
	}
}

func TestNewSealerOpenerKeyLength(t *testing.T) {
	for _, n := range []int{0, 15, 4097} {
		if _, err := NewSealer(testCluster, make([]byte, n), 1, 1); err == nil {
			t.Errorf("NewSealer with a %d-byte key: no error", n)
		}
		if _, err := NewOpener(OpenerConfig{ClusterName: testCluster, Key: make([]byte, n)}); err == nil {
			t.Errorf("NewOpener with a %d-byte key: no error", n)
		}
	}
}
