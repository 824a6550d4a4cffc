package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Frame layout constants; see the package documentation for the format.
const (
	// FrameVersion is the only frame version this package speaks.
	FrameVersion = 1
	// HeaderLen is the length in bytes of an unfragmented frame's header.
	HeaderLen = 48
	// FragmentHeaderLen is the length in bytes of a fragment's header.
	FragmentHeaderLen = HeaderLen + 12
	// GCMTagLen is the authentication tag appended to encrypted payloads.
	GCMTagLen = 16
	// CRCLen is the checksum appended to cleartext payloads.
	CRCLen = 4
	// MaxLinks is the number of links a node can have (indexes 0..7).
	MaxLinks = 8

	// FlagEncrypted marks a frame sealed with AES-256-GCM.
	FlagEncrypted uint8 = 0x01
	// FlagFragment marks a frame carrying one fragment of a larger payload.
	FlagFragment uint8 = 0x02

	flagsKnown = FlagEncrypted | FlagFragment

	magic0 = 'C'
	magic1 = 'N'

	// nonceOffset is where the 12-byte GCM nonce sits inside the header: the
	// low 32 bits of the incarnation followed by the 64-bit counter.
	nonceOffset = 28

	// MinKeyLen and MaxKeyLen bound the cluster key size in bytes.
	MinKeyLen = 16
	MaxKeyLen = 4096

	// maxFrame is the largest frame that fits in one UDP datagram.
	maxFrame = 65507

	hkdfInfoPrefix   = "conclave frame v1"
	clusterTagPrefix = "conclave-cluster\x00"
)

// Sentinel errors; each maps to one drop counter in [Stats]. Open returns
// them unwrapped so the hot path does not allocate.
var (
	ErrForged        = errors.New("transport: frame failed authentication")
	ErrCorrupt       = errors.New("transport: malformed or corrupt frame")
	ErrReplayed      = errors.New("transport: replayed frame")
	ErrForeign       = errors.New("transport: frame from another cluster")
	ErrStale         = errors.New("transport: frame from an earlier incarnation")
	ErrUnknownSender = errors.New("transport: frame from an unknown sender")
	ErrMisrouted     = errors.New("transport: frame addressed elsewhere")
	ErrTooLarge      = errors.New("transport: message too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ClusterTag identifies a cluster on the wire. Frames with another tag are
// dropped before any cryptography is attempted.
type ClusterTag [8]byte

// ClusterTagOf returns the first 8 bytes of
// SHA-256("conclave-cluster\x00" + name).
func ClusterTagOf(name string) ClusterTag {
	h := sha256.New()
	h.Write([]byte(clusterTagPrefix))
	h.Write([]byte(name))
	var sum [sha256.Size]byte
	var t ClusterTag
	copy(t[:], h.Sum(sum[:0]))
	return t
}

// Fragment holds the fragment fields of a header.
type Fragment struct {
	MsgID uint32 // per sender session
	Index uint16 // 0 .. Count-1
	Count uint16 // number of fragments of the message, >= 1
	Total uint32 // length of the whole message in bytes
}

// Header is the decoded frame header.
type Header struct {
	Flags       uint8
	Tag         ClusterTag
	Sender      uint32
	Dest        uint32
	Link        uint8
	Incarnation uint64 // the sender's
	Counter     uint64
	// DestIncarnation is the receiver's incarnation as the sender knows it,
	// 0 while it knows none. A receiver drops frames addressed to another
	// incarnation of itself, so frames captured before it restarted cannot
	// be replayed to the new process.
	DestIncarnation uint64
	Frag            Fragment // meaningful only when Flags&FlagFragment != 0
}

// Len returns the encoded header length in bytes.
func (h *Header) Len() int {
	if h.Flags&FlagFragment != 0 {
		return FragmentHeaderLen
	}
	return HeaderLen
}

// AppendTo appends the encoded header to dst.
func (h *Header) AppendTo(dst []byte) []byte {
	dst = append(dst, magic0, magic1, FrameVersion, h.Flags)
	dst = append(dst, h.Tag[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.Sender)
	dst = binary.BigEndian.AppendUint32(dst, h.Dest)
	dst = append(dst, h.Link, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, h.Incarnation)
	dst = binary.BigEndian.AppendUint64(dst, h.Counter)
	dst = binary.BigEndian.AppendUint64(dst, h.DestIncarnation)
	if h.Flags&FlagFragment != 0 {
		dst = binary.BigEndian.AppendUint32(dst, h.Frag.MsgID)
		dst = binary.BigEndian.AppendUint16(dst, h.Frag.Index)
		dst = binary.BigEndian.AppendUint16(dst, h.Frag.Count)
		dst = binary.BigEndian.AppendUint32(dst, h.Frag.Total)
	}
	return dst
}

// ParseHeader decodes and structurally validates the header at the start of
// frame. It checks nothing that needs configuration (tag, sender,
// destination) and authenticates nothing. The only error is ErrCorrupt.
func ParseHeader(frame []byte) (Header, error) {
	var h Header
	if len(frame) < HeaderLen || frame[0] != magic0 || frame[1] != magic1 || frame[2] != FrameVersion {
		return h, ErrCorrupt
	}
	h.Flags = frame[3]
	if h.Flags&^flagsKnown != 0 || frame[21]|frame[22]|frame[23] != 0 || frame[20] >= MaxLinks {
		return h, ErrCorrupt
	}
	copy(h.Tag[:], frame[4:12])
	h.Sender = binary.BigEndian.Uint32(frame[12:])
	h.Dest = binary.BigEndian.Uint32(frame[16:])
	h.Link = frame[20]
	h.Incarnation = binary.BigEndian.Uint64(frame[24:])
	h.Counter = binary.BigEndian.Uint64(frame[32:])
	if h.Counter == 0 {
		return h, ErrCorrupt
	}
	h.DestIncarnation = binary.BigEndian.Uint64(frame[40:])
	if h.Flags&FlagFragment != 0 {
		if len(frame) < FragmentHeaderLen {
			return h, ErrCorrupt
		}
		h.Frag.MsgID = binary.BigEndian.Uint32(frame[48:])
		h.Frag.Index = binary.BigEndian.Uint16(frame[52:])
		h.Frag.Count = binary.BigEndian.Uint16(frame[54:])
		h.Frag.Total = binary.BigEndian.Uint32(frame[56:])
		if h.Frag.Count == 0 || h.Frag.Index >= h.Frag.Count || h.Frag.Total == 0 {
			return h, ErrCorrupt
		}
	}
	overhead := CRCLen
	if h.Flags&FlagEncrypted != 0 {
		overhead = GCMTagLen
	}
	if len(frame) < h.Len()+overhead {
		return h, ErrCorrupt
	}
	return h, nil
}

// SessionKey derives the AEAD of one sender session:
// HKDF-SHA256(clusterKey, salt = tag, info = "conclave frame v1" || sender ||
// incarnation) → AES-256-GCM.
func SessionKey(clusterKey []byte, tag ClusterTag, sender uint32, incarnation uint64) (cipher.AEAD, error) {
	if err := checkKeyLen(clusterKey); err != nil {
		return nil, err
	}
	var info [len(hkdfInfoPrefix) + 12]byte
	copy(info[:], hkdfInfoPrefix)
	binary.BigEndian.PutUint32(info[len(hkdfInfoPrefix):], sender)
	binary.BigEndian.PutUint64(info[len(hkdfInfoPrefix)+4:], incarnation)
	k, err := hkdf.Key(sha256.New, clusterKey, tag[:], string(info[:]), 32)
	if err != nil {
		return nil, fmt.Errorf("transport: derive session key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("transport: session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("transport: session cipher: %w", err)
	}
	return aead, nil
}

func checkKeyLen(key []byte) error {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return fmt.Errorf("transport: cluster key is %d bytes: must be %d..%d", len(key), MinKeyLen, MaxKeyLen)
	}
	return nil
}

// SealFrame appends to dst the frame carrying payload under header h. With a
// non-nil aead the payload is encrypted and FlagEncrypted is set; with nil it
// travels in clear with a CRC-32C and the flag is cleared. The caller is
// responsible for h.Counter being unique per session key. It is pure: the
// same inputs give the same bytes.
func SealFrame(dst []byte, h *Header, payload []byte, aead cipher.AEAD) []byte {
	if aead != nil {
		h.Flags |= FlagEncrypted
	} else {
		h.Flags &^= FlagEncrypted
	}
	start := len(dst)
	dst = h.AppendTo(dst)
	hdr := dst[start:]
	if aead != nil {
		nonce := hdr[nonceOffset : nonceOffset+12]
		return aead.Seal(dst, nonce, payload, hdr)
	}
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// OpenPayload authenticates (aead != nil) or checksums (aead == nil) frame,
// whose header h was returned by ParseHeader, and returns the payload. The
// encrypted payload is decrypted in place: the result aliases frame, and frame
// is garbage afterwards whether or not it opened. Errors: ErrForged (GCM
// failure or an unencrypted frame given a key), ErrCorrupt (CRC mismatch or
// an encrypted frame without a key).
func OpenPayload(frame []byte, h *Header, aead cipher.AEAD) ([]byte, error) {
	hl := h.Len()
	enc := h.Flags&FlagEncrypted != 0
	if aead != nil {
		if !enc {
			return nil, ErrForged
		}
		if len(frame) < hl+GCMTagLen {
			return nil, ErrCorrupt
		}
		hdr := frame[:hl]
		body := frame[hl:]
		out, err := aead.Open(body[:0], hdr[nonceOffset:nonceOffset+12], body, hdr)
		if err != nil {
			return nil, ErrForged
		}
		return out, nil
	}
	if enc {
		return nil, ErrCorrupt
	}
	if len(frame) < hl+CRCLen {
		return nil, ErrCorrupt
	}
	n := len(frame) - CRCLen
	if crc32.Checksum(frame[:n], castagnoli) != binary.BigEndian.Uint32(frame[n:]) {
		return nil, ErrCorrupt
	}
	return frame[hl:n], nil
}
