package config

import "strconv"

// The keys Corosync knows, section by section. corosync.conf is checked
// against this table: a key Conclave reads is converted by the builder, a
// key Corosync knows and Conclave does not use is a one-line warning, and
// anything else is an error "unknown key", because Corosync would silently
// ignore a misspelt key (`tokne: 3000`) and the cluster would run on
// defaults nobody chose.
//
// The table covers Corosync 2.x and 3.x up to 3.1.10: the keys coroparse
// types or checks, the keys totemconfig, logconfig, votequorum, the
// watchdog/monitoring services and libnozzle read, and the keys of
// corosync.conf(5) and votequorum(5) of those releases. Keys of older
// releases that real files still carry (rrp_*, threads, vsftype,
// crypto_type, ringnumber, interface.member, logging_daemon, tags) are
// known too. Corosync 1.x's top-level sections (amf, aisexec, service,
// event) and its `compatibility` key are accepted as a whole with one
// warning each.

// keyUse says what Conclave does with a key.
type keyUse int

const (
	// ignored: Corosync knows the key; Conclave does not use it (warning).
	ignored keyUse = iota
	// used: Conclave reads the key (the builder converts it).
	used
	// conclave: a Conclave extension Corosync does not know; Conclave
	// reads it (heartbeat, flap_*).
	conclave
)

// ccSection is what Corosync accepts in one section of a corosync.conf.
type ccSection struct {
	keys map[string]keyUse
	subs map[string]*ccSection
	// free: the section belongs to another program (corosync-qdevice, the
	// resource monitor) that reads whatever it contains; any key or
	// subsection is accepted.
	free bool
	// legacy: a Corosync 1.x section, ignored as a whole with one warning.
	legacy bool
}

// keys returns a key set where every name has use u.
func keys(u keyUse, names ...string) map[string]keyUse {
	m := make(map[string]keyUse, len(names))
	for _, n := range names {
		m[n] = u
	}
	return m
}

// with adds names with use u to m and returns m.
func with(m map[string]keyUse, u keyUse, names ...string) map[string]keyUse {
	for _, n := range names {
		m[n] = u
	}
	return m
}

// logKeys are the keys of a log target: logging itself, a logger_subsys
// and a logging_daemon.
var logKeys = []string{
	"to_stderr", "to_logfile", "to_syslog", "logfile", "logfile_priority",
	"syslog_facility", "syslog_priority", "debug",
	"to_file", "syslog_level", // older spellings of to_logfile and syslog_priority
}

// ringKeys are ring0_addr .. ring7_addr.
func ringKeys() []string {
	var r []string
	for i := range MaxLinks {
		r = append(r, "ring"+strconv.Itoa(i)+"_addr")
	}
	return r
}

var (
	ccInterfaceKeys = &ccSection{
		keys: with(keys(ignored,
			"bindnetaddr", "mcastaddr", "broadcast", "ttl",
			"knet_link_priority", "knet_ping_interval", "knet_ping_timeout",
			"knet_ping_precision", "knet_pong_count", "knet_transport",
		), used, "linknumber", "ringnumber", "mcastport"),
		// udpu members before nodelist existed (Corosync 1.x and 2.x).
		subs: map[string]*ccSection{"member": {keys: keys(ignored, "memberaddr")}},
	}

	ccTotemKeys = &ccSection{
		keys: with(with(keys(ignored,
			// identification and versions
			"cluster_uuid", "config_version", "nodeid", "clear_node_high_bit",
			// network
			"ip_version", "link_mode", "knet_pmtud_interval", "knet_mtu",
			"knet_compression_model", "knet_compression_threshold", "knet_compression_level",
			"block_unlisted_ips",
			// crypto Conclave does not read
			"crypto_model", "key",
			// totem protocol timing and windows
			"token_warning", "token_retransmit", "hold", "token_retransmits_before_loss_const",
			"send_join", "merge", "downcheck", "fail_recv_const", "seqno_unchanged_const",
			"heartbeat_failures_allowed", "max_network_delay", "window_size", "max_messages",
			"miss_count_const", "cancel_token_hold_on_retransmit",
			// Corosync 2.x and older: redundant ring protocol, threads, crypto
			"rrp_mode", "rrp_problem_count_timeout", "rrp_problem_count_threshold",
			"rrp_problem_count_mcast_threshold", "rrp_token_expired_timeout",
			"rrp_autorecovery_check_timeout", "threads", "vsftype", "crypto_type", "crypto_accept",
		), used,
			"version", "cluster_name", "transport", "token", "token_coefficient", "consensus",
			"join", "netmtu", "crypto_cipher", "crypto_hash", "keyfile", "secauth",
		), conclave, "heartbeat", "flap_count", "flap_window", "flap_holddown"),
		subs: map[string]*ccSection{"interface": ccInterfaceKeys},
	}

	ccNodeKeys = &ccSection{keys: keys(used, append(ringKeys(), "nodeid", "name", "quorum_votes")...)}

	ccDeviceKeys = &ccSection{
		keys: with(keys(used, "model", "votes", "timeout", "sync_timeout"), ignored, "master_wins"),
		// corosync-qdevice's own settings: passed on as written.
		subs: map[string]*ccSection{"net": {free: true}, "heuristics": {free: true}},
	}

	ccQuorumKeys = &ccSection{
		keys: with(keys(used,
			"provider", "expected_votes", "votes", "two_node", "wait_for_all",
			"last_man_standing", "last_man_standing_window", "auto_tie_breaker",
			"auto_tie_breaker_node", "allow_downscale", "expected_votes_tracking",
		), ignored, "leaving_timeout"),
		subs: map[string]*ccSection{"device": ccDeviceKeys},
	}

	ccUIDGIDKeys = &ccSection{keys: keys(used, "uid", "gid")}

	// corosyncKeys is the whole table, from the top level down.
	corosyncKeys = &ccSection{
		// `compatibility: whitetank` or `none`: Corosync 1.x.
		keys: keys(ignored, "compatibility"),
		subs: map[string]*ccSection{
			"totem":    ccTotemKeys,
			"nodelist": {subs: map[string]*ccSection{"node": ccNodeKeys}},
			"quorum":   ccQuorumKeys,
			"uidgid":   ccUIDGIDKeys,
			"logging": {
				keys: keys(ignored, append([]string{"timestamp", "fileline", "function_name", "blackbox"}, logKeys...)...),
				subs: map[string]*ccSection{
					"logger_subsys":  {keys: keys(ignored, append([]string{"subsys", "tags"}, logKeys...)...)},
					"logging_daemon": {keys: keys(ignored, append([]string{"name", "subsys", "tags"}, logKeys...)...)},
				},
			},
			"system": {keys: keys(ignored,
				"state_dir", "run_dir", "qb_ipc_type", "sched_rr", "priority",
				"move_to_root_cgroup", "allow_knet_handle_fallback")},
			"resources": {
				keys: keys(ignored, "watchdog_timeout", "watchdog_device"),
				// the resource monitor's per-resource settings (memory_used,
				// load_15min, … with poll_period, max, recovery).
				subs: map[string]*ccSection{"system": {free: true}, "process": {free: true}},
			},
			"qb":     {keys: keys(ignored, "ipc_type")},
			"nozzle": {keys: keys(ignored, "name", "ipaddr", "ipprefix", "macaddr")},
			// Corosync 1.x (and openais) sections.
			"amf":     {legacy: true},
			"aisexec": {legacy: true},
			"service": {legacy: true},
			"event":   {legacy: true},
		},
	}
)

// sub returns the subsection name of s, or nil.
func (s *ccSection) sub(name string) *ccSection {
	if s == nil {
		return nil
	}
	return s.subs[name]
}

// knows reports whether Corosync knows key name in s.
func (s *ccSection) knows(name string) bool {
	if s == nil {
		return false
	}
	if s.free {
		return true
	}
	_, ok := s.keys[name]
	return ok
}

const (
	ignoredMsg        = "not used by Conclave (ignored)"
	unknownKeyMsg     = "unknown key"
	unknownSectionMsg = "unknown section"
	legacySectionMsg  = "a Corosync 1.x section; ignored"
	legacyKeyMsg      = "a Corosync 1.x key; ignored"
)

// otherKey handles a key the builder's switch for section s does not
// convert: a warning if Corosync knows it, an error otherwise. TOML is
// Conclave's own format: there every such key is an error (go-toml's
// strict decoding reports them before the builder sees them).
func (b *builder) otherKey(s *ccSection, e entry) {
	if b.format == FormatCorosync && s.knows(e.name) {
		b.warnf(e.key, e.line, ignoredMsg)
		return
	}
	b.errorf(e.key, e.line, unknownKeyMsg)
}
