package config

import (
	"fmt"
	"math"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The builder turns the keys of either format into a Config. Both readers
// feed it the same (section, key, value) calls, so every key is converted
// and checked by the same code whatever the file's syntax; only the raw
// values differ: always strings in a corosync.conf, typed values in TOML.

// value is one written value and where it was written.
type value struct {
	key  string // full dotted key for messages, e.g. "nodelist.node.2.ring0_addr"
	line int
	// raw is a string for corosync.conf; for TOML whatever go-toml decoded
	// into an `any`: string, int64, bool, float64, []any, map[string]any or a
	// date/time.
	raw any
}

// entry is a value together with its name inside its section.
type entry struct {
	name string
	value
}

type builder struct {
	file   string
	format Format
	cfg    *Config
	errs   []error
	// bad holds keys whose value could not be converted; validation
	// problems about them would only repeat the first message.
	bad map[string]bool
	// secauth is corosync's older crypto switch ("on", "off" or "").
	secauth string
	// ifaceKeys is the dotted key of each link's (first) interface block.
	ifaceKeys map[int]string
}

func (b *builder) errorf(key string, line int, format string, args ...any) {
	b.errs = append(b.errs, &Error{File: b.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) warnf(key string, line int, format string, args ...any) {
	b.cfg.Warnings = append(b.cfg.Warnings, &Error{File: b.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// invalid reports a value that cannot be converted: `invalid value X: why`.
func (b *builder) invalid(v value, why string) {
	b.markBad(v.key)
	b.errorf(v.key, v.line, "invalid value %s: %s", describe(v.raw), why)
}

func (b *builder) markBad(key string) {
	if b.bad == nil {
		b.bad = map[string]bool{}
	}
	b.bad[key] = true
}

// mark records that key was written at line (first occurrence wins, so a
// section's line is where it first opens).
func (b *builder) mark(key string, line int) {
	if _, ok := b.cfg.lines[key]; !ok {
		b.cfg.lines[key] = line
	}
}

// set records a successfully converted key; a later value of a repeated
// corosync key overrides the earlier one as in corosync's cmap, and its line
// is the one to report.
func (b *builder) set(v value) { b.cfg.lines[v.key] = v.line }

// describe renders a raw value for a message: strings quoted, TOML numbers
// and booleans as written, containers by kind.
func describe(raw any) string {
	switch r := raw.(type) {
	case string:
		return strconv.Quote(r)
	case int64:
		return strconv.FormatInt(r, 10)
	case bool:
		return strconv.FormatBool(r)
	case float64:
		return strconv.FormatFloat(r, 'g', -1, 64)
	case []any:
		return "(an array)"
	case map[string]any:
		return "(a table)"
	}
	return fmt.Sprintf("(a TOML %T)", raw)
}

func (b *builder) str(v value) (string, bool) {
	if s, ok := v.raw.(string); ok {
		return s, true
	}
	b.invalid(v, "must be a string")
	return "", false
}

// freeStr accepts a string, or a TOML integer kept as its decimal text: the
// values of keys Conclave passes on without interpreting them.
func (b *builder) freeStr(v value) (string, bool) {
	switch r := v.raw.(type) {
	case string:
		return r, true
	case int64:
		return strconv.FormatInt(r, 10), true
	}
	b.invalid(v, "must be a string or an integer")
	return "", false
}

// parseDecimal parses what corosync's strtol(…, 10) plus its end-of-string
// check accepts for an unsigned value: an optional '+' and decimal digits.
func parseDecimal(s string) (uint64, bool) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// uint converts an integer in lo..hi. corosync.conf values are decimal text;
// TOML values must be TOML integers.
func (b *builder) uint(v value, lo, hi uint64, why string) (uint64, bool) {
	var n uint64
	ok := false
	switch r := v.raw.(type) {
	case string:
		if b.format == FormatCorosync {
			n, ok = parseDecimal(r)
		}
	case int64:
		n, ok = uint64(r), r >= 0
	}
	if !ok || n < lo || n > hi {
		b.invalid(v, why)
		return 0, false
	}
	return n, true
}

func (b *builder) u32(v value) (uint32, bool) {
	n, ok := b.uint(v, 0, math.MaxUint32, "must be an integer from 0 to 4294967295")
	return uint32(n), ok
}

// ms converts an integer number of milliseconds (u32, as corosync stores it).
func (b *builder) ms(v value) (time.Duration, bool) {
	n, ok := b.uint(v, 0, math.MaxUint32, "must be an integer number of milliseconds from 0 to 4294967295")
	return time.Duration(n) * time.Millisecond, ok
}

// flag converts a quorum boolean. corosync stores these as u8 and rejects
// "yes", so a corosync.conf must say 0 or 1; TOML also takes true/false.
func (b *builder) flag(v value) (bool, bool) {
	switch r := v.raw.(type) {
	case string:
		if b.format == FormatCorosync && (r == "0" || r == "1") {
			return r == "1", true
		}
	case int64:
		if r == 0 || r == 1 {
			return r == 1, true
		}
	case bool:
		return r, true
	}
	if b.format == FormatCorosync {
		b.invalid(v, "must be 0 or 1")
	} else {
		b.invalid(v, "must be true, false, 0 or 1")
	}
	return false, false
}

// totemKey applies one key of the totem section.
func (b *builder) totemKey(e entry) {
	c := b.cfg
	t := &c.Totem
	dur := func(d *time.Duration) {
		if x, ok := b.ms(e.value); ok {
			*d = x
			b.set(e.value)
		}
	}
	integer := func(p *int) {
		if x, ok := b.u32(e.value); ok {
			*p = int(x)
			b.set(e.value)
		}
	}
	text := func(p *string) {
		if x, ok := b.str(e.value); ok {
			*p = x
			b.set(e.value)
		}
	}
	switch e.name {
	case "version":
		if x, ok := b.u32(e.value); ok {
			if x != 2 {
				b.errorf(e.key, e.line, "unsupported version %d: only version 2 configurations are understood", x)
			}
			b.set(e.value)
		}
	case "cluster_name":
		text(&c.ClusterName)
	case "token":
		dur(&t.Token)
	case "token_coefficient":
		dur(&t.TokenCoefficient)
	case "consensus":
		dur(&t.Consensus)
	case "join":
		dur(&t.Join)
	case "heartbeat":
		dur(&t.Heartbeat)
	case "netmtu":
		integer(&t.NetMTU)
	case "flap_count":
		integer(&t.FlapCount)
	case "flap_window":
		dur(&t.FlapWindow)
	case "flap_holddown":
		dur(&t.FlapHolddown)
	case "crypto_cipher":
		text(&c.Crypto.Cipher)
	case "crypto_hash":
		text(&c.Crypto.Hash)
	case "keyfile":
		text(&c.Crypto.KeyFile)
	case "secauth":
		// corosync: "on" turns crypto on (aes256/sha256 unless crypto_cipher
		// and crypto_hash say otherwise); any other value leaves it off.
		if s, ok := b.str(e.value); ok {
			if s != "on" && s != "off" {
				b.warnf(e.key, e.line, "%s is neither on nor off: treated as off, as corosync does", strconv.Quote(s))
				s = "off"
			}
			b.secauth = s
			b.set(e.value)
		}
	case "transport":
		if s, ok := b.str(e.value); ok {
			switch s {
			case "knet":
			case "udpu", "udp":
				b.warnf(e.key, e.line, "transport %s accepted, but Conclave uses its own transport", s)
			default:
				b.invalid(e.value, "must be knet, udpu or udp")
				return
			}
			b.set(e.value)
		}
	default:
		b.otherKey(ccTotemKeys, e)
	}
}

// iface applies one totem.interface block. Blocks for the same link merge,
// as they do in corosync's cmap; TOML, our own format, rejects the repeat.
func (b *builder) iface(key string, line int, entries []entry) {
	in := Interface{}
	port := false
	for _, e := range entries {
		switch e.name {
		case "linknumber", "ringnumber":
			if n, ok := b.uint(e.value, 0, MaxLinks-1, "must be an integer from 0 to 7"); ok {
				in.Link = int(n)
				b.set(e.value)
			}
		case "mcastport":
			if n, ok := b.uint(e.value, 1, math.MaxUint16, "must be an integer from 1 to 65535"); ok {
				in.Port = uint16(n)
				port = true
				b.set(e.value)
			}
		default:
			b.otherKey(ccInterfaceKeys, e)
		}
	}
	t := &b.cfg.Totem
	for i := range t.Interfaces {
		if t.Interfaces[i].Link != in.Link {
			continue
		}
		if b.format == FormatTOML {
			b.errorf(key, line, "duplicate interface for linknumber %d", in.Link)
			return
		}
		if port {
			t.Interfaces[i].Port = in.Port
		}
		return
	}
	t.Interfaces = append(t.Interfaces, in)
	if b.ifaceKeys == nil {
		b.ifaceKeys = map[int]string{}
	}
	b.ifaceKeys[in.Link] = key
}

// ringLink returns N for a key "ringN_addr" with N in 0..7.
func ringLink(name string) (int, bool) {
	if len(name) != len("ring0_addr") || !strings.HasPrefix(name, "ring") || !strings.HasSuffix(name, "_addr") {
		return 0, false
	}
	d := name[4]
	if d < '0' || d >= '0'+MaxLinks {
		return 0, false
	}
	return int(d - '0'), true
}

// node appends one nodelist.node block; key is "nodelist.node.<index>".
func (b *builder) node(key string, line int, entries []entry) {
	n := Node{Line: line, QuorumVotes: 1}
	named := false
	for _, e := range entries {
		if link, ok := ringLink(e.name); ok {
			if s, ok := b.str(e.value); ok {
				if s == "" {
					b.invalid(e.value, "must not be empty")
					continue
				}
				n.Links[link] = s
				b.set(e.value)
			}
			continue
		}
		switch e.name {
		case "nodeid":
			if x, ok := b.u32(e.value); ok {
				n.ID = x
				b.set(e.value)
			}
		case "name":
			if s, ok := b.str(e.value); ok {
				n.Name = s
				named = true
				b.set(e.value)
			}
		case "quorum_votes":
			if x, ok := b.u32(e.value); ok {
				n.QuorumVotes = x
				b.set(e.value)
			}
		default:
			b.otherKey(ccNodeKeys, e)
		}
	}
	if !named && n.ID != 0 {
		n.Name = "node" + strconv.FormatUint(uint64(n.ID), 10)
	}
	b.cfg.Nodes = append(b.cfg.Nodes, n)
}

// quorumKey applies one key of the quorum section.
func (b *builder) quorumKey(e entry) {
	q := &b.cfg.Quorum
	num := func(p **uint32) {
		if x, ok := b.u32(e.value); ok {
			*p = &x
			b.set(e.value)
		}
	}
	flag := func(p **bool) {
		if x, ok := b.flag(e.value); ok {
			*p = &x
			b.set(e.value)
		}
	}
	switch e.name {
	case "provider":
		if s, ok := b.str(e.value); ok {
			q.Provider = s
			b.set(e.value)
		}
	case "expected_votes":
		num(&q.ExpectedVotes)
	case "votes":
		num(&q.Votes)
	case "two_node":
		flag(&q.TwoNode)
	case "wait_for_all":
		flag(&q.WaitForAll)
	case "last_man_standing":
		flag(&q.LastManStanding)
	case "auto_tie_breaker":
		flag(&q.AutoTieBreaker)
	case "allow_downscale":
		flag(&q.AllowDownscale)
	case "expected_votes_tracking":
		flag(&q.ExpectedVotesTracking)
	case "lease": // Conclave's own key: only in its TOML format
		if b.format != FormatTOML {
			b.otherKey(ccQuorumKeys, e)
			break
		}
		flag(&q.Lease)
	case "last_man_standing_window":
		if x, ok := b.ms(e.value); ok {
			q.LastManStandingWindow = &x
			b.set(e.value)
		}
	case "auto_tie_breaker_node":
		if s, ok := b.freeStr(e.value); ok {
			q.AutoTieBreakerNode = s
			b.set(e.value)
		}
	default:
		b.otherKey(ccQuorumKeys, e)
	}
}

// device returns quorum.device, creating it on first use (repeated device
// blocks in a corosync.conf merge).
func (b *builder) device(line int) *Device {
	b.mark("quorum", line)
	b.mark("quorum.device", line)
	if b.cfg.Quorum.Device == nil {
		b.cfg.Quorum.Device = &Device{}
	}
	return b.cfg.Quorum.Device
}

func (b *builder) deviceKey(e entry) {
	d := b.device(e.line)
	switch e.name {
	case "model":
		if s, ok := b.str(e.value); ok {
			d.Model = s
			b.set(e.value)
		}
	case "votes":
		if x, ok := b.u32(e.value); ok {
			d.Votes = &x
			b.set(e.value)
		}
	case "timeout", "sync_timeout":
		if x, ok := b.ms(e.value); ok {
			if e.name == "timeout" {
				d.Timeout = &x
			} else {
				d.SyncTimeout = &x
			}
			b.set(e.value)
		}
	default:
		b.otherKey(ccDeviceKeys, e)
	}
}

// deviceMap applies a key of quorum.device.net or .heuristics, kept as text
// for the qdevice daemon.
func (b *builder) deviceMap(e entry, heuristics bool) {
	d := b.device(e.line)
	s, ok := b.freeStr(e.value)
	if !ok {
		return
	}
	m := &d.Net
	if heuristics {
		m = &d.Heuristics
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[e.name] = s
	b.set(e.value)
}

// agentKey applies one key of the TOML [agent] table.
func (b *builder) agentKey(e entry) {
	a := &b.cfg.Agent
	text := func(p *string) {
		if s, ok := b.str(e.value); ok {
			*p = s
			b.set(e.value)
		}
	}
	switch e.name {
	case "socket":
		text(&a.Socket)
	case "data_dir":
		text(&a.DataDir)
	case "log_level":
		text(&a.LogLevel)
	case "allowed_uids", "allowed_gids":
		list, ok := e.raw.([]any)
		if !ok {
			b.invalid(e.value, "must be an array of ids or names")
			return
		}
		good := true
		for i, el := range list {
			v := value{key: fmt.Sprintf("%s.%d", e.key, i), line: e.line, raw: el}
			good = b.addID(v, e.name == "allowed_gids") && good
		}
		if good {
			b.set(e.value)
		}
	default:
		b.errorf(e.key, e.line, unknownKeyMsg)
	}
}

// uidgidKey applies one key of a corosync uidgid section.
func (b *builder) uidgidKey(e entry) {
	switch e.name {
	case "uid", "gid":
		if b.addID(e.value, e.name == "gid") {
			b.set(e.value)
		}
	default:
		b.otherKey(ccUIDGIDKeys, e)
	}
}

// addID appends a uid (or gid) given as a number or a user (group) name,
// looked up like corosync does with getpwnam/getgrnam. Duplicates are
// dropped: the list is a set.
func (b *builder) addID(v value, group bool) bool {
	what, list := "user", &b.cfg.Agent.AllowedUIDs
	if group {
		what, list = "group", &b.cfg.Agent.AllowedGIDs
	}
	var id uint32
	switch r := v.raw.(type) {
	case int64:
		x, ok := b.u32(v)
		if !ok {
			return false
		}
		id = x
	case string:
		if n, ok := parseDecimal(r); ok && n <= math.MaxUint32 {
			id = uint32(n)
			break
		}
		var idText string
		var err error
		if group {
			var g *user.Group
			if g, err = user.LookupGroup(r); err == nil {
				idText = g.Gid
			}
		} else {
			var u *user.User
			if u, err = user.Lookup(r); err == nil {
				idText = u.Uid
			}
		}
		n, ok := parseDecimal(idText)
		if err != nil || !ok || n > math.MaxUint32 {
			b.markBad(v.key)
			b.errorf(v.key, v.line, "unknown %s %q", what, r)
			return false
		}
		id = uint32(n)
	default:
		b.invalid(v, "must be a "+what+" id or name")
		return false
	}
	if !slices.Contains(*list, id) {
		*list = append(*list, id)
	}
	return true
}

// finish applies the defaults that depend on the whole file: what was
// written where, the node count (for the effective token) and the format.
func (b *builder) finish() {
	c := b.cfg
	switch b.secauth {
	case "on": // corosync: secauth on means aes256/sha256 unless crypto_* say otherwise
		c.Crypto.Cipher = orDefault(c.Crypto.Cipher, "aes256")
		c.Crypto.Hash = orDefault(c.Crypto.Hash, "sha256")
	case "off":
		c.Crypto.Cipher = orDefault(c.Crypto.Cipher, "none")
		c.Crypto.Hash = orDefault(c.Crypto.Hash, "none")
	}
	if b.format == FormatCorosync && !c.has("totem.cluster_name") && !b.bad["totem.cluster_name"] {
		c.ClusterName = DefaultClusterName
		b.warnf("totem.cluster_name", c.line("totem"), "not set: using %q, as corosync does", DefaultClusterName)
	}

	t := &c.Totem
	def := func(key string, p *time.Duration, d time.Duration) {
		if !c.has(key) {
			*p = d
		}
	}
	def("totem.token", &t.Token, DefaultToken)
	def("totem.token_coefficient", &t.TokenCoefficient, DefaultTokenCoefficient)
	def("totem.join", &t.Join, DefaultJoin)
	def("totem.flap_window", &t.FlapWindow, DefaultFlapWindow)
	def("totem.flap_holddown", &t.FlapHolddown, DefaultFlapHolddown)
	if !c.has("totem.netmtu") {
		t.NetMTU = DefaultNetMTU
	}
	if !c.has("totem.flap_count") {
		t.FlapCount = DefaultFlapCount
	}
	eff := t.EffectiveToken(len(c.Nodes))
	def("totem.consensus", &t.Consensus, eff*6/5)
	def("totem.heartbeat", &t.Heartbeat, eff/8)

	if c.Crypto.KeyFile == "" && c.Crypto.NeedsKey() {
		c.Crypto.KeyFile = DefaultKeyFile
		if b.format == FormatCorosync {
			c.Crypto.KeyFile = DefaultCorosyncKeyFile
		}
	} else if c.Crypto.Cleartext() && c.has("totem.keyfile") {
		b.warnf("totem.keyfile", c.line("totem.keyfile"), "not used: crypto_cipher is none")
	}

	for i := range c.Nodes {
		for l := range MaxLinks {
			c.Nodes[i].ports[l] = c.LinkPort(l)
		}
	}
	for _, in := range t.Interfaces {
		used := false
		for _, n := range c.Nodes {
			used = used || n.Links[in.Link] != ""
		}
		if !used && len(c.Nodes) > 0 {
			key := b.ifaceKeys[in.Link]
			b.warnf(key, c.line(key), "interface for link %d, but no node has a ring%d_addr (ignored)", in.Link, in.Link)
		}
	}

	for k, l := range c.lines {
		if k == "quorum" || strings.HasPrefix(k, "quorum.") {
			if c.Quorum.Line == nil {
				c.Quorum.Line = map[string]int{}
			}
			c.Quorum.Line[k] = l
		}
	}
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
