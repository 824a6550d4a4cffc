package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// This file is Netem's stand-in for kernels without sch_netem: iptables
// sends a node's outgoing packets to an NFQUEUE, and this process answers
// each with a verdict, dropping some at once and accepting the rest after a
// delay. Verdicts may be given in any order, so jitter reorders packets as
// netem's does.

// netemParams is what the stand-in emulates.
type netemParams struct {
	loss          float64 // probability of dropping a packet, 0..1
	delay, jitter time.Duration
}

// parseNetem reads the netem arguments the stand-in supports:
// "loss [random] P%" and "delay D [JITTER [CORRELATION%]]" (correlation is
// ignored), with durations in Go syntax ("50ms").
func parseNetem(args []string) (netemParams, error) {
	var p netemParams
	dur := func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("bad duration %q (want for example 50ms)", s)
		}
		return d, nil
	}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "loss", "drop":
			i++
			if i < len(args) && args[i] == "random" {
				i++
			}
			if i >= len(args) {
				return p, errors.New("loss needs a percentage")
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(args[i], "%"), 64)
			if err != nil || v < 0 || v > 100 {
				return p, fmt.Errorf("bad loss %q (want for example 20%%)", args[i])
			}
			p.loss = v / 100
		case "delay":
			i++
			if i >= len(args) {
				return p, errors.New("delay needs a time")
			}
			d, err := dur(args[i])
			if err != nil {
				return p, err
			}
			p.delay = d
			if i+1 < len(args) {
				if j, err := dur(args[i+1]); err == nil {
					p.jitter = j
					i++
					if i+1 < len(args) && strings.HasSuffix(args[i+1], "%") {
						i++
					}
				}
			}
		default:
			return p, fmt.Errorf("unsupported netem argument %q (the stand-in knows loss and delay)", args[i])
		}
	}
	return p, nil
}

// Netlink constants of nfnetlink_queue (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue  = 3
	nfqnlMsgPacket   = 0
	nfqnlMsgVerdict  = 1
	nfqnlMsgConfig   = 2
	nfqaPacketHdr    = 1
	nfqaVerdictHdr   = 2
	nfqaCfgCmd       = 1
	nfqaCfgParams    = 2
	nfqaCfgQueueMax  = 3
	nfqaCfgMask      = 4
	nfqaCfgFlags     = 5
	nfqnlCfgCmdBind  = 1
	nfqnlCopyMeta    = 1
	nfqaCfgFFailOpen = 1
	nfDrop, nfAccept = 0, 1
	emuQueue         = 7 // queue number, per namespace
	emuQueueMaxLen   = 8192
	nlmsgHdrLen      = 16
	nfgenHdrLen      = 4
	nlaHdrLen        = 4
	solNetlink       = 270
	netlinkNoENOBUFS = 5
	emuRecvBufBytes  = 8 << 20
	emuReadBufBytes  = 1 << 16
	nlmsgError       = 2
	nlmFRequest      = 1
	nlmFAck          = 4
	nlaTypeMask      = 0x3fff
)

type emulator struct {
	ns     string
	f      *os.File
	params atomic.Pointer[netemParams]
	closed atomic.Bool
	wg     sync.WaitGroup
	rnd    struct {
		sync.Mutex
		*rand.Rand
	}
}

// startEmulator serves a queue in namespace ns and sends the node's
// outgoing packets on its links through it.
func startEmulator(ns string, links int, p netemParams) (*emulator, error) {
	fd, err := socketInNetns(ns, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	if err := configureQueue(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	e := &emulator{ns: ns, f: os.NewFile(uintptr(fd), "nfqueue:"+ns)}
	e.rnd.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	e.set(p)
	e.wg.Add(1)
	go e.serve()

	ctx := context.Background()
	inNS := func(args ...string) error {
		return run(ctx, "ip", append([]string{"netns", "exec", ns, "iptables"}, args...)...)
	}
	if err := inNS("-N", emuChain); err != nil && !strings.Contains(err.Error(), "exists") {
		e.close()
		return nil, err
	}
	if inNS("-C", "OUTPUT", "-j", emuChain) != nil {
		if err := inNS("-A", "OUTPUT", "-j", emuChain); err != nil {
			e.close()
			return nil, err
		}
	}
	for l := range links {
		// --queue-bypass: should this process go away, packets flow again
		// rather than vanish.
		if err := inNS("-A", emuChain, "-o", nodeIf(l), "-j", "NFQUEUE",
			"--queue-num", strconv.Itoa(emuQueue), "--queue-bypass"); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *emulator) set(p netemParams) { e.params.Store(&p) }

func (e *emulator) close() {
	if e.closed.Swap(true) {
		return
	}
	e.f.Close()
	e.wg.Wait()
}

func (e *emulator) serve() {
	defer e.wg.Done()
	buf := make([]byte, emuReadBufBytes)
	for {
		n, err := e.f.Read(buf)
		if err != nil {
			if e.closed.Load() {
				return
			}
			// ENOBUFS is off (NETLINK_NO_ENOBUFS); anything else is fatal to
			// the stand-in, and --queue-bypass lets packets through again.
			return
		}
		for b := buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < nlmsgHdrLen || l > len(b) {
				break
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			if typ == nfnlSubsysQueue<<8|nfqnlMsgPacket {
				if id, ok := packetID(b[nlmsgHdrLen:l]); ok {
					e.decide(id)
				}
			}
			b = b[min(align4(l), len(b)):]
		}
	}
}

// decide drops the packet or accepts it after the delay.
func (e *emulator) decide(id uint32) {
	p := e.params.Load()
	e.rnd.Lock()
	lost := p.loss > 0 && e.rnd.Float64() < p.loss
	d := p.delay
	if p.jitter > 0 {
		d += time.Duration(e.rnd.Int64N(int64(2*p.jitter)+1)) - p.jitter
	}
	e.rnd.Unlock()
	switch {
	case lost:
		e.verdict(id, nfDrop)
	case d <= 0:
		e.verdict(id, nfAccept)
	default:
		time.AfterFunc(d, func() { e.verdict(id, nfAccept) })
	}
}

func (e *emulator) verdict(id uint32, v uint32) {
	if e.closed.Load() {
		return
	}
	var vh [8]byte
	binary.BigEndian.PutUint32(vh[0:4], v)
	binary.BigEndian.PutUint32(vh[4:8], id)
	e.f.Write(nfqMessage(nfqnlMsgVerdict, nlmFRequest, emuQueue, attr(nfqaVerdictHdr, vh[:])))
}

// packetID finds NFQA_PACKET_HDR's packet id in a packet message body
// (after the netlink header).
func packetID(body []byte) (uint32, bool) {
	if len(body) < nfgenHdrLen {
		return 0, false
	}
	for a := body[nfgenHdrLen:]; len(a) >= nlaHdrLen; {
		l := int(binary.NativeEndian.Uint16(a[0:2]))
		typ := binary.NativeEndian.Uint16(a[2:4]) & nlaTypeMask
		if l < nlaHdrLen || l > len(a) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= nlaHdrLen+4 {
			return binary.BigEndian.Uint32(a[nlaHdrLen : nlaHdrLen+4]), true
		}
		a = a[min(align4(l), len(a)):]
	}
	return 0, false
}

func align4(n int) int { return (n + 3) &^ 3 }

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload []byte) []byte {
	b := make([]byte, align4(nlaHdrLen+len(payload)))
	binary.NativeEndian.PutUint16(b[0:2], uint16(nlaHdrLen+len(payload)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[nlaHdrLen:], payload)
	return b
}

// nfqMessage encodes a nfnetlink_queue message for queue with attributes.
func nfqMessage(msg uint16, flags uint16, queue uint16, attrs ...[]byte) []byte {
	n := nlmsgHdrLen + nfgenHdrLen
	for _, a := range attrs {
		n += len(a)
	}
	b := make([]byte, nlmsgHdrLen+nfgenHdrLen, n)
	binary.NativeEndian.PutUint32(b[0:4], uint32(n))
	binary.NativeEndian.PutUint16(b[4:6], nfnlSubsysQueue<<8|msg)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	// b[8:16]: sequence and port id 0; b[16]: AF_UNSPEC; b[17]: version 0.
	binary.BigEndian.PutUint16(b[18:20], queue)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// configureQueue binds the socket to emuQueue: metadata only (no payload
// copies), fail open when the queue is full.
func configureQueue(fd int) error {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink: %w", err)
	}
	// Best effort: a small buffer only means more fail-open accepts.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, emuRecvBufBytes)
	_ = unix.SetsockoptInt(fd, solNetlink, netlinkNoENOBUFS, 1)
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}
	params := append(be32(0), nfqnlCopyMeta)
	for _, m := range [][]byte{
		nfqMessage(nfqnlMsgConfig, nlmFRequest|nlmFAck, emuQueue, attr(nfqaCfgCmd, cmd)),
		nfqMessage(nfqnlMsgConfig, nlmFRequest|nlmFAck, emuQueue,
			attr(nfqaCfgParams, params),
			attr(nfqaCfgQueueMax, be32(emuQueueMaxLen)),
			attr(nfqaCfgMask, be32(nfqaCfgFFailOpen)),
			attr(nfqaCfgFlags, be32(nfqaCfgFFailOpen))),
	} {
		if err := unix.Sendto(fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("nfqueue config: %w", err)
		}
		if err := readAck(fd); err != nil {
			return fmt.Errorf("nfqueue config: %w", err)
		}
	}
	return nil
}

func readAck(fd int) error {
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < nlmsgHdrLen+4 || binary.NativeEndian.Uint16(buf[4:6]) != nlmsgError {
		return errors.New("unexpected netlink answer")
	}
	if errno := int32(binary.NativeEndian.Uint32(buf[nlmsgHdrLen:])); errno != 0 {
		return unix.Errno(-errno)
	}
	return nil
}

// socketInNetns opens a socket in the named network namespace. A socket
// keeps the namespace it was created in, so the calling process can serve
// it from anywhere. The namespace switch happens on a thread of its own
// that Go ends afterwards if switching back fails.
func socketInNetns(ns string, domain, typ, proto int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, err}
			return
		}
		defer target.Close()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, err}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		fd, serr := unix.Socket(domain, typ, proto)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread ends with this goroutine instead of
			// running other goroutines in the wrong namespace.
			if serr == nil {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, serr}
	}()
	r := <-ch
	return r.fd, r.err
}
