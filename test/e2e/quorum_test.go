package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/lab"
	"github.com/conclave/conclave/votequorum"
)

// quorumJSON is the stable shape of `conclave quorum status --json`.
type quorumJSON struct {
	NodeID           uint32   `json:"node_id"`
	RingID           ringID   `json:"ring_id"`
	Quorate          bool     `json:"quorate"`
	ExpectedVotes    uint32   `json:"expected_votes"`
	HighestExpected  uint32   `json:"highest_expected"`
	TotalVotes       uint32   `json:"total_votes"`
	Quorum           uint32   `json:"quorum"`
	Flags            []string `json:"flags"`
	WaitForAllStatus bool     `json:"wait_for_all_status"`
	Nodes            []struct {
		NodeID        uint32 `json:"nodeid"`
		Name          string `json:"name"`
		Votes         uint32 `json:"votes"`
		ExpectedVotes uint32 `json:"expected_votes"`
		State         string `json:"state"`
		Local         bool   `json:"local"`
	} `json:"nodes"`
}

func quorumStatusJSON(t *testing.T, c *lab.Cluster, id uint32) (quorumJSON, int) {
	t.Helper()
	out, errOut, code := runCLI(t, []string{"CONCLAVE_SOCKET=" + c.Node(id).Socket}, "quorum", "status", "--json")
	var q quorumJSON
	if code == 1 {
		return q, code
	}
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Fatalf("node %d: quorum status --json: %v\n%s%s", id, err, out, errOut)
	}
	return q, code
}

// want is what one node's quorum status must show, in the -s block's
// terms; flags as the Flags line prints them.
type want struct {
	quorate                                 bool
	expected, highest, total, quorum, nodes int
	flags                                   string
	members                                 []uint32
}

// waitQuorum waits until every node in ids reports a quorum status whose
// ring has exactly members, then checks the text and JSON outputs against
// w and each other; it returns the ring.
func waitQuorum(t *testing.T, c *lab.Cluster, nodeIDs []uint32, w want) ringID {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var ring ringID
	for _, id := range nodeIDs {
		for {
			q, code := quorumStatusJSON(t, c, id)
			if code != 1 && q.Quorate == w.quorate && int(q.TotalVotes) == w.total && int(q.ExpectedVotes) == w.expected &&
				memberIDs(q) == fmt.Sprint(w.members) {
				ring = q.RingID
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never showed %+v; last: %+v (exit %d)", id, w, q, code)
			}
			time.Sleep(20 * time.Millisecond)
		}
		checkQuorumText(t, c, id, w)
	}
	return ring
}

func memberIDs(q quorumJSON) string {
	var m []uint32
	for _, n := range q.Nodes {
		if n.State == "member" {
			m = append(m, n.NodeID)
		}
	}
	return fmt.Sprint(m)
}

var dateLine = regexp.MustCompile(`(?m)^Date:             .*$`)

// checkQuorumText compares `conclave quorum status` with the text
// corosync-quorumtool -s prints for w, and with the JSON output.
func checkQuorumText(t *testing.T, c *lab.Cluster, id uint32, w want) {
	t.Helper()
	env := []string{"CONCLAVE_SOCKET=" + c.Node(id).Socket}
	out, errOut, code := runCLI(t, env, "quorum", "status")
	q, _ := quorumStatusJSON(t, c, id)
	wantCode := 2
	if w.quorate {
		wantCode = 0
	}
	if code != wantCode {
		t.Errorf("node %d: quorum status exit %d, want %d\n%s%s", id, code, wantCode, out, errOut)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Quorum information\n------------------\nDate:             X\nQuorum provider:  corosync_votequorum\n")
	fmt.Fprintf(&b, "Nodes:            %d\nNode ID:          %d\nRing ID:          %x.%x\nQuorate:          %s\n\n", w.nodes, id, q.RingID.Rep, q.RingID.Seq, map[bool]string{true: "Yes", false: "No"}[w.quorate])
	fmt.Fprintf(&b, "Votequorum information\n----------------------\nExpected votes:   %d\nHighest expected: %d\nTotal votes:      %d\n", w.expected, w.highest, w.total)
	if w.quorate {
		fmt.Fprintf(&b, "Quorum:           %d  \n", w.quorum)
	} else {
		fmt.Fprintf(&b, "Quorum:           %d Activity blocked\n", w.quorum)
	}
	fmt.Fprintf(&b, "Flags:            %s\n\nMembership information\n----------------------\n    Nodeid      Votes Name\n", w.flags)
	for _, m := range w.members {
		local := ""
		if m == id {
			local = " (local)"
		}
		fmt.Fprintf(&b, "%10d %10d node%d%s\n", m, 1, m, local)
	}
	got := dateLine.ReplaceAllString(out, "Date:             X")
	if got != b.String() {
		t.Errorf("node %d: quorum status:\n%s\nwant:\n%s", id, got, b.String())
	}
	// The JSON agrees with the text.
	flags := strings.Fields(w.flags)
	if !slices.Equal(q.Flags[:min(len(q.Flags), len(flags))], flags) || int(q.Quorum) != w.quorum || int(q.HighestExpected) != w.highest {
		t.Errorf("node %d: --json %+v disagrees with %+v", id, q, w)
	}
}

// TestQuorumThreeNodes: a 3-node cluster from an unmodified corosync.conf
// is quorate with the defaults, stays quorate when one node dies (which
// the table then shows as dead), and the bad inputs of the spec change
// nothing.
func TestQuorumThreeNodes(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 3, Format: "corosync"})
	waitView(t, c, ids(3), ids(3))
	waitQuorum(t, c, ids(3), want{true, 3, 3, 3, 2, 3, "Quorate ", ids(3)})

	// Bad input gets the spec's error and changes nothing.
	env := []string{"CONCLAVE_SOCKET=" + c.Node(1).Socket}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"quorum", "expected", "0"}, "New expected votes value was not valid, try a positive number"},
		{[]string{"quorum", "votes", "--", "-1"}, "New votes value was not valid, try a positive number or zero"},
		{[]string{"quorum", "expected", "2"}, "Unable to set expected votes: CS_ERR_INVALID_PARAM"},
		{[]string{"quorum", "votes", "--node", "9", "1"}, "Unable to set votes 1 for nodeid: 9: CS_ERR_NAME_NOT_FOUND"},
		{[]string{"quorumtool", "-e", "0"}, "New expected votes value was not valid, try a positive number"},
	} {
		_, errOut, code := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, errOut, tc.msg)
		}
	}
	h, err := votequorum.Initialize(&votequorum.Callbacks{}, votequorum.WithSocket(c.Node(1).Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Finalize()
	if err := h.QdeviceRegister(strings.Repeat("q", 255)); err != cs.ErrInvalidParam {
		t.Errorf("registering a device with a 255-byte name: %v, want CS_ERR_INVALID_PARAM", err)
	}
	if err := h.QdevicePoll("nope", true, votequorum.RingID{NodeID: 1, Seq: 1}); err != cs.ErrNotExist {
		t.Errorf("polling an unregistered device: %v, want CS_ERR_NOT_EXIST", err)
	}
	if _, err := h.GetInfo(77); err != cs.ErrNotExist {
		t.Errorf("getinfo of an unknown node: %v, want CS_ERR_NOT_EXIST", err)
	}
	waitQuorum(t, c, ids(3), want{true, 3, 3, 3, 2, 3, "Quorate ", ids(3)})

	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, []uint32{1, 2}, []uint32{1, 2})
	waitQuorum(t, c, []uint32{1, 2}, want{true, 3, 3, 2, 2, 2, "Quorate ", []uint32{1, 2}})
	q, _ := quorumStatusJSON(t, c, 1)
	if len(q.Nodes) != 3 || q.Nodes[2].State != "dead" {
		t.Errorf("the JSON should list node 3 as dead: %+v", q.Nodes)
	}
}

// TestQuorumTwoNode: two_node keeps the survivor quorate (quorum 1), and
// wait_for_all (implied) is configured.
func TestQuorumTwoNode(t *testing.T) {
	t.Parallel()
	c := start(t, lab.Options{Nodes: 2, Format: "corosync", Quorum: [][2]string{{"two_node", "1"}}})
	waitView(t, c, ids(2), ids(2))
	waitQuorum(t, c, ids(2), want{true, 2, 2, 2, 1, 2, "2Node Quorate WaitForAll ", ids(2)})
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	waitQuorum(t, c, []uint32{1}, want{true, 2, 2, 1, 1, 1, "2Node Quorate WaitForAll ", []uint32{1}})
}

// TestQuorumSplitFour: a 4-node cluster split 2|2 under each option set;
// each side shows what Corosync shows, and the cluster heals.
func TestQuorumSplitFour(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        [][2]string
		flags       string // before the split, all four quorate
		left, right want
	}{
		{"none", nil, "Quorate ",
			want{false, 4, 4, 2, 3, 2, "", []uint32{1, 2}}, want{false, 4, 4, 2, 3, 2, "", []uint32{3, 4}}},
		{"last_man_standing", [][2]string{{"last_man_standing", "1"}}, "Quorate LastManStanding ",
			want{false, 4, 4, 2, 3, 2, "LastManStanding ", []uint32{1, 2}}, want{false, 4, 4, 2, 3, 2, "LastManStanding ", []uint32{3, 4}}},
		{"auto_tie_breaker", [][2]string{{"auto_tie_breaker", "1"}}, "Quorate AutoTieBreaker ",
			want{true, 4, 4, 2, 3, 2, "Quorate AutoTieBreaker ", []uint32{1, 2}}, want{false, 4, 4, 2, 3, 2, "AutoTieBreaker ", []uint32{3, 4}}},
		{"wait_for_all", [][2]string{{"wait_for_all", "1"}}, "Quorate WaitForAll ",
			want{false, 4, 4, 2, 3, 2, "WaitForAll ", []uint32{1, 2}}, want{false, 4, 4, 2, 3, 2, "WaitForAll ", []uint32{3, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startNetns(t, lab.Options{Nodes: 4, Format: "corosync", Quorum: tc.opts})
			waitView(t, c, ids(4), ids(4))
			waitQuorum(t, c, ids(4), want{true, 4, 4, 4, 3, 4, tc.flags, ids(4)})
			if err := c.Partition([]uint32{1, 2}, []uint32{3, 4}); err != nil {
				t.Fatal(err)
			}
			waitQuorum(t, c, []uint32{1, 2}, tc.left)
			waitQuorum(t, c, []uint32{3, 4}, tc.right)
			if err := c.Heal(); err != nil {
				t.Fatal(err)
			}
			waitView(t, c, ids(4), ids(4))
			waitQuorum(t, c, ids(4), want{true, 4, 4, 4, 3, 4, tc.flags, ids(4)})
		})
	}
}
