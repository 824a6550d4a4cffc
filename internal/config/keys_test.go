package config

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRealWorldFiles parses corosync.conf files in the shapes real clusters
// have (testdata/*.conf, with addresses moved to 127.0.0.x so that they
// would start an agent): no errors, and exactly the expected warnings.
func TestRealWorldFiles(t *testing.T) {
	ignoredAt := func(file string, lines map[int]string) []string {
		var w []string
		for _, l := range slices.Sorted(maps.Keys(lines)) {
			w = append(w, file+":"+strconv.Itoa(l)+": "+lines[l]+": not used by Conclave (ignored)")
		}
		return w
	}
	for _, tc := range []struct {
		file  string
		warn  []string
		check func(t *testing.T, c *Config)
	}{
		{
			file: "pcs-2node-knet.conf",
			warn: ignoredAt("testdata/pcs-2node-knet.conf", map[int]string{
				4: "totem.cluster_uuid", 30: "logging.to_logfile", 31: "logging.logfile",
				32: "logging.to_syslog", 33: "logging.timestamp",
			}),
			check: func(t *testing.T, c *Config) {
				if c.ClusterName != "hacluster" || len(c.Nodes) != 2 || *c.Quorum.TwoNode != true ||
					c.Crypto != (Crypto{Cipher: "aes256", Hash: "sha256", KeyFile: DefaultCorosyncKeyFile}) {
					t.Errorf("parsed %+v", c)
				}
			},
		},
		{
			file: "legacy-udpu.conf",
			warn: slices.Concat(
				[]string{
					"testdata/legacy-udpu.conf:2: compatibility: a Corosync 1.x key; ignored",
					`testdata/legacy-udpu.conf:7: totem.secauth: "false" is neither on nor off: treated as off, as corosync does`,
				},
				ignoredAt("testdata/legacy-udpu.conf", map[int]string{
					8: "totem.threads", 9: "totem.rrp_mode", 10: "totem.vsftype", 11: "totem.clear_node_high_bit",
				}),
				[]string{"testdata/legacy-udpu.conf:12: totem.transport: transport udpu accepted, but Conclave uses its own transport"},
				ignoredAt("testdata/legacy-udpu.conf", map[int]string{
					15: "totem.interface.0.bindnetaddr", 16: "totem.interface.0.mcastaddr", 18: "totem.interface.0.ttl",
					34: "logging.fileline", 35: "logging.to_stderr", 36: "logging.to_logfile", 37: "logging.to_syslog",
					38: "logging.logfile", 39: "logging.debug", 40: "logging.timestamp",
					42: "logging.logger_subsys.subsys", 43: "logging.logger_subsys.debug", 44: "logging.logger_subsys.tags",
				}),
				[]string{
					"testdata/legacy-udpu.conf:48: amf: a Corosync 1.x section; ignored",
					"testdata/legacy-udpu.conf:52: aisexec: a Corosync 1.x section; ignored",
				},
			),
			check: func(t *testing.T, c *Config) {
				// ringnumber is linknumber's older name: mcastport is link 0's port.
				if c.LinkPort(0) != 5415 || c.LinkCount() != 1 || !c.Crypto.Cleartext() {
					t.Errorf("port %d links %d crypto %+v", c.LinkPort(0), c.LinkCount(), c.Crypto)
				}
				if a, err := c.Nodes[1].Addr(0); err != nil || a.String() != "127.0.0.2:5415" {
					t.Errorf("node 2 link 0 = %v, %v", a, err)
				}
				if c.Nodes[0].Name != "node1" {
					t.Errorf("default name %q", c.Nodes[0].Name)
				}
			},
		},
		{
			file: "proxmox.conf",
			warn: ignoredAt("testdata/proxmox.conf", map[int]string{
				2: "logging.debug", 3: "logging.to_syslog", 33: "totem.config_version",
				37: "totem.ip_version", 38: "totem.link_mode",
			}),
			check: func(t *testing.T, c *Config) {
				// secauth: on means aes256/sha256, as in corosync 3.
				if c.ClusterName != "pve" || len(c.Nodes) != 3 || c.Nodes[2].Name != "pve3" || c.Nodes[2].QuorumVotes != 1 ||
					c.Crypto != (Crypto{Cipher: "aes256", Hash: "sha256", KeyFile: DefaultCorosyncKeyFile}) ||
					c.LinkPort(0) != DefaultPort || c.Totem.TokenCoefficient != 0 {
					t.Errorf("parsed %+v", c)
				}
			},
		},
		{
			file: "debian-default.conf",
			warn: ignoredAt("testdata/debian-default.conf", map[int]string{
				5: "system.allow_knet_handle_fallback", 20: "logging.fileline", 21: "logging.to_stderr",
				22: "logging.to_logfile", 23: "logging.logfile", 24: "logging.to_syslog", 25: "logging.debug",
				28: "logging.logger_subsys.subsys", 29: "logging.logger_subsys.debug",
			}),
			check: func(t *testing.T, c *Config) {
				if c.ClusterName != "debian" || len(c.Nodes) != 1 || !c.Crypto.Cleartext() || c.Crypto.NeedsKey() {
					t.Errorf("parsed %+v", c)
				}
			},
		},
		{
			file: "two-ring.conf",
			warn: slices.Concat(
				[]string{"testdata/two-ring.conf:7: totem.transport: transport udpu accepted, but Conclave uses its own transport"},
				ignoredAt("testdata/two-ring.conf", map[int]string{
					8: "totem.rrp_mode", 11: "totem.interface.0.bindnetaddr", 16: "totem.interface.1.bindnetaddr",
					40: "logging.to_syslog",
				}),
			),
			check: func(t *testing.T, c *Config) {
				if c.LinkCount() != 2 || c.LinkPort(0) != 5405 || c.LinkPort(1) != 5407 || !c.Crypto.Cleartext() {
					t.Errorf("links %d ports %d %d crypto %+v", c.LinkCount(), c.LinkPort(0), c.LinkPort(1), c.Crypto)
				}
				if a, err := c.Nodes[1].Addr(1); err != nil || a.String() != "127.0.1.2:5407" {
					t.Errorf("node 2 link 1 = %v, %v", a, err)
				}
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Load("testdata/" + tc.file)
			if err != nil {
				t.Fatalf("errors: %q", errStrings(t, err))
			}
			if c.Format != FormatCorosync {
				t.Errorf("format %v", c.Format)
			}
			if got := warnStrings(c); !slices.Equal(got, tc.warn) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tc.warn)
			}
			tc.check(t, c)
		})
	}
}

// TestUnknownKeys: a key or section Corosync does not know is an error
// naming file, line and dotted key, wherever it is written.
func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []string
	}{
		{"totem typo", ccConf([]string{"tokne: 3000"}, []string{n1}, nil),
			[]string{"c.conf:3: totem.tokne: unknown key"}},
		{"node typo", ccConf(nil, []string{node("nodeid: 1", "ring0_adr: 10.0.0.1"), n2}, nil),
			[]string{
				"c.conf:7: nodelist.node.0.ring0_adr: unknown key",
				"c.conf:5: nodelist.node.0.ring0_addr: missing (required)",
				"c.conf:9: nodelist.node.1: configures links [0] but nodelist.node.0 configures links []: every node must configure the same links",
			}},
		{"ring8_addr", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: 10.0.0.1", "ring8_addr: 10.0.8.1")}, nil),
			[]string{"c.conf:8: nodelist.node.0.ring8_addr: unknown key"}},
		{"quorum typo", ccConf(nil, []string{n1}, []string{"two_nodes: 1"}),
			[]string{"c.conf:11: quorum.two_nodes: unknown key"}},
		{"device typo", ccConf(nil, []string{n1}, []string{"device {", "modle: net", "}"}),
			[]string{"c.conf:12: quorum.device.modle: unknown key"}},
		{"interface typo", ccConf([]string{"interface {", "linknumber: 1", "mcast_port: 5405", "}"}, []string{n1}, nil),
			[]string{"c.conf:5: totem.interface.1.mcast_port: unknown key"}},
		// knet link settings belong in an interface block; corosync reads
		// them only there.
		{"interface key in totem", ccConf([]string{"knet_link_priority: 2"}, []string{n1}, nil),
			[]string{"c.conf:3: totem.knet_link_priority: unknown key"}},
		{"totem key in interface", ccConf([]string{"interface {", "token: 3000", "}"}, []string{n1}, nil),
			[]string{"c.conf:4: totem.interface.0.token: unknown key"}},
		{"member typo", ccConf([]string{"interface {", "member {", "memberadr: 10.0.0.1", "}", "}"}, []string{n1}, nil),
			[]string{"c.conf:5: totem.interface.0.member.memberadr: unknown key"}},
		{"key in nodelist", "totem {\n cluster_name: t\n}\nnodelist {\n node_count: 1\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\n",
			[]string{"c.conf:5: nodelist.node_count: unknown key"}},
		{"uidgid", ccConf(nil, []string{n1}, nil) + "uidgid {\n user: root\n}\n",
			[]string{"c.conf:13: uidgid.user: unknown key"}},
		{"logging typo", ccConf(nil, []string{n1}, nil) + "logging {\n to_sylog: yes\n logger_subsys {\n  subsys: QUORUM\n  degub: on\n }\n}\n",
			[]string{"c.conf:13: logging.to_sylog: unknown key", "c.conf:16: logging.logger_subsys.degub: unknown key"}},
		{"system typo", ccConf(nil, []string{n1}, nil) + "system {\n statedir: /var/lib/corosync\n}\n",
			[]string{"c.conf:13: system.statedir: unknown key"}},
		{"resources typo", ccConf(nil, []string{n1}, nil) + "resources {\n watchdog_timout: 6\n memory {\n }\n}\n",
			[]string{"c.conf:13: resources.watchdog_timout: unknown key", "c.conf:14: resources.memory: unknown section"}},
		{"unknown section", ccConf(nil, []string{n1}, nil) + "quroum {\n provider: corosync_votequorum\n}\n",
			[]string{"c.conf:12: quroum: unknown section"}},
		{"unknown subsection of an ignored section", ccConf(nil, []string{n1}, nil) + "logging {\n logger {\n  subsys: QUORUM\n }\n}\n",
			[]string{"c.conf:13: logging.logger: unknown section"}},
		{"many at once", ccConf([]string{"tokne: 3000", "secauth: maybe"}, []string{n1}, []string{"two_nodes: 1"}),
			[]string{"c.conf:3: totem.tokne: unknown key", "c.conf:13: quorum.two_nodes: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.conf", []byte(tc.text))
			if got := errStrings(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q\nfile:\n%s", got, tc.want, tc.text)
			}
		})
	}
}

// TestLegacySections: Corosync 1.x sections are accepted with one warning
// each, whatever they contain; so is the top-level `compatibility` key.
func TestLegacySections(t *testing.T) {
	base := ccConf(nil, []string{n1}, nil) // 11 lines
	text := "compatibility: whitetank\n" + base +
		"amf {\n mode: disabled\n}\n" +
		"aisexec {\n user: root\n group: root\n}\n" +
		"service {\n name: pacemaker\n ver: 0\n use_mgmtd: yes\n}\n" +
		"service {\n name: openais_ckpt\n ver: 0\n}\n" +
		"event {\n delivery_queue_size: 1000\n nested {\n  anything: goes\n }\n}\n"
	c := mustParse(t, "l.conf", text)
	want := []string{
		"l.conf:1: compatibility: a Corosync 1.x key; ignored",
		"l.conf:13: amf: a Corosync 1.x section; ignored",
		"l.conf:16: aisexec: a Corosync 1.x section; ignored",
		"l.conf:20: service: a Corosync 1.x section; ignored",
		"l.conf:25: service: a Corosync 1.x section; ignored",
		"l.conf:29: event: a Corosync 1.x section; ignored",
	}
	if got := warnStrings(c); !slices.Equal(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
	// Any other top-level key is still misplaced.
	_, err := Parse("l.conf", []byte("cluster_name: x\n"+base))
	if got := errStrings(t, err); !slices.Equal(got, []string{"l.conf:1: cluster_name: key outside any section"}) {
		t.Errorf("errors: %q", got)
	}
}

// TestRingnumber: `ringnumber` (Corosync 1.x and 2.x) is linknumber's older
// name; an interface block written either way configures the same link.
func TestRingnumber(t *testing.T) {
	nodes := []string{node("nodeid: 1", "ring0_addr: 10.0.0.1", "ring1_addr: 10.0.1.1"), node("nodeid: 2", "ring0_addr: 10.0.0.2", "ring1_addr: 10.0.1.2")}
	old := ccConf([]string{
		"interface {", "ringnumber: 0", "bindnetaddr: 10.0.0.0", "mcastaddr: 239.255.1.1", "mcastport: 5500", "}",
		"interface {", "ringnumber: 1", "bindnetaddr: 10.0.1.0", "mcastaddr: 239.255.2.1", "mcastport: 5600", "}",
	}, nodes, nil)
	cur := ccConf([]string{
		"interface {", "linknumber: 0", "mcastport: 5500", "}",
		"interface {", "mcastport: 5600", "linknumber: 1", "}",
	}, nodes, nil)
	a, b := mustParse(t, "old.conf", old), mustParse(t, "new.conf", cur)
	if a.LinkPort(0) != 5500 || a.LinkPort(1) != 5600 {
		t.Errorf("ringnumber: ports %d %d, want 5500 5600", a.LinkPort(0), a.LinkPort(1))
	}
	if addr, err := a.Nodes[1].Addr(0); err != nil || addr.String() != "10.0.0.2:5500" {
		t.Errorf("node 2 link 0 = %v, %v", addr, err)
	}
	if x, y := normalize(a), normalize(b); !reflect.DeepEqual(x, y) {
		t.Errorf("ringnumber and linknumber differ:\n%+v\n%+v", x, y)
	}
	// bindnetaddr and mcastaddr are the only warnings; ringnumber is not one.
	for _, w := range warnStrings(a) {
		if !strings.Contains(w, "bindnetaddr") && !strings.Contains(w, "mcastaddr") {
			t.Errorf("unexpected warning %q", w)
		}
	}
}

// TestKeyTable checks the table against the builder: every key marked
// ignored gets exactly the one-line warning, every key marked used (or
// Conclave's own) is converted without it, and a made-up key in any
// section that is not free-form is an error.
func TestKeyTable(t *testing.T) {
	var walk func(path []string, s *ccSection)
	walk = func(path []string, s *ccSection) {
		if s.free || s.legacy {
			return
		}
		names := slices.Sorted(maps.Keys(s.keys))
		for _, name := range append(names, "zz_not_a_corosync_key") {
			use, known := s.keys[name]
			b := &builder{file: "k.conf", format: FormatCorosync, cfg: &Config{lines: map[string]int{}}}
			if !b.readCorosync([]byte(nest(path, name+": 1"))) {
				t.Fatalf("%v %s: structure error %v", path, name, b.errs)
			}
			dotted := strings.Join(append(slices.Clone(path), name), ".")
			var ignoredWarnings, unknownErrors int
			for _, w := range b.cfg.Warnings {
				if strings.HasSuffix(w.Key, "."+name) && w.Msg == ignoredMsg {
					ignoredWarnings++
				}
			}
			for _, e := range b.errs {
				if ce := e.(*Error); strings.HasSuffix(ce.Key, "."+name) && ce.Msg == unknownKeyMsg {
					unknownErrors++
				}
			}
			switch {
			case !known && (unknownErrors != 1 || ignoredWarnings != 0):
				t.Errorf("%s: made-up key: %d errors, %d warnings; want 1 unknown key error", dotted, unknownErrors, ignoredWarnings)
			case known && use == ignored && (ignoredWarnings != 1 || unknownErrors != 0):
				t.Errorf("%s: %d ignored warnings, %d errors; want 1 warning", dotted, ignoredWarnings, unknownErrors)
			case known && use != ignored && (ignoredWarnings != 0 || unknownErrors != 0):
				t.Errorf("%s: marked used but got %d ignored warnings, %d unknown key errors", dotted, ignoredWarnings, unknownErrors)
			}
		}
		for _, sub := range slices.Sorted(maps.Keys(s.subs)) {
			walk(append(slices.Clone(path), sub), s.subs[sub])
		}
	}
	for _, top := range slices.Sorted(maps.Keys(corosyncKeys.subs)) {
		walk([]string{top}, corosyncKeys.subs[top])
	}
}

// nest writes line inside the sections of path, one per level.
func nest(path []string, line string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteString(p + " {\n")
	}
	b.WriteString(line + "\n")
	for range path {
		b.WriteString("}\n")
	}
	return b.String()
}

// TestKeyCounts documents the size of the table (see the report in the
// test log with -v) and guards against a section losing its keys.
func TestKeyCounts(t *testing.T) {
	want := map[string]int{
		"totem": 55, "totem.interface": 13, "totem.interface.member": 1,
		"nodelist": 0, "nodelist.node": 11,
		"quorum": 12, "quorum.device": 5,
		"logging": 14, "logging.logger_subsys": 12, "logging.logging_daemon": 13,
		"system": 7, "resources": 2, "qb": 1, "nozzle": 4, "uidgid": 2,
	}
	got := map[string]int{}
	var walk func(prefix string, s *ccSection)
	walk = func(prefix string, s *ccSection) {
		if s.free || s.legacy {
			return
		}
		got[prefix] = len(s.keys)
		for name, sub := range s.subs {
			walk(prefix+"."+name, sub)
		}
	}
	for name, s := range corosyncKeys.subs {
		walk(name, s)
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		t.Logf("%-26s %d keys", k, got[k])
	}
	if !maps.Equal(got, want) {
		t.Errorf("key counts changed:\n got %v\nwant %v", got, want)
	}
}

// TestSecauthDefaults: secauth only matters when crypto_cipher and
// crypto_hash do not say otherwise.
func TestSecauthDefaults(t *testing.T) {
	c := mustParse(t, "s.conf", ccConf([]string{"secauth: on", "crypto_cipher: aes128"}, []string{n1}, nil))
	if c.Crypto.Cipher != "aes128" || c.Crypto.Hash != "sha256" {
		t.Errorf("crypto %+v", c.Crypto)
	}
	// A file without any crypto key is encrypted by Conclave (not by corosync 3).
	c = mustParse(t, "s.conf", ccConf(nil, []string{n1}, nil))
	if !c.Crypto.NeedsKey() || c.Totem.Token != DefaultToken || c.Totem.Join != 50*time.Millisecond {
		t.Errorf("defaults %+v %+v", c.Crypto, c.Totem)
	}
}

// conclaveOnly are TOML keys for what Conclave adds to Corosync.
var conclaveOnly = map[string]bool{"quorum.lease": true}

// TestTOMLKeysInTable: every key of Conclave's TOML format is a key the
// corosync.conf table marks as read by Conclave, in the same section, so
// the two formats cannot drift apart.
func TestTOMLKeysInTable(t *testing.T) {
	for _, tc := range []struct {
		section string
		s       *ccSection
		v       any
	}{
		{"totem", ccTotemKeys, tomlTotem{}},
		{"totem.interface", ccInterfaceKeys, tomlInterface{}},
		{"nodelist.node", ccNodeKeys, tomlNode{}},
		{"quorum", ccQuorumKeys, tomlQuorum{}},
		{"quorum.device", ccDeviceKeys, tomlDevice{}},
	} {
		typ := reflect.TypeOf(tc.v)
		for i := range typ.NumField() {
			name := typ.Field(i).Tag.Get("toml")
			if tc.s.subs[name] != nil || conclaveOnly[tc.section+"."+name] {
				continue
			}
			if use, ok := tc.s.keys[name]; !ok || use == ignored {
				t.Errorf("%s.%s: in the TOML format but not a used key of the corosync.conf table", tc.section, name)
			}
		}
	}
}
