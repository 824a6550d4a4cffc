package quorum

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/internal/config"
)

// withLines keeps only the lines of keys that the configuration sets, as
// the parser would.
func withLines(q *config.Quorum) {
	testLines := map[string]int{
		"quorum.expected_votes":        12,
		"quorum.two_node":              13,
		"quorum.last_man_standing":     14,
		"quorum.auto_tie_breaker":      15,
		"quorum.allow_downscale":       16,
		"quorum.wait_for_all":          17,
		"quorum.auto_tie_breaker_node": 18,
		"quorum.device":                20,
		"quorum.device.model":          21,
		"quorum.device.votes":          22,
	}
	q.Line = map[string]int{"quorum": 10}
	set := map[string]bool{
		"quorum.expected_votes":        q.ExpectedVotes != nil,
		"quorum.two_node":              q.TwoNode != nil,
		"quorum.last_man_standing":     q.LastManStanding != nil,
		"quorum.auto_tie_breaker":      q.AutoTieBreaker != nil,
		"quorum.allow_downscale":       q.AllowDownscale != nil,
		"quorum.wait_for_all":          q.WaitForAll != nil,
		"quorum.auto_tie_breaker_node": q.AutoTieBreakerNode != "",
		"quorum.device":                q.Device != nil,
		"quorum.device.model":          q.Device != nil,
		"quorum.device.votes":          q.Device != nil && q.Device.Votes != nil,
	}
	for k, ok := range set {
		if ok {
			q.Line[k] = testLines[k]
		}
	}
}

func cfgWith(n int, opts ...func(*config.Quorum)) Config {
	c := nodelist(n, opts...)(1)
	withLines(&c.Quorum)
	return c
}

func noNodelist(opts ...func(*config.Quorum)) Config {
	c := Config{Self: 1, Path: "/etc/corosync/corosync.conf"}
	for _, o := range opts {
		o(&c.Quorum)
	}
	withLines(&c.Quorum)
	return c
}

func expectedVotes(v uint32) func(*config.Quorum) {
	return func(q *config.Quorum) { q.ExpectedVotes = u32p(v) }
}

func modelOnly(q *config.Quorum) { q.Device = &config.Device{Model: "net"} }

// TestStartupErrors is every fatal row of the §5.2 validation table.
func TestStartupErrors(t *testing.T) {
	const p = "/etc/corosync/corosync.conf"
	unequal := cfgWith(3, modelOnly)
	unequal.Nodes[2].Votes = 2
	withLines(&unequal.Quorum)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no nodelist, no expected_votes", noNodelist(),
			p + ": quorum.expected_votes: configuration error: nodelist or quorum.expected_votes must be configured!"},
		{"not in the nodelist, no expected_votes", func() Config { c := cfgWith(3); c.Self = 9; return c }(),
			p + ": quorum.expected_votes: configuration error: nodelist or quorum.expected_votes must be configured!"},
		{"two_node and device", cfgWith(2, twoNode, device(u32p(1))),
			p + ":13: quorum.two_node: configuration error: two_node and quorum device cannot be configured at the same time!"},
		{"ATB odd no WFA with LMS", cfgWith(3, atbOn, lmsOn),
			p + ":14: quorum.last_man_standing: configuration error: auto_tie_breaker & last_man_standing not available in odd sized cluster"},
		{"device and LMS", cfgWith(4, lmsOn, device(u32p(1))),
			p + ":20: quorum.device: configuration error: quorum.device is not compatible with last_man_standing"},
		{"device and ATB", cfgWith(4, atbOn, device(u32p(1))),
			p + ":20: quorum.device: configuration error: quorum.device is not compatible with auto_tie_breaker"},
		{"device and allow_downscale", cfgWith(4, adOn, device(u32p(1))),
			p + ":20: quorum.device: configuration error: quorum.device is not compatible with allow_downscale"},
		{"device, expected_votes, no device.votes", cfgWith(4, expectedVotes(5), modelOnly),
			p + ": quorum.device.votes: configuration error: quorum.device.votes must be specified when quorum.expected_votes is set"},
		{"device, unequal node votes, no device.votes", unequal,
			p + ": quorum.device.votes: configuration error: quorum.device.votes must be specified when not all nodes votes 1"},
		{"device.votes too high", cfgWith(4, expectedVotes(5), device(u32p(4))),
			p + ":22: quorum.device.votes: configuration error: quorum.device.votes is too high or expected_votes is too low"},
		{"device.votes above expected_votes", cfgWith(4, expectedVotes(3), device(u32p(5))),
			p + ":22: quorum.device.votes: configuration error: quorum.device.votes is too high or expected_votes is too low"},
		// Order: the first failing check decides.
		{"device+LMS+ATB even: LMS first", cfgWith(4, lmsOn, atbOn, device(u32p(1))),
			p + ":20: quorum.device: configuration error: quorum.device is not compatible with last_man_standing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New succeeded: %+v", e.Status(time.Time{}))
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tc.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("not a *config.Error: %T", err)
			}
		})
	}

	t.Run("node id 0", func(t *testing.T) {
		c := cfgWith(3)
		c.Self = 0
		if _, err := New(c); err == nil {
			t.Fatal("node id 0 accepted")
		}
	})
	t.Run("no lines when built in code", func(t *testing.T) {
		c := nodelist(2, twoNode, device(u32p(1)))(1)
		c.Path = "x.conf"
		_, err := New(c)
		if want := "x.conf: quorum.two_node: configuration error: two_node and quorum device cannot be configured at the same time!"; err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}

// TestStartupWarnings is every non-fatal row of the §5.2 table and the
// auto_tie_breaker_node parsing.
func TestStartupWarnings(t *testing.T) {
	const p = "/etc/corosync/corosync.conf"
	for _, tc := range []struct {
		name     string
		cfg      Config
		warn     []string
		atb      uint32
		list     []uint32
		twoNode  bool
		wfa      bool
		infoFlag uint32
	}{
		{name: "two_node and ATB: two_node off, wait_for_all kept", cfg: cfgWith(2, twoNode, atbOn),
			warn: []string{p + ":13: quorum.two_node: two_node and auto_tie_breaker are both specified but are not compatible. two_node has been disabled, please fix your corosync.conf"},
			atb:  1, wfa: true, infoFlag: InfoWaitForAll | InfoAutoTieBreaker},
		{name: "ATB odd, no WFA, no LMS: ATB off", cfg: cfgWith(3, atbOn),
			warn: []string{p + ":15: quorum.auto_tie_breaker: auto_tie_breaker is set and the cluster has an odd number of nodes. wait_for_all needs to be set for this configuration but it is missing. Therefore auto_tie_breaker has been disabled. Please fix your corosync.conf"}},
		{name: "ATB odd with WFA", cfg: cfgWith(3, atbOn, wfaOn), atb: 1, wfa: true, infoFlag: InfoAutoTieBreaker | InfoWaitForAll},
		{name: "ATB odd with LMS and WFA", cfg: cfgWith(3, atbOn, wfaOn, lmsOn), atb: 1, wfa: true,
			infoFlag: InfoAutoTieBreaker | InfoWaitForAll | InfoLastManStanding},
		{name: "ATB without nodelist is never odd", cfg: noNodelist(expectedVotes(3), atbOn), atb: 1, infoFlag: InfoAutoTieBreaker},
		{name: "atb node meaningless", cfg: cfgWith(4, atbNode("lowest")),
			warn: []string{p + ":18: quorum.auto_tie_breaker_node: auto_tie_breaker_node: is meaningless if auto_tie_breaker is set to 0"}},
		{name: "atb node highest", cfg: cfgWith(4, atbOn, atbNode("highest")), atb: 2, infoFlag: InfoAutoTieBreaker},
		{name: "atb node lowest", cfg: cfgWith(4, atbOn, atbNode("lowest")), atb: 1, infoFlag: InfoAutoTieBreaker},
		{name: "atb node list", cfg: cfgWith(4, atbOn, atbNode("3 1 4")), atb: 3, list: []uint32{3, 1, 4}, infoFlag: InfoAutoTieBreaker},
		{name: "atb node list stops at 0", cfg: cfgWith(4, atbOn, atbNode("2 0 3")), atb: 3, list: []uint32{2}, infoFlag: InfoAutoTieBreaker},
		{name: "atb node list stops at junk", cfg: cfgWith(4, atbOn, atbNode("  2\t4,3")), atb: 3, list: []uint32{2, 4}, infoFlag: InfoAutoTieBreaker},
		{name: "atb node list negative", cfg: cfgWith(4, atbOn, atbNode("-1 2")), atb: 3, list: []uint32{0xffffffff, 2}, infoFlag: InfoAutoTieBreaker},
		{name: "atb node list starting with 0", cfg: cfgWith(4, atbOn, atbNode("0 1")),
			warn: []string{p + ":18: quorum.auto_tie_breaker_node: auto_tie_breaker_nodes is not valid. It must be 'lowest', 'highest' or a space-separated list of node IDs. auto_tie_breaker is disabled"}},
		{name: "atb node atoi truncates to 0", cfg: cfgWith(4, atbOn, atbNode("4294967296")),
			warn: []string{p + ":18: quorum.auto_tie_breaker_node: auto_tie_breaker_nodes is not valid. It must be 'lowest', 'highest' or a space-separated list of node IDs. auto_tie_breaker is disabled"}},
		{name: "atb node invalid", cfg: cfgWith(4, atbOn, atbNode("Lowest")),
			warn: []string{p + ":18: quorum.auto_tie_breaker_node: auto_tie_breaker_nodes is not valid. It must be 'lowest', 'highest' or a space-separated list of node IDs. auto_tie_breaker is disabled"}},
		{name: "two_node implies wait_for_all", cfg: cfgWith(2, twoNode), twoNode: true, wfa: true, infoFlag: InfoTwoNode | InfoWaitForAll},
		{name: "two_node with explicit wait_for_all 0", cfg: cfgWith(2, twoNode, wfaOff), twoNode: true, infoFlag: InfoTwoNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if w := e.Warnings(); !slices.Equal(w, tc.warn) {
				t.Errorf("warnings\n got %q\nwant %q", w, tc.warn)
			}
			st := e.Status(time.Time{})
			if st.ATBType != tc.atb || !slices.Equal(e.atbList, tc.list) {
				t.Errorf("atb %d %v, want %d %v", st.ATBType, e.atbList, tc.atb, tc.list)
			}
			if e.twoNode != tc.twoNode || e.wfa != tc.wfa {
				t.Errorf("two_node %v wait_for_all %v, want %v %v", e.twoNode, e.wfa, tc.twoNode, tc.wfa)
			}
			if got := st.Flags &^ InfoQuorate; got != tc.infoFlag {
				t.Errorf("flags %#x, want %#x", got, tc.infoFlag)
			}
		})
	}
}

// TestDerivedVotes: device votes and expected votes derived at startup.
func TestDerivedVotes(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		cfg                     Config
		votes, expected, device uint32
		quorum                  uint32
	}{
		{"2 nodes + device", cfgWith(2, modelOnly), 1, 3, 1, 2},
		{"3 nodes + device", cfgWith(3, modelOnly), 1, 5, 2, 3},
		{"4 nodes + device", cfgWith(4, modelOnly), 1, 7, 3, 4},
		{"4 nodes + device votes 1, alone", cfgWith(4, device(u32p(1))), 1, 4, 1, 3},
		{"expected_votes overrides the nodelist", cfgWith(3, expectedVotes(5)), 1, 5, 0, 3},
		{"expected_votes + device votes", cfgWith(3, expectedVotes(5), device(u32p(2))), 1, 5, 2, 3},
		{"quorum.votes without nodelist", noNodelist(expectedVotes(6), func(q *config.Quorum) { q.Votes = u32p(3) }), 3, 6, 0, 4},
		{"quorum.votes ignored with nodelist", cfgWith(3, func(q *config.Quorum) { q.Votes = u32p(3) }), 1, 3, 0, 2},
		{"device section without model", cfgWith(3, func(q *config.Quorum) { q.Device = &config.Device{Votes: u32p(5)} }), 1, 3, 0, 2},
		{"device votes 0", cfgWith(3, device(u32p(0))), 1, 3, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := e.GetInfo(time.Time{}, 0)
			if in.NodeVotes != tc.votes || in.NodeExpectedVotes != tc.expected || in.QdeviceVotes != tc.device || in.Quorum != tc.quorum {
				t.Errorf("votes %d expected %d device %d quorum %d, want %d %d %d %d",
					in.NodeVotes, in.NodeExpectedVotes, in.QdeviceVotes, in.Quorum, tc.votes, tc.expected, tc.device, tc.quorum)
			}
		})
	}

	t.Run("device timeouts", func(t *testing.T) {
		e, err := New(cfgWith(3, device(u32p(1))))
		if err != nil {
			t.Fatal(err)
		}
		if e.qdevTimeout != time.Second || e.qdevSyncTimeout != 3*time.Second {
			t.Errorf("timeouts %v %v", e.qdevTimeout, e.qdevSyncTimeout)
		}
		e, _ = New(cfgWith(3, modelOnly))
		if e.qdevTimeout != DefaultQdeviceTimeout || e.qdevSyncTimeout != DefaultQdeviceSyncTimeout {
			t.Errorf("default timeouts %v %v", e.qdevTimeout, e.qdevSyncTimeout)
		}
	})
	t.Run("allow_downscale implies tracking", func(t *testing.T) {
		c := cfgWith(3, adOn, expectedVotes(9))
		c.EVBarrier = 5
		e, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if !e.evTracking || e.us.expected != 5 || e.evBarrier != 5 {
			t.Errorf("tracking %v expected %d ev_barrier %d", e.evTracking, e.us.expected, e.evBarrier)
		}
	})
	t.Run("barrier ignored without tracking", func(t *testing.T) {
		c := cfgWith(3)
		c.EVBarrier = 9
		e, _ := New(c)
		if e.us.expected != 3 || e.Ready().PersistBarrier != 0 {
			t.Errorf("expected %d", e.us.expected)
		}
	})
	t.Run("wait_for_all armed at startup", func(t *testing.T) {
		e, _ := New(cfgWith(3, wfaOn))
		if !e.Status(time.Time{}).WaitForAllStatus || e.us.flags&flagWFAStatus == 0 {
			t.Error("not waiting")
		}
	})
	t.Run("lms window", func(t *testing.T) {
		e, _ := New(cfgWith(3, lmsOn))
		if e.lmsWindow != DefaultLMSWindow {
			t.Errorf("window %v", e.lmsWindow)
		}
		e, _ = New(cfgWith(3, lmsOn, lmsWindow(1500*time.Millisecond)))
		if e.lmsWindow != 1500*time.Millisecond {
			t.Errorf("window %v", e.lmsWindow)
		}
	})
}

func TestStrtol(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		rest string
	}{
		{"12 3", 12, " 3"}, {" \t-7x", -7, "x"}, {"+5", 5, ""}, {"abc", 0, "abc"}, {"", 0, ""}, {"-", 0, "-"},
		{"99999999999999999999", 1<<63 - 1, ""}, {"-99999999999999999999", -1 << 63, ""},
		{"9223372036854775808", 1<<63 - 1, ""}, {"-9223372036854775808", -1 << 63, ""},
	} {
		n, rest := strtol(tc.in)
		if n != tc.n || rest != tc.rest {
			t.Errorf("strtol(%q) = %d %q, want %d %q", tc.in, n, rest, tc.n, tc.rest)
		}
	}
	if !strings.Contains(warnATBNodeInvalid, "auto_tie_breaker is disabled") {
		t.Fatal("warning text changed")
	}
}
