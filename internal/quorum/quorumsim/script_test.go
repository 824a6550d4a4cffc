package quorumsim

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/conclave/conclave/internal/config"
	"github.com/conclave/conclave/internal/sim"
)

// TestScripts runs the quorum scenarios in testdata/: the worked examples
// of votequorum(5) and the rules of spec §5, on simulated clusters, printing
// each node's getinfo after the steps. Regenerate with -rewrite after a
// deliberate change, and read the diff.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h *Harness
		sc := &sim.Script{}
		sc.Configure = func(o *sim.Options, kv map[string]string) error {
			q, votes, lease, err := quorumOptions(kv)
			if err != nil {
				return err
			}
			h = New(o, q, lease)
			h.Votes, h.NoNodelist = votes, kv["nodelist"] == "no"
			return nil
		}
		sc.Extra = func(cmd string, args []string) (string, bool, error) {
			if h == nil {
				return "", false, nil
			}
			h.S = sc.S
			return h.Run(cmd, args)
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var args []string
			for _, a := range d.CmdArgs {
				args = append(args, a.String())
			}
			out, err := sc.Run(d.Cmd, args)
			if h != nil && h.S == nil {
				h.S = sc.S
			}
			if err != nil {
				return out + "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

// quorumOptions reads the quorum settings of a cluster command:
//
//	expected_votes=N two_node=1 wait_for_all=0|1 last_man_standing=1
//	lms_window=D auto_tie_breaker=1 atb_node=lowest|highest|3,1
//	allow_downscale=1 expected_votes_tracking=1 device=MODEL device_votes=N
//	device_timeout=D device_sync_timeout=D votes=1,1,2 nodelist=no lease=off
func quorumOptions(kv map[string]string) (config.Quorum, map[NodeID]uint32, bool, error) {
	q := config.Quorum{Provider: config.QuorumProvider, Line: map[string]int{}}
	flag := func(key string) (*bool, error) {
		v, ok := kv[key]
		if !ok {
			return nil, nil
		}
		b := v == "1"
		if v != "0" && v != "1" {
			return nil, fmt.Errorf("%s=%q: want 0 or 1", key, v)
		}
		return &b, nil
	}
	num := func(key string) (*uint32, error) {
		v, ok := kv[key]
		if !ok {
			return nil, nil
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		x := uint32(n)
		return &x, nil
	}
	dur := func(key string) (*time.Duration, error) {
		v, ok := kv[key]
		if !ok {
			return nil, nil
		}
		d, err := time.ParseDuration(v)
		return &d, err
	}
	var err error
	for key, dst := range map[string]**bool{"two_node": &q.TwoNode, "wait_for_all": &q.WaitForAll, "last_man_standing": &q.LastManStanding,
		"auto_tie_breaker": &q.AutoTieBreaker, "allow_downscale": &q.AllowDownscale, "expected_votes_tracking": &q.ExpectedVotesTracking} {
		if *dst, err = flag(key); err != nil {
			return q, nil, false, err
		}
	}
	if q.ExpectedVotes, err = num("expected_votes"); err != nil {
		return q, nil, false, err
	}
	if q.LastManStandingWindow, err = dur("lms_window"); err != nil {
		return q, nil, false, err
	}
	q.AutoTieBreakerNode = strings.ReplaceAll(kv["atb_node"], ",", " ")
	if m, ok := kv["device"]; ok {
		q.Device = &config.Device{Model: m}
		if q.Device.Votes, err = num("device_votes"); err != nil {
			return q, nil, false, err
		}
		if q.Device.Timeout, err = dur("device_timeout"); err != nil {
			return q, nil, false, err
		}
		if q.Device.SyncTimeout, err = dur("device_sync_timeout"); err != nil {
			return q, nil, false, err
		}
	}
	votes := map[NodeID]uint32{}
	if v := kv["votes"]; v != "" {
		for i, s := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return q, nil, false, fmt.Errorf("votes: %w", err)
			}
			votes[NodeID(i+1)] = uint32(n)
		}
	}
	return q, votes, kv["lease"] != "off", nil
}
