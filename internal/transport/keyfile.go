package transport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// GeneratedKeyLen is the size in bytes of a key made by WriteKey.
const GeneratedKeyLen = 256

// LoadKey reads a cluster key file: raw bytes, MinKeyLen..MaxKeyLen long
// (corosync-keygen's authkey files are accepted as they are). Like ssh, it
// refuses a file that group or others may read or write, and it checks the
// mode of the file it opened, not of whatever the path names later.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cluster key %q is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("permissions %04o for %q are too open: the cluster key must not be accessible by group or others (chmod 600)", perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, MaxKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("cluster key %q: %w", path, err)
	}
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		size := fmt.Sprint(len(key))
		if len(key) > MaxKeyLen {
			size = fmt.Sprintf("more than %d", MaxKeyLen)
		}
		return nil, fmt.Errorf("cluster key %q is %s bytes: it must be %d..%d bytes", path, size, MinKeyLen, MaxKeyLen)
	}
	return key, nil
}

// WriteKey creates path holding GeneratedKeyLen bytes read from rnd (pass
// crypto/rand.Reader), with mode 0600. It refuses to overwrite an existing
// file: replacing a cluster key is a deliberate act (remove the old one
// first). The file and its directory are fsynced before it returns.
func WriteKey(path string, rnd io.Reader) (err error) {
	key := make([]byte, GeneratedKeyLen)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return fmt.Errorf("cluster key: read random bytes: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cluster key %q already exists: refusing to overwrite it (remove it first to replace the key)", path)
		}
		return fmt.Errorf("cluster key: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	// The umask may only have narrowed 0600; make sure it is not wider.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("cluster key %q: %w", path, err)
	}
	if _, err := f.Write(key); err != nil {
		return fmt.Errorf("cluster key %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cluster key %q: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cluster key %q: %w", path, err)
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		// Make the new directory entry durable; best effort (some file
		// systems refuse fsync on directories).
		_ = d.Sync()
		d.Close()
	}
	return nil
}
