package transport

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSealOpen seals a frame into a reused buffer and opens it in
// place, as the send and receive paths do.
func BenchmarkSealOpen(b *testing.B) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"aes-gcm", testKey}, {"cleartext", nil}} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", mode.name, size), func(b *testing.B) {
				s := mustSealer(b, testCluster, mode.key, 2, 1)
				o := mustOpener(b, mode.key, 1)
				payload := make([]byte, size)
				buf := make([]byte, 0, 2048)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					frame := s.Seal(buf[:0], 1, 0, 0, nil, payload)
					if _, _, err := o.Open(addrNode2, 0, frame); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoopback measures datagrams per second from one transport to
// another over 127.0.0.x, with a bound on datagrams in flight so that the
// receiver's socket buffer does not overflow (lost datagrams are counted,
// not waited for).
func BenchmarkLoopback(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			port := freePort(b, 2, 1)
			recv, err := New(clusterConfig(2, 1, testKey, port, 1, 1))
			if err != nil {
				b.Fatal(err)
			}
			defer recv.Close()
			send, err := New(clusterConfig(2, 1, testKey, port, 2, 1))
			if err != nil {
				b.Fatal(err)
			}
			defer send.Close()
			recv.Start(context.Background())
			var got atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range recv.Incoming() {
					got.Add(1)
				}
			}()
			payload := make([]byte, size)
			const window = 256
			b.SetBytes(int64(size))
			b.ReportAllocs()
			start := time.Now()
			sent := int64(0)
			lost := int64(0)
			for i := 0; i < b.N; i++ {
				if sent-got.Load()-lost > window {
					stall := time.Now()
					for sent-got.Load()-lost > window/2 {
						if time.Since(stall) > 100*time.Millisecond {
							lost = sent - got.Load()
							break
						}
						time.Sleep(20 * time.Microsecond)
					}
				}
				if err := send.Send(1, 0, payload); err != nil {
					lost++
				}
				sent++
			}
			deadline := time.Now().Add(time.Second)
			for got.Load()+lost < sent && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(got.Load())/el.Seconds(), "datagrams/s")
			b.ReportMetric(float64(sent-got.Load())/float64(sent)*100, "%lost")
			recv.Close()
			<-done
		})
	}
}

// BenchmarkThreeNodes has three transports each send 1 KiB datagrams (think
// a batch of engine messages) to both others, each with at most 128 of its
// own in flight; one op is one datagram delivered. It reports the aggregate
// rate.
func BenchmarkThreeNodes(b *testing.B) {
	const nodes, window, size = 3, 128, 1024
	port := freePort(b, nodes, 1)
	var trs [nodes]*Transport
	var got [nodes]atomic.Int64 // delivered datagrams sent by node i
	for i := range trs {
		tr, err := New(clusterConfig(nodes, 1, testKey, port, uint32(i+1), 1))
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		trs[i] = tr
	}
	for _, tr := range trs {
		tr.Start(context.Background())
		go func() {
			for p := range tr.Incoming() {
				got[p.From-1].Add(1)
			}
		}()
	}
	payload := make([]byte, size)
	per := b.N/nodes + 1
	b.SetBytes(size)
	b.ReportAllocs()
	start := time.Now()
	done := make(chan int64, nodes)
	for i := range trs {
		go func() {
			var sent, lost int64
			for k := 0; k < per; k++ {
				if sent-got[i].Load()-lost > window {
					stall := time.Now()
					for sent-got[i].Load()-lost > window/2 {
						if time.Since(stall) > 100*time.Millisecond {
							lost = sent - got[i].Load()
							break
						}
						time.Sleep(20 * time.Microsecond)
					}
				}
				to := uint32((i+1+k%2)%nodes + 1)
				if err := trs[i].Send(to, 0, payload); err != nil {
					lost++
				}
				sent++
			}
			done <- sent
		}()
	}
	var sent int64
	for range trs {
		sent += <-done
	}
	deadline := time.Now().Add(time.Second)
	total := func() (n int64) {
		for i := range got {
			n += got[i].Load()
		}
		return n
	}
	for total() < sent && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total())/el.Seconds(), "datagrams/s")
	b.ReportMetric(float64(sent-total())/float64(sent)*100, "%lost")
}
