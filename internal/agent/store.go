package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// store is the agent's data directory: the highest ring seq (which must
// survive a crash, so ring ids only grow) and the incarnation counter. Every
// write is atomic and durable: temp file, fsync, rename, fsync directory.
type store struct {
	dir  string
	lock *os.File
}

// openStore creates dir if needed and takes an exclusive lock on it, so two
// agents can never share (and corrupt) one data directory.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another agent", dir)
		}
		return nil, fmt.Errorf("locking data directory %s: %w", dir, err)
	}
	return &store{dir: dir, lock: f}, nil
}

func (s *store) close() error { return s.lock.Close() }

// readUint reads a decimal counter; a missing file reads as 0.
func (s *store) readUint(name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: corrupt counter %q: %w", filepath.Join(s.dir, name), b, err)
	}
	return v, nil
}

// writeUint stores a decimal counter durably.
func (s *store) writeUint(name string, v uint64) error {
	path := filepath.Join(s.dir, name)
	tmp, err := os.CreateTemp(s.dir, name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", v); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

const (
	seqFile         = "ring_seq"
	incarnationFile = "incarnation"
)

// nextIncarnation returns a number above every earlier incarnation of this
// node and persists it. Wall-clock nanoseconds keep it growing even if the
// data directory is lost; the stored value keeps it growing if the clock
// steps back.
func (s *store) nextIncarnation(now time.Time) (uint64, error) {
	prev, err := s.readUint(incarnationFile)
	if err != nil {
		return 0, err
	}
	inc := max(prev+1, uint64(now.UnixNano()))
	if err := s.writeUint(incarnationFile, inc); err != nil {
		return 0, fmt.Errorf("persisting incarnation: %w", err)
	}
	return inc, nil
}
