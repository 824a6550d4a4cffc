package quorum

import (
	"errors"
	"math"

	"github.com/conclave/conclave/internal/config"
)

// The startup errors of votequorum_readconfig, word for word: operators
// search the web for these strings.
const (
	errNoExpected      = "configuration error: nodelist or quorum.expected_votes must be configured!"
	errTwoNodeDevice   = "configuration error: two_node and quorum device cannot be configured at the same time!"
	errATBLMSOdd       = "configuration error: auto_tie_breaker & last_man_standing not available in odd sized cluster"
	errDeviceLMS       = "configuration error: quorum.device is not compatible with last_man_standing"
	errDeviceATB       = "configuration error: quorum.device is not compatible with auto_tie_breaker"
	errDeviceAD        = "configuration error: quorum.device is not compatible with allow_downscale"
	errDeviceVotesEV   = "configuration error: quorum.device.votes must be specified when quorum.expected_votes is set"
	errDeviceVotesOdd  = "configuration error: quorum.device.votes must be specified when not all nodes votes 1"
	errDeviceVotesHigh = "configuration error: quorum.device.votes is too high or expected_votes is too low"
)

// The non-fatal configuration warnings (Corosync logs them at WARNING or
// CRIT and carries on with the feature switched off).
const (
	warnATBNodeMeaningless = "auto_tie_breaker_node: is meaningless if auto_tie_breaker is set to 0"
	warnATBNodeInvalid     = "auto_tie_breaker_nodes is not valid. It must be 'lowest', 'highest' or a space-separated list of node IDs. auto_tie_breaker is disabled"
	warnTwoNodeATB         = "two_node and auto_tie_breaker are both specified but are not compatible. two_node has been disabled, please fix your corosync.conf"
	warnATBOdd             = "auto_tie_breaker is set and the cluster has an odd number of nodes. wait_for_all needs to be set for this configuration but it is missing. Therefore auto_tie_breaker has been disabled. Please fix your corosync.conf"
)

// qdevVotesUnset is how votequorum.c marks "quorum.device.votes absent": -1
// in a uint32. A configured value of 4294967295 is therefore taken as
// absent too, as in Corosync.
const qdevVotesUnset = math.MaxUint32

// cfgError builds "<path>:<line>: <key>: <message>", with the line of key
// when the file has it. config.Error formats exactly that and leaves out a
// zero line, and callers can errors.As it.
func (e *Engine) cfgError(key, msg string) error {
	return &config.Error{File: e.cfg.Path, Line: e.cfg.Quorum.Line[key], Key: key, Msg: msg}
}

// warn records a non-fatal configuration problem in the same format.
func (e *Engine) warn(key, msg string) {
	e.warnings = append(e.warnings, e.cfgError(key, msg).Error())
}

func flag(p *bool) bool { return p != nil && *p }

// readConfig is votequorum_readconfig(VOTEQUORUM_READCONFIG_STARTUP): the
// checks run in Corosync's order, because the order decides which error a
// configuration with several problems reports, and some derived values
// (wait_for_all from two_node before ATB switches two_node off) depend on
// it.
func (e *Engine) readConfig() error {
	q := e.cfg.Quorum
	var expected uint32
	if q.ExpectedVotes != nil {
		expected = *q.ExpectedVotes
	}

	// The nodelist counts only if the local node is in it.
	haveNodelist := false
	for _, n := range e.cfg.Nodes {
		if n.ID == e.self {
			haveNodelist = true
			break
		}
	}
	var nodeVotes, nodeCount, nodeExpected uint32
	if haveNodelist {
		seen := false
		for _, n := range e.cfg.Nodes {
			nodeCount++
			nodeExpected += n.Votes
			if n.ID == e.self && !seen {
				nodeVotes, seen = n.Votes, true
			}
		}
	}

	// A device section counts only with a non-empty model; the model
	// itself is corosync-qdevice's business.
	haveQdev := false
	var qdevVotes uint32
	if d := q.Device; d != nil && d.Model != "" {
		haveQdev = true
		qdevVotes = qdevVotesUnset
		if d.Votes != nil {
			qdevVotes = *d.Votes
		}
		if d.Timeout != nil {
			e.qdevTimeout = *d.Timeout
		}
		if d.SyncTimeout != nil {
			e.qdevSyncTimeout = *d.SyncTimeout
		}
	}
	twoNode := flag(q.TwoNode)

	if !haveNodelist && expected == 0 {
		return e.cfgError("quorum.expected_votes", errNoExpected)
	}
	if twoNode && haveQdev {
		return e.cfgError("quorum.two_node", errTwoNodeDevice)
	}

	// The startup-only features.
	e.allowDownscale = flag(q.AllowDownscale)
	if q.WaitForAll == nil {
		e.wfaAutoset = true
	} else {
		e.wfa = *q.WaitForAll
	}
	e.lms = flag(q.LastManStanding)
	if q.LastManStandingWindow != nil {
		e.lmsWindow = *q.LastManStandingWindow
	}
	e.evTracking = flag(q.ExpectedVotesTracking)
	atb := flag(q.AutoTieBreaker)
	_, atbNodeWritten := q.Line["quorum.auto_tie_breaker_node"]
	atbNodeSet := q.AutoTieBreakerNode != "" || atbNodeWritten
	if atb {
		e.atb = atbLowest
	} else {
		e.atb = atbNone
		if atbNodeSet {
			e.warn("quorum.auto_tie_breaker_node", warnATBNodeMeaningless)
		}
	}
	if atb && atbNodeSet {
		e.parseATB(q.AutoTieBreakerNode)
	}
	if e.allowDownscale { // allow_downscale needs the barrier to stop at
		e.evTracking = true
	}
	if e.evTracking {
		e.evTrackingBarrier = e.cfg.EVBarrier
	}

	// wait_for_all defaults to two_node; decided before ATB may switch
	// two_node off below, so two_node+ATB keeps wait_for_all (Corosync).
	if e.wfaAutoset {
		e.wfa = twoNode
	}
	if twoNode && e.atb != atbNone {
		e.warn("quorum.two_node", warnTwoNodeATB)
		twoNode = false
	}
	// An odd cluster with ATB needs wait_for_all, or a rebooted majority
	// without the tie-breaker could be quorate on its own.
	if e.atb != atbNone && nodeExpected%2 != 0 && !e.wfa {
		if e.lms {
			return e.cfgError("quorum.last_man_standing", errATBLMSOdd)
		}
		e.warn("quorum.auto_tie_breaker", warnATBOdd)
		e.atb = atbNone
	}
	if haveQdev && e.lms {
		return e.cfgError("quorum.device", errDeviceLMS)
	}
	if haveQdev && e.atb != atbNone {
		return e.cfgError("quorum.device", errDeviceATB)
	}
	if haveQdev && e.allowDownscale {
		return e.cfgError("quorum.device", errDeviceAD)
	}
	if expected != 0 && haveQdev && qdevVotes == qdevVotesUnset {
		return e.cfgError("quorum.device.votes", errDeviceVotesEV)
	}
	if haveQdev && qdevVotes == qdevVotesUnset && haveNodelist && nodeCount != nodeExpected {
		return e.cfgError("quorum.device.votes", errDeviceVotesOdd)
	}
	// C: int delta = expected_votes - qdevice_votes; if (delta < 2).
	if qdevVotes > 0 && expected != 0 && int32(expected-qdevVotes) < 2 {
		return e.cfgError("quorum.device.votes", errDeviceVotesHigh)
	}
	// Device votes by default: one less than the nodes, so that the device
	// plus any single node is a majority (n nodes → n-1 votes, 2n-1 expected).
	if haveQdev && qdevVotes == qdevVotesUnset && expected == 0 && haveNodelist && nodeCount == nodeExpected {
		qdevVotes = nodeExpected - 1
		nodeExpected += qdevVotes
	}

	// With expected_votes_tracking the stored barrier replaces
	// quorum.expected_votes, even when it is 0 (then the nodelist sum, or
	// without a nodelist nothing: a lone node starts quorate, §11 item 12).
	if e.evTracking {
		expected = e.evTrackingBarrier
	}
	if haveNodelist {
		e.us.votes = nodeVotes
		e.us.expected = nodeExpected
	} else {
		e.us.votes = 1
		if q.Votes != nil {
			e.us.votes = *q.Votes
		}
	}
	if expected != 0 {
		e.us.expected = expected
	}
	if !haveQdev {
		e.qdev.votes = 0
	}
	if qdevVotes != qdevVotesUnset {
		e.qdev.votes = qdevVotes
	}
	e.evBarrier = e.us.expected
	e.twoNode = twoNode
	if e.wfa {
		e.setWFAStatus(true)
	}
	return nil
}

// parseATB is parse_atb_string: "lowest", "highest", or node ids parsed
// the way strtol walks a string (stopping at the first 0 or non-number).
// Whether the string is a list at all is decided by atoi, so "0 1" and
// "4294967296" (atoi truncates to 0) are not lists, as in Corosync.
func (e *Engine) parseATB(s string) {
	e.atb = atbNone
	if s == "lowest" {
		e.atb = atbLowest
	}
	if s == "highest" {
		e.atb = atbHighest
	}
	if n, _ := strtol(s); int32(n) != 0 {
		var list []uint32
		rest := s
		for {
			var num int64
			num, rest = strtol(rest)
			if num == 0 {
				break
			}
			list = append(list, uint32(num)) // stored in an unsigned int array
		}
		if len(list) > 0 {
			e.atb = atbList
			e.atbList = list
		}
	}
	if e.atb == atbNone {
		e.warn("quorum.auto_tie_breaker_node", warnATBNodeInvalid)
	}
}

// strtol is C's strtol(s, &end, 10) on a 64-bit long: leading white space,
// an optional sign, decimal digits, saturating at the int64 range. With no
// digits it returns 0 and s unchanged.
func strtol(s string) (int64, string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v uint64
	over := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			over = true
		} else {
			v = v*10 + d
		}
		i++
	}
	if i == start {
		return 0, s
	}
	switch {
	case neg && (over || v > 1<<63):
		return math.MinInt64, s[i:]
	case neg:
		return -int64(v), s[i:]
	case over || v > math.MaxInt64:
		return math.MaxInt64, s[i:]
	}
	return int64(v), s[i:]
}

// errSelfZero: node id 0 names the quorum device and cannot be a node.
var errSelfZero = errors.New("quorum: node id 0 is reserved for the quorum device")
