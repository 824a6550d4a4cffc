// Package e2e runs real Conclave agents, as processes on loopback
// addresses and (as root) in network namespaces, and checks what an
// operator and a client program see: views, the CLI, ordered messages.
//
// Tests wait for conditions with deadlines and assert views, never timings.
// The binary is built once by TestMain; CONCLAVE_E2E_BINARY names a
// prebuilt one instead (for running the test binary as another user).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/lab"
)

// binary is the conclave binary under test.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if b := os.Getenv("CONCLAVE_E2E_BINARY"); b != "" {
		binary = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "conclave-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root (go env GOMOD: %q, %v)\n", gomod, err)
		return 1
	}
	binary = filepath.Join(dir, "conclave")
	build := exec.Command("go", "build", "-o", binary, "./cmd/conclave")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building conclave: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// token is the token timeout of tests that do not depend on the default:
// short enough to keep the package fast, long enough for a loaded 2-core
// machine running several clusters at once.
const token = 400 * time.Millisecond

// waitTimeout bounds every wait for a view. Views form in a few tokens;
// the margin is for a loaded machine, not for expected behaviour.
const waitTimeout = 30 * time.Second

// start starts a cluster, closes it when the test ends, and on failure
// prints the end of every node's log.
func start(t *testing.T, o lab.Options) *lab.Cluster {
	t.Helper()
	if o.Token == 0 {
		o.Token = token
	}
	return startRaw(t, o)
}

// startRaw is start without the test token: zero timings are the agent's
// defaults.
func startRaw(t *testing.T, o lab.Options) *lab.Cluster {
	t.Helper()
	o.Binary = binary
	// CONCLAVE_E2E_KEEP=1 keeps every cluster's directory (logs, configs).
	o.Keep = os.Getenv("CONCLAVE_E2E_KEEP") != ""
	// CONCLAVE_E2E_LOG_LEVEL=debug makes the agents' logs tell more.
	if l := os.Getenv("CONCLAVE_E2E_LOG_LEVEL"); l != "" && o.LogLevel == "" {
		o.LogLevel = l
	}
	c, err := lab.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, c)
	return c
}

// closeOnCleanup closes c when the test ends and, if it failed, prints the
// end of every node's log.
func closeOnCleanup(t *testing.T, c *lab.Cluster) {
	if c.Opts.Keep {
		t.Logf("cluster directory: %s", c.Dir)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range c.Nodes() {
				t.Logf("node %d log (%s), last lines:\n%s", id, c.Node(id).LogPath, c.LogTail(id, 40))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("closing the cluster: %v", err)
		}
	})
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ids returns 1..n.
func ids(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

// waitView waits for nodes to agree on a view of exactly members and
// returns its ring id.
func waitView(t *testing.T, c *lab.Cluster, nodes, members []uint32) ringID {
	t.Helper()
	r, err := c.WaitView(ctxFor(t, waitTimeout), nodes, members)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodes %v: view %v ring %s", nodes, members, r.Text())
	return ringID{r.Rep, r.Seq}
}

type ringID struct {
	Rep uint32
	Seq uint64
}

func (r ringID) String() string { return fmt.Sprintf("%x.%x", r.Rep, r.Seq) }

// runCLI runs the conclave binary and returns stdout, stderr and the exit
// status.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("conclave %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}
