package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var fuzzSources = []netip.Addr{addrNode1, addrNode2, addrNode3, netip.MustParseAddr("10.0.0.2")}

// FuzzDecodeFrame feeds arbitrary bytes to an Opener with a fixed key and
// configuration. Nothing may panic, and any frame it accepts must be exactly
// the frame the genuine sender session would have sealed: re-sealing the
// decoded header and payload with the session key (or, in cleartext mode,
// with the CRC, from the sender's configured address) must give the input
// back byte for byte. GCM being deterministic, this is "accepted implies
// authenticated".
func FuzzDecodeFrame(f *testing.F) {
	for _, key := range [][]byte{testKey, nil} {
		clear := key == nil
		s := mustSealer(f, testCluster, key, 2, 3)
		f.Add(s.Seal(nil, 1, 0, 0, nil, []byte("hello")), uint8(0), uint8(1), clear)
		f.Add(s.Seal(nil, 1, 0, 1, nil, bytes.Repeat([]byte{1}, 100)), uint8(1), uint8(3), clear)
		f.Add(s.Seal(nil, 1, 0, 0, &Fragment{MsgID: 1, Index: 1, Count: 2, Total: 600}, make([]byte, 300)), uint8(0), uint8(1), clear)
		f.Add(s.Seal(nil, 3, 0, 0, nil, nil), uint8(0), uint8(1), clear)
		f.Add(s.Seal(nil, 1, 1, 0, nil, []byte("to incarnation 1")), uint8(0), uint8(1), clear)
		f.Add(s.Seal(nil, 1, 2, 0, nil, []byte("to incarnation 2")), uint8(0), uint8(1), clear)
		f.Add(mustSealer(f, "other", key, 2, 3).Seal(nil, 1, 0, 0, nil, nil), uint8(0), uint8(1), clear)
		f.Add(mustSealer(f, testCluster, key, 3, 1).Seal(nil, 1, 0, 0, nil, []byte("x")), uint8(0), uint8(2), clear)
	}
	f.Add([]byte("CN\x01\x00"), uint8(0), uint8(0), false)

	tag := ClusterTagOf(testCluster)
	persistent := map[bool]*Opener{true: mustOpener(f, nil, 1), false: mustOpener(f, testKey, 1)}

	f.Fuzz(func(t *testing.T, data []byte, link, srcIdx uint8, clear bool) {
		key := testKey
		if clear {
			key = nil
		}
		src := fuzzSources[int(srcIdx)%len(fuzzSources)]
		for _, o := range []*Opener{mustOpener(t, key, 1), persistent[clear]} {
			frame := bytes.Clone(data)
			h, payload, err := o.Open(src, int(link), frame)
			if err != nil {
				if payload != nil {
					t.Fatalf("error %v with a payload", err)
				}
				continue
			}
			// Accepted: it must be what the genuine session seals.
			if h.Tag != tag || h.Dest != 1 || int(h.Link) != int(link) || (h.DestIncarnation != 0 && h.DestIncarnation != 1) {
				t.Fatalf("accepted header %+v on link %d", h, link)
			}
			peer := codecPeers()[h.Sender]
			if h.Sender == 1 || int(h.Link) >= len(peer) {
				t.Fatalf("accepted sender %d on link %d", h.Sender, h.Link)
			}
			hh := h
			var want []byte
			if clear {
				if src != peer[h.Link].Addr() {
					t.Fatalf("cleartext accepted from %v, sender %d is %v", src, h.Sender, peer[h.Link])
				}
				want = SealFrame(nil, &hh, payload, nil)
			} else {
				sk, err := SessionKey(testKey, tag, h.Sender, h.Incarnation)
				if err != nil {
					t.Fatal(err)
				}
				want = SealFrame(nil, &hh, payload, sk)
			}
			if !bytes.Equal(want, data) {
				t.Fatalf("accepted a frame the sender did not seal:\n got %x\nwant %x", data, want)
			}
			// And the same bytes again are a replay.
			if _, _, err := o.Open(src, int(link), bytes.Clone(data)); !errors.Is(err, ErrReplayed) && !errors.Is(err, ErrStale) {
				t.Fatalf("second Open = %v, want ErrReplayed", err)
			}
		}
	})
}

// fuzzPattern is the content of message (sender, id, total) at offset off:
// fragments made from it land in the right place only if the reassembler
// places them right.
func fuzzPattern(sender uint32, id uint32, total int, off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off+i)*131) ^ byte(sender*7) ^ byte(id*13) ^ byte(total)
	}
	return b
}

// FuzzReassembler interprets the input as a script of fragments (9 bytes
// each: sender, message id, index, count, total (2), length (2), time step)
// whose data is derived from the message identity and the offset the
// fragment claims. It checks the memory bounds and the byte accounting
// after every step, and that every completed message is exactly the
// message's pattern.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{1, 1, 0, 2, 0, 40, 0, 20, 0, 1, 1, 1, 2, 0, 40, 0, 20, 0})
	f.Add([]byte{1, 1, 1, 3, 0, 50, 0, 10, 5, 1, 1, 0, 3, 0, 50, 0, 20, 0, 1, 1, 2, 3, 0, 50, 0, 20, 0})
	f.Add([]byte{2, 9, 0, 1, 0, 30, 0, 30, 0})
	f.Add(bytes.Repeat([]byte{3, 2, 0, 200, 1, 0, 0, 16, 200}, 10))
	cfg := ReassemblerConfig{MaxMessage: 4096, MinFragment: 16, MaxPerSender: 8192, MaxTotal: 16384, Timeout: 2 * time.Second}
	f.Fuzz(func(t *testing.T, script []byte) {
		r := NewReassembler(cfg)
		now := time.Unix(0, 0)
		for len(script) >= 9 {
			op := script[:9]
			script = script[9:]
			sender := uint32(op[0] % 4)
			id := uint32(op[1] % 4)
			idx, count := int(op[2]), int(op[3])
			total := int(binary.BigEndian.Uint16(op[4:]))
			n := int(binary.BigEndian.Uint16(op[6:]))
			now = now.Add(time.Duration(op[8]) * 10 * time.Millisecond)
			if n > 5000 {
				n %= 5000
			}
			// The offset the fragment claims: idx*n for a middle one, Total-n for the last.
			off := idx * n
			if idx == count-1 {
				off = total - n
			}
			off = max(off, 0)
			f := Frag{Sender: sender, Incarnation: 1, Fragment: Fragment{MsgID: id, Index: uint16(idx), Count: uint16(count), Total: uint32(total)}, Data: fuzzPattern(sender, id, total, off, n)}
			msg, ok := r.Add(now, f)
			if ok {
				if len(msg) != total || !bytes.Equal(msg, fuzzPattern(sender, id, total, 0, total)) {
					t.Fatalf("completed message (sender %d id %d total %d) is wrong: %x", sender, id, total, msg)
				}
			}
			pending, held := r.Pending()
			sum, per := 0, map[uint32]int{}
			for _, p := range r.msgs {
				sum += p.charged
				per[p.key.sender] += p.charged
			}
			if held != sum || pending != len(r.msgs) || held > cfg.MaxTotal {
				t.Fatalf("accounting: %d messages, %d bytes, sum %d", pending, held, sum)
			}
			for s, v := range per {
				if v != r.perSender[s] || v > cfg.MaxPerSender {
					t.Fatalf("sender %d holds %d, accounted %d", s, v, r.perSender[s])
				}
			}
			if len(per) != len(r.perSender) {
				t.Fatalf("perSender has stale entries: %v vs %v", r.perSender, per)
			}
		}
	})
}
