package membership

import (
	"encoding/binary"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/conclave/conclave/api/peerpb"
)

// trio is a minimal in-package driver: three engines exchanging messages
// instantly, used to build real traffic for fuzz seeds and unit tests.
type trio struct {
	now  time.Time
	engs []*Engine    // node i+1
	down map[int]bool // indexes of engines that are "dead": not ticked, get nothing
	// onDeliver, if set, sees every delivery (index of the node, event).
	onDeliver func(i int, ev Event)
	// sent records every marshalled message addressed to node 1.
	sent [][]byte
}

func newTrio(t testing.TB) *trio {
	tr := &trio{now: time.Unix(1000, 0), down: map[int]bool{}}
	nodes := []NodeConfig{{ID: 1, Links: 1}, {ID: 2, Links: 1}, {ID: 3, Links: 1}}
	for id := NodeID(1); id <= 3; id++ {
		e, err := New(Config{Self: id, Incarnation: 1, Nodes: nodes})
		if err != nil {
			t.Fatal(err)
		}
		tr.engs = append(tr.engs, e)
	}
	return tr
}

// run advances time in ticks, delivering every message at once.
func (tr *trio) run(d time.Duration) {
	for end := tr.now.Add(d); tr.now.Before(end); tr.now = tr.now.Add(5 * time.Millisecond) {
		for i, e := range tr.engs {
			if !tr.down[i] {
				e.Tick(tr.now)
			}
		}
		tr.drain()
	}
}

func (tr *trio) drain() {
	for moved := true; moved; {
		moved = false
		for i, e := range tr.engs {
			if tr.down[i] {
				continue
			}
			r := e.Ready()
			for _, ev := range r.Events {
				switch ev.Kind {
				case EventNodelist:
					e.SyncDone(ev.Ring)
				case EventDeliver:
					if tr.onDeliver != nil {
						tr.onDeliver(i, ev)
					}
				}
			}
			for _, o := range r.Messages {
				moved = true
				if o.To == 1 && len(tr.sent) < 500 {
					b, _ := proto.Marshal(o.Msg)
					tr.sent = append(tr.sent, b)
				}
				if i := int(o.To) - 1; i < len(tr.engs) && !tr.down[i] {
					tr.engs[i].Step(tr.now, o.Link, o.Msg)
				}
			}
		}
	}
}

// FuzzStep feeds arbitrary bytes, decoded as peer messages, to an engine in
// a formed view: decoding must never panic, and neither may the engine,
// whatever a (malicious or corrupt but authenticated) peer sends.
func FuzzStep(f *testing.F) {
	tr := newTrio(f)
	tr.run(200 * time.Millisecond)
	for _, e := range tr.engs {
		e.Broadcast([]byte("hello"), false)
	}
	tr.run(50 * time.Millisecond)
	tr.engs[2].PeerClosed(tr.now, 2, 1)
	tr.run(100 * time.Millisecond)
	for _, b := range tr.sent {
		f.Add(frame(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newTrio(t)
		e.run(200 * time.Millisecond) // node 1 in an installed view with 2 and 3
		target := e.engs[0]
		now := e.now
		for len(data) >= 3 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			chunk := data[:n]
			data = data[n:]
			m := &peerpb.Message{}
			if proto.Unmarshal(chunk, m) != nil {
				continue
			}
			// Most messages claim a real peer, so they reach the protocol.
			if len(chunk) > 0 && chunk[0]%4 != 0 {
				m.From, m.To, m.Incarnation = uint32(2+chunk[0]%2), 1, 1
			}
			now = now.Add(time.Millisecond)
			target.Step(now, int(n%2), m)
			if n%7 == 0 {
				target.Tick(now)
			}
			r := target.Ready()
			for _, o := range r.Messages {
				if o.To == 1 || o.Msg == nil {
					t.Fatalf("engine sent %v to itself", o.Msg)
				}
			}
		}
	})
}

func frame(b []byte) []byte {
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	return append(out, b...)
}

// FuzzNodeSet: any bytes decode to a set within the nodelist.
func FuzzNodeSet(f *testing.F) {
	f.Add([]byte{0xff, 0xff}, uint16(3))
	f.Add([]byte{}, uint16(1000))
	f.Fuzz(func(t *testing.T, b []byte, n uint16) {
		size := int(n%2048) + 1
		s := nodeSetFrom(b, size)
		for i := size; i < len(s)*64; i++ {
			if s.has(i) {
				t.Fatalf("bit %d set beyond %d nodes", i, size)
			}
		}
		if got := nodeSetFrom(s.bytes(), size); !got.equal(s) {
			t.Fatal("round trip changed the set")
		}
	})
}
