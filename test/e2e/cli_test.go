package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conclave/conclave/internal/lab"
)

// agentFails runs `conclave agent` that must fail before it does anything,
// and returns its stderr and exit status.
func agentFails(t *testing.T, args ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"agent", "--node-id", "1", "--socket", filepath.Join(dir, "s.sock"), "--data-dir", filepath.Join(dir, "data")}, args...)
	_, errOut, code := runCLI(t, nil, args...)
	if code == 0 {
		t.Fatalf("conclave %s: exit status 0, want a failure", strings.Join(args, " "))
	}
	return errOut, code
}

func TestCLIConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, text string
		want             []string // substrings of stderr
	}{
		{
			name: "bad value", file: "conclave.toml",
			text: "[totem]\ncluster_name = \"x\"\ncrypto_cipher = \"none\"\ntoken = \"soon\"\n\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"127.0.0.1\"\n",
			want: []string{"conclave.toml:4:", "totem.token", "soon"},
		},
		{
			name: "unknown section", file: "conclave.toml",
			text: "[totem]\ncluster_name = \"x\"\ncrypto_cipher = \"none\"\n\n[tottem]\ntoken = 100\n\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"127.0.0.1\"\n",
			want: []string{"conclave.toml:5:", "tottem", "unknown"},
		},
		{
			name: "corosync bad value", file: "corosync.conf",
			text: "totem {\n    version: 2\n    cluster_name: x\n    crypto_cipher: none\n    crypto_hash: none\n}\n\nnodelist {\n    node {\n        ring0_addr: 127.0.0.1\n        nodeid: zero\n    }\n}\n",
			want: []string{"corosync.conf:11:", "nodelist.node.", "nodeid", "zero"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			errOut, code := agentFails(t, "--config", path)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (configuration error); stderr:\n%s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(errOut, path) {
				t.Errorf("stderr does not name the file %s:\n%s", path, errOut)
			}
		})
	}
}

// TestCLIKeyFileTooOpen: like ssh, the agent refuses a key others may read,
// and says how to fix it.
func TestCLIKeyFileTooOpen(t *testing.T) {
	t.Parallel()
	c, err := lab.New(lab.Options{Binary: binary, Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := filepath.Join(c.Dir, "authkey") // the lab's key, named by the config
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	errOut, _ := agentFails(t, "--config", c.Node(1).ConfigPath)
	for _, w := range []string{key, "0644", "too open", "chmod 600"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	// The same through --key-file.
	errOut, _ = agentFails(t, "--config", c.Node(1).ConfigPath, "--key-file", key)
	if !strings.Contains(errOut, "too open") {
		t.Errorf("--key-file: stderr lacks \"too open\":\n%s", errOut)
	}
}

func TestCLIStatusNoAgent(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nothing.sock")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", nil, []string{"status", "--socket", missing}},
		{"env", []string{"CONCLAVE_SOCKET=" + missing}, []string{"status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit status 0 without an agent; stdout:\n%s", out)
			}
			for _, w := range []string{missing, "is the agent running"} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestCLIStatusEnv: CONCLAVE_SOCKET picks the agent when --socket is not
// given, and --socket wins over it.
func TestCLIStatusEnv(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 2, Cleartext: true})
	if err := c.WaitSocket(ctxFor(t, waitTimeout), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSocket(ctxFor(t, waitTimeout), 1); err != nil {
		t.Fatal(err)
	}
	env := []string{"CONCLAVE_SOCKET=" + c.Node(2).Socket}
	for _, tc := range []struct {
		args []string
		want uint32
	}{
		{[]string{"status", "--json"}, 2},
		{[]string{"status", "--json", "--socket", c.Node(1).Socket}, 1},
	} {
		out, errOut, code := runCLI(t, env, tc.args...)
		if code != 0 {
			t.Fatalf("conclave %v: exit status %d: %s", tc.args, code, errOut)
		}
		var s statusJSON
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		if s.NodeID != tc.want {
			t.Errorf("conclave %v with CONCLAVE_SOCKET=node 2: answered by node %d, want %d", tc.args, s.NodeID, tc.want)
		}
	}
	// The text form works too and names the node.
	out, errOut, code := runCLI(t, env, "status")
	if code != 0 || !strings.Contains(out, "Node ID:") {
		t.Errorf("conclave status: exit status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
