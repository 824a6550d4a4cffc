package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conclave/conclave/internal/lab"
)

// TestSocketAccess: the agent serves root, its own user and the configured
// uids; anyone else gets a clear refusal, decided by the kernel's account of
// the caller (SO_PEERCRED), not by file permissions.
func TestSocketAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the client as another user (running as uid", os.Geteuid(), ")")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run the client as another user")
	}
	t.Parallel()
	// A copy of the binary that uid 65534 may execute.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "conclave")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(socket string, args ...string) (string, int) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, append(args, "--socket", socket)...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	for _, tc := range []struct {
		name  string
		extra string
		allow bool
	}{
		{"not listed", "", false},
		{"listed uid", "[agent]\nallowed_uids = [65534]\n", true},
		{"listed group", "[agent]\nallowed_gids = [65534]\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, lab.Options{Nodes: 1, ExtraTOML: tc.extra})
			waitView(t, c, ids(1), ids(1))
			// Let uid 65534 reach the socket file, so only the agent decides.
			for d := filepath.Dir(c.Node(1).Socket); d != "/" && d != "."; d = filepath.Dir(d) {
				if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
					os.Chmod(d, fi.Mode().Perm()|0o005)
				}
			}
			out, code := asNobody(c.Node(1).Socket, "status")
			switch {
			case tc.allow && (code != 0 || !strings.Contains(out, "Node ID:")):
				t.Fatalf("allowed user refused (exit %d):\n%s", code, out)
			case !tc.allow && (code == 0 || !strings.Contains(out, "permission denied")):
				t.Fatalf("unlisted user not refused clearly (exit %d):\n%s", code, out)
			}
			// The same on votequorum's own transport (not gRPC).
			out, code = asNobody(c.Node(1).Socket, "quorum", "status")
			switch {
			case tc.allow && (code != 0 || !strings.Contains(out, "Quorum information")):
				t.Fatalf("allowed user refused by votequorum (exit %d):\n%s", code, out)
			case !tc.allow && (code == 0 || !strings.Contains(out, "uid 65534: permission denied")):
				t.Fatalf("unlisted user not refused clearly by votequorum (exit %d):\n%s", code, out)
			}
		})
	}
}
