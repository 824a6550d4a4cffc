package quorum

import (
	"slices"
	"strings"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want message
	}{
		{encodeNodeinfo(7, 1, 3, flagQuorate|flagFirst), message{kind: msgNodeinfo, nodeid: 7, votes: 1, expected: 3, flags: 9}},
		{encodeNodeinfo(0xffffffff, 0xffffffff, 0, 0), message{kind: msgNodeinfo, nodeid: 0xffffffff, votes: 0xffffffff}},
		{encodeReconfigure(2, 5, reconfExpectedVotes), message{kind: msgReconfigure, nodeid: 2, value: 5, param: 1}},
		{encodeQdevReg(qdevOpRegister, "Qdevice"), message{kind: msgQdevReg, op: 1, name: "Qdevice"}},
		{encodeQdevReg(qdevOpUnregister, ""), message{kind: msgQdevReg}},
		{encodeQdevReg(1, strings.Repeat("n", 254)), message{kind: msgQdevReg, op: 1, name: strings.Repeat("n", 254)}},
		{encodeQdevReconfigure("a", "bc"), message{kind: msgQdevReconfigure, name: "a", newname: "bc"}},
	} {
		m, ok := decode(tc.b)
		if !ok || m != tc.want {
			t.Errorf("decode(%x) = %+v %v, want %+v", tc.b, m, ok, tc.want)
		}
	}
}

func TestWireRejectsGarbage(t *testing.T) {
	good := [][]byte{
		encodeNodeinfo(1, 1, 1, 1), encodeReconfigure(1, 1, 1),
		encodeQdevReg(1, "abc"), encodeQdevReconfigure("a", "b"),
	}
	for _, b := range good {
		for i := range len(b) {
			if _, ok := decode(b[:i]); ok {
				t.Errorf("truncated %x accepted", b[:i])
			}
		}
		if _, ok := decode(append(slices.Clone(b), 0)); ok {
			t.Errorf("%x with a trailing byte accepted", b)
		}
	}
	for _, b := range [][]byte{
		nil, {4}, {255, 0, 0},
		append([]byte{msgQdevReg, 0, 0, 0, 1, 255}, strings.Repeat("x", 255)...), // 255-byte name
		{msgQdevReg, 0, 0, 0, 1, 3, 'a', 0, 'b'},                                 // NUL in a name
	} {
		if m, ok := decode(b); ok {
			t.Errorf("decode(%x) accepted: %+v", b, m)
		}
	}
}

// FuzzDeliver: no input may crash the engine or break its invariants.
func FuzzDeliver(f *testing.F) {
	for _, b := range [][]byte{
		encodeNodeinfo(2, 1, 3, flagQuorate), encodeNodeinfo(0, 5, 0, 0), encodeNodeinfo(3, 2, 9, flagLeaving),
		encodeNodeinfo(1, 1, 3, flagQdevRegistered|flagQdevCastVote|flagQdevMasterWins),
		encodeReconfigure(2, 7, reconfExpectedVotes), encodeReconfigure(0, 2, reconfNodeVotes),
		encodeReconfigure(1, 0, reconfCancelWFA), encodeQdevReg(1, "Qdevice"), encodeQdevReg(0, "Qdevice"),
		encodeQdevReconfigure("Qdevice", "Other"), {}, {0xff},
	} {
		f.Add(b, uint8(2))
	}
	f.Fuzz(func(t *testing.T, payload []byte, from uint8) {
		for _, c := range []Config{
			nodelist(3, wfaOn, lmsOn)(1),
			nodelist(4, atbOn, atbNode("3 1"), adOn)(1),
			nodelist(3, device(u32p(1)))(1),
		} {
			e, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			r := view(e, 4, 1, 2, 3)
			e.QdeviceRegister(t0, "Qdevice", 1)
			for _, sender := range []NodeID{NodeID(from), 1, 2} {
				e.Deliver(t0, r, sender, payload, true)
				// Also whatever the payload's tail decodes to.
				if len(payload) > 1 {
					e.Deliver(t0, r, sender, payload[1:], false)
				}
			}
			e.Installed(t0, r, e.members)
			e.Tick(t0.Add(DefaultLMSWindow))
			e.Output()
			e.Ready()
			if !slices.IsSortedFunc(e.nodes, func(a, b *node) int {
				switch {
				case a.id < b.id:
					return -1
				case a.id > b.id:
					return 1
				}
				return 0
			}) {
				t.Fatal("table not sorted")
			}
			if e.find(1) != e.us || e.us.state == 0 {
				t.Fatal("lost the local node")
			}
			_, qe := e.Snapshot(t0)
			for i := 1; i < len(qe.Nodes); i++ {
				if qe.Nodes[i].ID != 0 && qe.Nodes[i].ID <= qe.Nodes[i-1].ID {
					t.Fatalf("quorum event nodes out of order: %v", qe.Nodes)
				}
			}
			for _, id := range []uint32{0, 1, 2, 3, uint32(from)} {
				e.GetInfo(t0, id)
			}
		}
	})
}
