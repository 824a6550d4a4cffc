package quorum

import (
	"encoding/binary"
	"strings"
)

// Wire format. Every message starts with its kind byte; integers are
// big-endian u32; names are a length byte and 0..254 bytes without NUL.
// The encoding is the engine's own (peers run the same engine), compact,
// and every decode checks its exact length, so garbage is rejected rather
// than half-applied:
//
//	NODEINFO             0 | nodeid | votes | expected | flags        17 bytes
//	RECONFIGURE          1 | nodeid | value | param(u8)                10 bytes
//	QDEVICE_REG          2 | op | name
//	QDEVICE_RECONFIGURE  3 | oldname | newname
const (
	msgNodeinfo        = 0
	msgReconfigure     = 1
	msgQdevReg         = 2
	msgQdevReconfigure = 3
)

// message is any decoded message; the fields used depend on kind.
type message struct {
	kind     byte
	nodeid   NodeID
	votes    uint32
	expected uint32
	flags    uint32
	value    uint32
	param    byte
	op       uint32
	name     string // QDEVICE_REG name, QDEVICE_RECONFIGURE old name
	newname  string
}

func encodeNodeinfo(id NodeID, votes, expected, flags uint32) []byte {
	b := make([]byte, 1, 17)
	b[0] = msgNodeinfo
	for _, v := range []uint32{uint32(id), votes, expected, flags} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func encodeReconfigure(id NodeID, value uint32, param byte) []byte {
	b := make([]byte, 1, 10)
	b[0] = msgReconfigure
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, value)
	return append(b, param)
}

func encodeQdevReg(op uint32, name string) []byte {
	b := make([]byte, 1, 6+len(name))
	b[0] = msgQdevReg
	b = binary.BigEndian.AppendUint32(b, op)
	return appendName(b, name)
}

func encodeQdevReconfigure(oldname, newname string) []byte {
	b := []byte{msgQdevReconfigure}
	b = appendName(b, oldname)
	return appendName(b, newname)
}

// appendName writes a name; callers pass validated names (≤ 254 bytes).
func appendName(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// readName reads a name written by appendName.
func readName(b []byte) (string, []byte, bool) {
	if len(b) < 1 {
		return "", nil, false
	}
	n := int(b[0])
	if n >= QdeviceMaxNameLen || len(b) < 1+n {
		return "", nil, false
	}
	s := string(b[1 : 1+n])
	if strings.IndexByte(s, 0) >= 0 {
		return "", nil, false
	}
	return s, b[1+n:], true
}

// decode parses a message; ok is false for anything malformed.
func decode(b []byte) (m message, ok bool) {
	if len(b) == 0 {
		return m, false
	}
	m.kind = b[0]
	p := b[1:]
	u32 := func(i int) uint32 { return binary.BigEndian.Uint32(p[4*i:]) }
	switch m.kind {
	case msgNodeinfo:
		if len(p) != 16 {
			return m, false
		}
		m.nodeid, m.votes, m.expected, m.flags = NodeID(u32(0)), u32(1), u32(2), u32(3)
	case msgReconfigure:
		if len(p) != 9 {
			return m, false
		}
		m.nodeid, m.value, m.param = NodeID(u32(0)), u32(1), p[8]
	case msgQdevReg:
		if len(p) < 4 {
			return m, false
		}
		m.op = u32(0)
		var rest []byte
		if m.name, rest, ok = readName(p[4:]); !ok || len(rest) != 0 {
			return m, false
		}
	case msgQdevReconfigure:
		var rest []byte
		if m.name, rest, ok = readName(p); !ok {
			return m, false
		}
		if m.newname, rest, ok = readName(rest); !ok || len(rest) != 0 {
			return m, false
		}
	default:
		return m, false
	}
	return m, true
}
