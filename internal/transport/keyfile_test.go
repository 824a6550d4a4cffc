package transport

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		size    int
		mode    os.FileMode
		wantErr string // substring; "" = success
	}{
		{"0600 is fine", 256, 0o600, ""},
		{"0400 is fine", 256, 0o400, ""},
		{"corosync authkey size (128)", 128, 0o400, ""},
		{"smallest", 16, 0o600, ""},
		{"largest", 4096, 0o600, ""},
		{"world readable", 256, 0o644, `permissions 0644 for "` + dir + `/world readable" are too open: the cluster key must not be accessible by group or others (chmod 600)`},
		{"group readable", 256, 0o640, "permissions 0640"},
		{"others writable", 256, 0o602, "permissions 0602"},
		{"too small", 15, 0o600, "is 15 bytes: it must be 16..4096 bytes"},
		{"empty", 0, 0o600, "is 0 bytes"},
		{"too large", 4097, 0o600, "is more than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			want := bytes.Repeat([]byte{0xAB}, tc.size)
			if err := os.WriteFile(path, want, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKey(path)
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("LoadKey = %d bytes, %v", len(got), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadKey error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("LoadKey of a missing file: no error")
	}
	if _, err := LoadKey(dir); err == nil {
		t.Fatal("LoadKey of a directory: no error")
	}
}

func TestWriteKeyLoadKeyRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authkey")
	if err := WriteKey(path, rand.Reader); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != GeneratedKeyLen {
		t.Fatalf("key file mode %v size %d", fi.Mode(), fi.Size())
	}
	key, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != GeneratedKeyLen || bytes.Equal(key, make([]byte, GeneratedKeyLen)) {
		t.Fatalf("key %x", key)
	}
	if _, err := NewSealer("c", key, 1, 1); err != nil {
		t.Fatalf("generated key not usable: %v", err)
	}

	// Never overwrite.
	err = WriteKey(path, rand.Reader)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second WriteKey = %v, want a refusal", err)
	}
	again, _ := LoadKey(path)
	if !bytes.Equal(again, key) {
		t.Fatal("the existing key was changed")
	}

	// A short random source leaves no file behind.
	short := filepath.Join(t.TempDir(), "short")
	if err := WriteKey(short, bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("WriteKey with a short random source: no error")
	}
	if _, err := os.Stat(short); !os.IsNotExist(err) {
		t.Fatalf("file left behind: %v", err)
	}
}
