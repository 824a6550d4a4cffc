package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/votequorum"
)

// BenchmarkGetInfo measures votequorum GetInfo round trips on one handle
// to a one-node agent in this process (the client, the agent's local
// transport and its lock; no network between nodes).
func BenchmarkGetInfo(b *testing.B) {
	dir := b.TempDir()
	text := "[totem]\ncluster_name = \"t\"\ncrypto_cipher = \"none\"\ncrypto_hash = \"none\"\n" +
		"[[nodelist.node]]\nnodeid = 1\nring0_addr = \"127.0.0.71\"\n[quorum]\nprovider = \"corosync_votequorum\"\n"
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(dir, "s.sock")
	a, err := New(ctx, Options{Config: cfg, NodeID: 1, Socket: sock, DataDir: filepath.Join(dir, "d"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var h *votequorum.Handle
	for end := time.Now().Add(5 * time.Second); ; {
		if h, err = votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(sock)); err == nil {
			if _, err = h.GetInfo(0); err == nil {
				break
			}
			h.Finalize()
		}
		if time.Now().After(end) {
			b.Fatal(fmt.Errorf("no agent: %w", err))
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer h.Finalize()
	b.ResetTimer()
	for range b.N {
		if _, err := h.GetInfo(0); err != nil {
			b.Fatal(err)
		}
	}
}
