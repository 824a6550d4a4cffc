// Package transport moves the membership engine's opaque payloads between
// Conclave agents over UDP, on up to eight links per node, and watches a TCP
// "tripwire" connection per peer and link so that a daemon that dies on a
// live host is noticed at once.
//
// This is the I/O edge of the agent: it owns sockets, goroutines and the
// clock. Everything that can be pure is pure and exported so it can be unit
// tested and fuzzed without sockets: the frame codec ([Header], [SealFrame],
// [OpenPayload], [Sealer], [Opener]) and the [Reassembler], whose clock is
// passed in.
//
// # Security model
//
// With a cluster key every frame is sealed with AES-256-GCM under a key that
// belongs to one sender session (node id + incarnation); frames that fail to
// open are counted as forged and never reach [Transport.Incoming]. Replay
// protection is a per-sender sliding window that is only updated after a
// frame authenticated, so forged frames cannot poison it. Without a key
// (cleartext mode, which the caller must choose explicitly) frames carry a
// CRC-32C and are accepted only from the configured address of the claimed
// sender on that link; this guards against accidents, not attackers.
//
// # Frame format, version 1
//
// All integers are big-endian. A frame is one UDP datagram (or, on the TCP
// tripwire, one length-prefixed record).
//
//	offset size field
//	     0    2 magic "CN" (0x43 0x4E)
//	     2    1 version (1)
//	     3    1 flags: 0x01 encrypted, 0x02 fragment; other bits must be 0
//	     4    8 cluster tag = SHA-256("conclave-cluster\x00" + ClusterName)[:8]
//	    12    4 sender node id
//	    16    4 destination node id
//	    20    1 link index (0..7)
//	    21    3 reserved, must be 0
//	    24    8 sender incarnation (session number of the sending process)
//	    32    8 counter: per sender session, strictly increasing across all
//	            links and destinations, starts at 1, never reused
//	    40    8 destination incarnation: the receiver's incarnation as the
//	            sender last authenticated it, 0 while it knows none
//	  --- 48 bytes; when the fragment flag is set, 12 more follow:
//	    48    4 message id (per sender session)
//	    52    2 fragment index (0 .. count-1)
//	    54    2 fragment count (>= 1)
//	    56    4 total length of the reassembled message in bytes
//	  --- then the body:
//	  encrypted: AES-256-GCM(payload) || 16-byte tag, additional data =
//	             the whole header (48 or 60 bytes)
//	  cleartext: payload || CRC-32C (Castagnoli) over header and payload
//
// Why a destination incarnation: a restarted receiver starts with empty
// replay windows, so without it, frames captured before the restart could be
// replayed to the new process for as long as their sender's session lives.
// A receiver drops (as stale) authenticated frames addressed to any other
// non-zero incarnation of itself. Only frames sealed before the sender first
// heard from the receiver (destination incarnation 0) remain replayable to
// a restarted receiver.
//
// Session key: HKDF-SHA256(secret = cluster key, salt = cluster tag,
// info = "conclave frame v1" || sender id (4 bytes) || incarnation (8 bytes)),
// 32 bytes. Nonce: the 12 header bytes at offset 28..40, that is the low 32
// bits of the incarnation followed by the counter. Within one session key the
// incarnation is fixed and the counter never repeats, so neither does the
// nonce; keeping the nonce inside the header costs no extra bytes or
// allocations.
//
// Fragments: a payload larger than one datagram is cut into count pieces of
// F bytes each except the last, which holds the remaining 1..F bytes; F is
// the same for all pieces of a message, so a receiver can place any piece
// (offset = index*F) and check every other piece against it. Each fragment
// is a separately sealed frame with its own counter. Losing one loses the
// message; the engine above retransmits.
//
// Datagrams are kept within MTU-28 bytes (IPv4) or MTU-48 bytes (IPv6), so
// with the default MTU of 1500 an unfragmented encrypted frame carries up to
// 1408 payload bytes (IPv4) and a fragment 1396.
//
// # Checks on receipt, in order
//
//  1. length, magic, version, flags, reserved bytes, fragment fields → DropCorrupt
//  2. cluster tag differs → DropForeign (before any crypto)
//  3. sender is not a configured peer → DropUnknownSender
//  4. destination is not this node, link index differs from the socket's
//     link, or the sender has no address on that link → DropMisrouted
//  5. mode: an unencrypted frame in encrypted mode → DropForged; an
//     encrypted frame in cleartext mode → DropCorrupt
//  6. encrypted: GCM open fails → DropForged. Cleartext: CRC mismatch →
//     DropCorrupt; source IP is not the sender's address on that link →
//     DropForged
//  7. destination incarnation neither 0 nor ours → DropStale (sealed for an
//     earlier run of this node); sender incarnation below the highest
//     authenticated one of that sender → DropStale; a higher one replaces the
//     replay window (the peer restarted)
//  8. counter already seen, or 65472 or more below the highest accepted
//     from that sender session → DropReplayed
//
// # TCP tripwire
//
// Every transport listens on TCP at the same ip:port as its UDP socket on
// each link and dials every peer on every link (backoff 50 ms doubling to
// 1 s while the peer refuses). The dialer sends a hello record first, the
// acceptor validates it and answers with its own. A record is a 2-byte
// length followed by one frame as above whose payload is "hello"; it goes
// through the same [Opener], hence the same replay window. Nothing else flows
// on the connection. A validated hello raises PeerEvent{Up: true}; when the
// last validated connection of a (node, incarnation, link) ends, the peer
// process is gone (its kernel closed the socket) and PeerEvent{Up: false} is
// raised. Each (node, incarnation, link) gets at most one of each, in that
// order: a Down is final for that incarnation, even if hellos it wrote before
// dying validate afterwards. Connections from an address that is not a
// configured peer address on that link, hellos that fail validation, and
// connections that say nothing for 2 s are closed without an event and
// counted in Stats.TripwireRejected; at most 64 connections per link are held
// before they authenticate.
package transport
