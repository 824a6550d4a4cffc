package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// errStrings returns the messages of the *Errors joined in err, in order.
func errStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []string
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("error %q (%T) is not a *config.Error", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

func warnStrings(c *Config) []string {
	var out []string
	for _, w := range c.Warnings {
		out = append(out, w.Error())
	}
	return out
}

func mustParse(t *testing.T, path, text string) *Config {
	t.Helper()
	c, err := Parse(path, []byte(text))
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return c
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// normalize strips what legitimately differs between two spellings of one
// configuration: where it was read from and where each key was written.
func normalize(c *Config) Config {
	x := *c
	x.Path, x.Format, x.Warnings, x.lines = "", 0, nil, nil
	x.Nodes = slices.Clone(c.Nodes)
	for i := range x.Nodes {
		x.Nodes[i].Line = 0
	}
	x.Quorum.Line = nil
	return x
}

func u32p(v uint32) *uint32               { return &v }
func durp(v time.Duration) *time.Duration { return &v }

func TestParseCorosyncPCS(t *testing.T) {
	const path = "/etc/corosync/corosync.conf"
	c, err := Parse(path, readTestdata(t, "pcs-3node.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ports := [MaxLinks]uint16{5405, 5405, 5405, 5405, 5405, 5405, 5405, 5405}
	node := func(id uint32, name, addr string, line int) Node {
		return Node{ID: id, Name: name, Links: [MaxLinks]string{addr}, QuorumVotes: 1, Line: line, ports: ports}
	}
	// 3000 + (3-2)*650
	eff := 3650 * time.Millisecond
	want := Config{
		Path:        path,
		Format:      FormatCorosync,
		ClusterName: "mycluster",
		Totem: Totem{
			Token:            3000 * time.Millisecond,
			TokenCoefficient: 650 * time.Millisecond,
			Consensus:        eff * 6 / 5,
			Join:             DefaultJoin,
			Heartbeat:        eff / 8,
			NetMTU:           1500,
			FlapCount:        4,
			FlapWindow:       60 * time.Second,
			FlapHolddown:     10 * time.Second,
		},
		Nodes: []Node{
			node(1, "node1", "192.168.122.11", 12),
			node(2, "node2", "192.168.122.12", 18),
			node(3, "node3", "192.168.122.13", 24),
		},
		Quorum: Quorum{Provider: "corosync_votequorum", Line: map[string]int{"quorum": 31, "quorum.provider": 32}},
		Crypto: Crypto{Cipher: "aes256", Hash: "sha256", KeyFile: "/etc/corosync/authkey"},
		Warnings: []*Error{
			{File: path, Line: 36, Key: "logging.to_logfile", Msg: "not used by Conclave (ignored)"},
			{File: path, Line: 37, Key: "logging.logfile", Msg: "not used by Conclave (ignored)"},
			{File: path, Line: 38, Key: "logging.to_syslog", Msg: "not used by Conclave (ignored)"},
			{File: path, Line: 39, Key: "logging.timestamp", Msg: "not used by Conclave (ignored)"},
		},
	}
	got := *c
	got.lines = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if got := c.Totem.Consensus; got != 4380*time.Millisecond {
		t.Errorf("consensus = %v, want 4380ms (1.2 × 3650ms, as corosync computes)", got)
	}
	if got := warnStrings(c)[0]; got != "/etc/corosync/corosync.conf:36: logging.to_logfile: not used by Conclave (ignored)" {
		t.Errorf("warning text = %q", got)
	}
	if !c.Crypto.NeedsKey() || c.Crypto.Cleartext() {
		t.Errorf("aes256/sha256 must need a key")
	}
}

func TestTOMLEqualsCorosync(t *testing.T) {
	for _, pair := range [][2]string{{"pcs-3node.conf", "pcs-3node.toml"}, {"full.conf", "full.toml"}} {
		t.Run(pair[1], func(t *testing.T) {
			cc, err := Parse(pair[0], readTestdata(t, pair[0]))
			if err != nil {
				t.Fatal(err)
			}
			tc, err := Parse(pair[1], readTestdata(t, pair[1]))
			if err != nil {
				t.Fatal(err)
			}
			if cc.Format != FormatCorosync || tc.Format != FormatTOML {
				t.Fatalf("formats = %v, %v", cc.Format, tc.Format)
			}
			if len(tc.Warnings) != 0 {
				t.Errorf("TOML warnings: %q", warnStrings(tc))
			}
			a, b := normalize(cc), normalize(tc)
			// [agent] has no corosync.conf spelling besides uidgid.
			b.Agent.Socket, b.Agent.DataDir, b.Agent.LogLevel = "", "", ""
			if !reflect.DeepEqual(a, b) {
				t.Errorf("corosync.conf and TOML differ:\ncorosync %+v\n    toml %+v", a, b)
			}
			// Both spellings must locate the same quorum keys (lines differ).
			if !slices.Equal(sortedKeys(cc.Quorum.Line), sortedKeys(tc.Quorum.Line)) {
				t.Errorf("Quorum.Line keys differ:\n%v\n%v", sortedKeys(cc.Quorum.Line), sortedKeys(tc.Quorum.Line))
			}
		})
	}
}

func sortedKeys(m map[string]int) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestFullTOML(t *testing.T) {
	c, err := Parse("full.toml", readTestdata(t, "full.toml"))
	if err != nil {
		t.Fatal(err)
	}
	q := c.Quorum
	if *q.ExpectedVotes != 4 || q.Votes != nil || *q.TwoNode || !*q.WaitForAll || *q.AutoTieBreaker ||
		*q.LastManStandingWindow != 10*time.Second || q.AutoTieBreakerNode != "lowest" {
		t.Errorf("quorum = %+v", q)
	}
	d := q.Device
	wantDev := &Device{
		Model: "net", Votes: u32p(1), Timeout: durp(10 * time.Second), SyncTimeout: durp(30 * time.Second),
		Net:        map[string]string{"host": "qnetd", "port": "5403", "algorithm": "ffsplit"},
		Heuristics: map[string]string{"mode": "sync", "exec_ping": "/bin/ping -q -c 1 gateway"},
	}
	if !reflect.DeepEqual(d, wantDev) {
		t.Errorf("device = %+v, want %+v", d, wantDev)
	}
	if l := q.Line["quorum.two_node"]; l != 49 {
		t.Errorf("Quorum.Line[quorum.two_node] = %d, want 49", l)
	}
	if l := q.Line["quorum.device.net.host"]; l != 65 {
		t.Errorf("Quorum.Line[quorum.device.net.host] = %d, want 65", l)
	}
	wantAgent := Agent{Socket: "/run/conclave/conclave.sock", DataDir: "/var/lib/conclave", LogLevel: "info",
		AllowedUIDs: []uint32{1000}, AllowedGIDs: []uint32{0}}
	if !reflect.DeepEqual(c.Agent, wantAgent) {
		t.Errorf("agent = %+v", c.Agent)
	}
	if c.LinkCount() != 2 || c.LinkPort(0) != 5405 || c.LinkPort(1) != 5406 || c.LinkPort(2) != DefaultPort {
		t.Errorf("links: count %d ports %d %d %d", c.LinkCount(), c.LinkPort(0), c.LinkPort(1), c.LinkPort(2))
	}
	if n, ok := c.NodeByID(3); !ok || n.Name != "node3" || n.QuorumVotes != 2 || n.Line != 39 {
		t.Errorf("NodeByID(3) = %+v, %v", n, ok)
	}
	if _, ok := c.NodeByID(4); ok {
		t.Errorf("NodeByID(4) found a node")
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"corosync.conf", "totem {\n cluster_name: c\n}\nnodelist {\n node {\n  nodeid: 7\n  ring0_addr: 10.0.0.7\n }\n}\n"},
		{"c.toml", "[totem]\ncluster_name = \"c\"\n[[nodelist.node]]\nnodeid = 7\nring0_addr = \"10.0.0.7\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.name, tc.text)
			want := Totem{
				Token: 800 * time.Millisecond, Consensus: 960 * time.Millisecond, Join: 50 * time.Millisecond,
				Heartbeat: 100 * time.Millisecond, NetMTU: 1500,
				FlapCount: 4, FlapWindow: time.Minute, FlapHolddown: 10 * time.Second,
			}
			if !reflect.DeepEqual(c.Totem, want) {
				t.Errorf("totem = %+v, want %+v", c.Totem, want)
			}
			n := c.Nodes[0]
			if n.Name != "node7" || n.QuorumVotes != 1 {
				t.Errorf("node = %+v", n)
			}
			if c.LinkPort(0) != 5405 || c.LinkCount() != 1 {
				t.Errorf("LinkPort(0) = %d, LinkCount = %d", c.LinkPort(0), c.LinkCount())
			}
			q := c.Quorum
			if q.Provider != "" || q.ExpectedVotes != nil || q.TwoNode != nil || q.WaitForAll != nil ||
				q.LastManStandingWindow != nil || q.Device != nil || q.Line != nil {
				t.Errorf("quorum = %+v, want all unset", q)
			}
			if c.Crypto.Cleartext() || !c.Crypto.NeedsKey() || c.Crypto.Cipher != "" || c.Crypto.Hash != "" {
				t.Errorf("absent crypto keys must not be cleartext: %+v", c.Crypto)
			}
			wantKey := DefaultKeyFile
			if c.Format == FormatCorosync {
				wantKey = DefaultCorosyncKeyFile
			}
			if c.Crypto.KeyFile != wantKey {
				t.Errorf("keyfile = %q, want %q", c.Crypto.KeyFile, wantKey)
			}
		})
	}
}

func TestDefaultClusterNameWarning(t *testing.T) {
	c := mustParse(t, "cc.conf", "totem {\n  version: 2\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\n")
	if c.ClusterName != "corosync" {
		t.Errorf("cluster name = %q", c.ClusterName)
	}
	want := []string{`cc.conf:1: totem.cluster_name: not set: using "corosync", as corosync does`}
	if got := warnStrings(c); !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestEffectiveToken(t *testing.T) {
	tt := Totem{Token: time.Second, TokenCoefficient: 650 * time.Millisecond}
	for nodes, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: time.Second, 3: 1650 * time.Millisecond, 5: 2950 * time.Millisecond} {
		if got := tt.EffectiveToken(nodes); got != want {
			t.Errorf("EffectiveToken(%d) = %v, want %v", nodes, got, want)
		}
	}
	// The derived defaults follow the effective token, not the written one.
	text := "[totem]\ncluster_name = \"x\"\ntoken = 1000\ntoken_coefficient = 650\n"
	for i := 1; i <= 5; i++ {
		text += "[[nodelist.node]]\nnodeid = " + string(rune('0'+i)) + "\nring0_addr = \"10.0.0." + string(rune('0'+i)) + "\"\n"
	}
	c := mustParse(t, "t.toml", text)
	if c.Totem.Consensus != 3540*time.Millisecond || c.Totem.Heartbeat != 2950*time.Millisecond/8 {
		t.Errorf("consensus %v heartbeat %v, want 3540ms and 368.75ms", c.Totem.Consensus, c.Totem.Heartbeat)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Format
	}{
		{"", FormatTOML},
		{"# only a comment\n\n", FormatTOML},
		{"[totem]\n", FormatTOML},
		{"  # corosync.conf? no:\ntoken = 5\n", FormatTOML},
		{"[[nodelist.node]]\n", FormatTOML},
		{`url = "http://x"` + "\n", FormatTOML},
		{"totem {\n", FormatCorosync},
		{"totem{\n", FormatCorosync},
		{"# comment\n\ttotem {\n", FormatCorosync},
		{"key: a=b\n", FormatCorosync},
		{"}\n", FormatCorosync},
		{"garbage\n", FormatCorosync},
		{"\r\nquorum {\r\n", FormatCorosync},
	} {
		if got := Detect([]byte(tc.text)); got != tc.want {
			t.Errorf("Detect(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if FormatTOML.String() != "toml" || FormatCorosync.String() != "corosync.conf" || Format(7).String() != "Format(7)" {
		t.Errorf("Format.String")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{"f.conf", 3, "quorum.two_node", "bad"}, "f.conf:3: quorum.two_node: bad"},
		{Error{"f.conf", 0, "quorum.two_node", "bad"}, "f.conf: quorum.two_node: bad"},
		{Error{"f.conf", 3, "", "bad"}, "f.conf:3: bad"},
		{Error{"f.conf", 0, "", "bad"}, "f.conf: bad"},
		{Error{"", 3, "k", "bad"}, "line 3: k: bad"},
		{Error{"", 0, "", "bad"}, "bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
	_, err := Parse("x.conf", []byte("quorum {\n two_node: yes\n}\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "quorum.two_node" || ce.Line != 2 || ce.File != "x.conf" {
		t.Errorf("errors.As: %+v from %v", ce, err)
	}
}

func TestLoad(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "pcs-3node.conf"))
	if err != nil || c.Path != filepath.Join("testdata", "pcs-3node.conf") || len(c.Nodes) != 3 {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join("testdata", "missing.conf")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func TestCrypto(t *testing.T) {
	base := "nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\ntotem {\n cluster_name: c\n"
	for _, tc := range []struct {
		keys          string
		cipher, hash  string
		keyfile       string
		cleartext     bool
		wantErr, warn string
	}{
		{keys: "", keyfile: DefaultCorosyncKeyFile},
		{keys: "crypto_cipher: none\n", cipher: "none", cleartext: true},
		{keys: "crypto_cipher: none\ncrypto_hash: none\n", cipher: "none", hash: "none", cleartext: true},
		{keys: "crypto_cipher: aes128\ncrypto_hash: sha1\nkeyfile: /k\n", cipher: "aes128", hash: "sha1", keyfile: "/k"},
		{keys: "secauth: on\n", cipher: "aes256", hash: "sha256", keyfile: DefaultCorosyncKeyFile},
		{keys: "secauth: on\ncrypto_hash: sha512\n", cipher: "aes256", hash: "sha512", keyfile: DefaultCorosyncKeyFile},
		{keys: "secauth: off\n", cipher: "none", hash: "none", cleartext: true},
		{keys: "crypto_cipher: none\nkeyfile: /k\n", cipher: "none", keyfile: "/k", cleartext: true,
			warn: "c.conf:10: totem.keyfile: not used: crypto_cipher is none"},
		{keys: "crypto_cipher: none\ncrypto_hash: sha256\n", wantErr: "c.conf:10: totem.crypto_hash: crypto_hash requires crypto_cipher"},
		{keys: "crypto_cipher: aes256\ncrypto_hash: none\n", wantErr: "c.conf:9: totem.crypto_cipher: crypto_cipher requires crypto_hash"},
		{keys: "secauth: off\ncrypto_cipher: aes256\n", wantErr: "c.conf:10: totem.crypto_cipher: crypto_cipher requires crypto_hash"},
		{keys: "crypto_hash: none\n", wantErr: "c.conf:9: totem.crypto_hash: crypto_hash none requires crypto_cipher none: without crypto_cipher, frames are encrypted"},
		{keys: "crypto_cipher: aes512\n", wantErr: `c.conf:9: totem.crypto_cipher: invalid value "aes512": must be one of none, aes256, aes192, aes128`},
		{keys: "crypto_hash: crc32\n", wantErr: `c.conf:9: totem.crypto_hash: invalid value "crc32": must be one of none, md5, sha1, sha256, sha384, sha512`},
		// corosync: anything but "on" leaves crypto off, whatever it says.
		{keys: "secauth: yes\n", cipher: "none", hash: "none", cleartext: true,
			warn: `c.conf:9: totem.secauth: "yes" is neither on nor off: treated as off, as corosync does`},
		{keys: "secauth: false\n", cipher: "none", hash: "none", cleartext: true,
			warn: `c.conf:9: totem.secauth: "false" is neither on nor off: treated as off, as corosync does`},
		{keys: "secauth: false\ncrypto_cipher: aes128\ncrypto_hash: sha1\n", cipher: "aes128", hash: "sha1", keyfile: DefaultCorosyncKeyFile,
			warn: `c.conf:9: totem.secauth: "false" is neither on nor off: treated as off, as corosync does`},
	} {
		c, err := Parse("c.conf", []byte(base+tc.keys+"}\n"))
		if tc.wantErr != "" {
			if got := errStrings(t, err); !slices.Equal(got, []string{tc.wantErr}) {
				t.Errorf("%q: errors = %q, want %q", tc.keys, got, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.keys, err)
			continue
		}
		want := Crypto{Cipher: tc.cipher, Hash: tc.hash, KeyFile: tc.keyfile}
		if c.Crypto != want || c.Crypto.Cleartext() != tc.cleartext || c.Crypto.NeedsKey() == tc.cleartext {
			t.Errorf("%q: crypto = %+v cleartext %v, want %+v cleartext %v", tc.keys, c.Crypto, c.Crypto.Cleartext(), want, tc.cleartext)
		}
		var wantWarn []string
		if tc.warn != "" {
			wantWarn = []string{tc.warn}
		}
		if got := warnStrings(c); !slices.Equal(got, wantWarn) {
			t.Errorf("%q: warnings = %q, want %q", tc.keys, got, wantWarn)
		}
	}
	// TOML spells cleartext the same way.
	c := mustParse(t, "c.toml", "[totem]\ncluster_name = \"c\"\ncrypto_cipher = \"none\"\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n")
	if !c.Crypto.Cleartext() || c.Crypto.KeyFile != "" {
		t.Errorf("TOML crypto_cipher none: %+v", c.Crypto)
	}
}

func TestUIDGID(t *testing.T) {
	base := "totem {\n cluster_name: c\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\n"
	c := mustParse(t, "u.conf", base+"uidgid {\n uid: root\n gid: root\n}\nuidgid {\n uid: 1000\n gid: daemon\n}\nuidgid {\n uid: 0\n}\n")
	if !slices.Equal(c.Agent.AllowedUIDs, []uint32{0, 1000}) || !slices.Equal(c.Agent.AllowedGIDs, []uint32{0, 1}) {
		t.Errorf("agent = %+v", c.Agent)
	}
	_, err := Parse("u.conf", []byte(base+"uidgid {\n uid: no-such-user-xyz\n gid: no-such-group-xyz\n gid: -1\n}\n"))
	want := []string{
		`u.conf:11: uidgid.uid: unknown user "no-such-user-xyz"`,
		`u.conf:12: uidgid.gid: unknown group "no-such-group-xyz"`,
		`u.conf:13: uidgid.gid: unknown group "-1"`,
	}
	if got := errStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	// TOML takes ids or names.
	tbase := "[totem]\ncluster_name = \"c\"\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n[agent]\n"
	c = mustParse(t, "u.toml", tbase+"allowed_uids = [0, \"daemon\", 1000]\nallowed_gids = [\"root\"]\n")
	if !slices.Equal(c.Agent.AllowedUIDs, []uint32{0, 1, 1000}) || !slices.Equal(c.Agent.AllowedGIDs, []uint32{0}) {
		t.Errorf("agent = %+v", c.Agent)
	}
	_, err = Parse("u.toml", []byte(tbase+"allowed_uids = [-1, true]\nallowed_gids = 5\n"))
	want = []string{
		"u.toml:7: agent.allowed_uids.0: invalid value -1: must be an integer from 0 to 4294967295",
		"u.toml:7: agent.allowed_uids.1: invalid value true: must be a user id or name",
		"u.toml:8: agent.allowed_gids: invalid value 5: must be an array of ids or names",
	}
	if got := errStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestWarnings(t *testing.T) {
	text := `totem {
	cluster_name: w
	transport: udpu
	ip_version: ipv4
	window_size: 50
	rrp_mode: passive
	token_warning: 75
	interface {
		linknumber: 0
		bindnetaddr: 10.0.0.0
		mcastport: 5405
		knet_link_priority: 1
	}
	interface {
		linknumber: 3
	}
}
nodelist {
	node {
		nodeid: 1
		ring0_addr: 10.0.0.1
		quorum_votes: 1
	}
}
quorum {
	provider: corosync_votequorum
	leaving_timeout: 100
}
system {
	state_dir: /var/lib/corosync
}
resources {
	system {
		memory_used {
			poll_period: 1000
		}
	}
}
logging {
	logger_subsys {
		subsys: QUORUM
		debug: on
	}
}
qb {
	ipc_type: native
}
nozzle {
	name: noz0
}
resources {
	watchdog_device: off
	process {
		memory_used {
			recovery: none
		}
	}
}
logging {
	logging_daemon {
		name: corosync
		subsys: QDEVICE
		debug: off
	}
}
totem {
	interface {
		linknumber: 0
		member {
			memberaddr: 10.0.0.1
		}
	}
}
`
	c := mustParse(t, "w.conf", text)
	want := []string{
		"w.conf:3: totem.transport: transport udpu accepted, but Conclave uses its own transport",
		"w.conf:4: totem.ip_version: not used by Conclave (ignored)",
		"w.conf:5: totem.window_size: not used by Conclave (ignored)",
		"w.conf:6: totem.rrp_mode: not used by Conclave (ignored)",
		"w.conf:7: totem.token_warning: not used by Conclave (ignored)",
		"w.conf:10: totem.interface.0.bindnetaddr: not used by Conclave (ignored)",
		"w.conf:12: totem.interface.0.knet_link_priority: not used by Conclave (ignored)",
		"w.conf:27: quorum.leaving_timeout: not used by Conclave (ignored)",
		"w.conf:30: system.state_dir: not used by Conclave (ignored)",
		"w.conf:35: resources.system.memory_used.poll_period: not used by Conclave (ignored)",
		"w.conf:41: logging.logger_subsys.subsys: not used by Conclave (ignored)",
		"w.conf:42: logging.logger_subsys.debug: not used by Conclave (ignored)",
		"w.conf:46: qb.ipc_type: not used by Conclave (ignored)",
		"w.conf:49: nozzle.name: not used by Conclave (ignored)",
		"w.conf:52: resources.watchdog_device: not used by Conclave (ignored)",
		"w.conf:55: resources.process.memory_used.recovery: not used by Conclave (ignored)",
		"w.conf:61: logging.logging_daemon.name: not used by Conclave (ignored)",
		"w.conf:62: logging.logging_daemon.subsys: not used by Conclave (ignored)",
		"w.conf:63: logging.logging_daemon.debug: not used by Conclave (ignored)",
		"w.conf:70: totem.interface.0.member.memberaddr: not used by Conclave (ignored)",
		"w.conf:14: totem.interface.3: interface for link 3, but no node has a ring3_addr (ignored)",
	}
	if got := warnStrings(c); !slices.Equal(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
}

func TestCorosyncSyntax(t *testing.T) {
	good := "# comment\n   # indented comment\ntotem{\n\tcluster_name:  spaced name  \t\n}\t \n\nnodelist {\n node {\n  nodeid:1\n  ring0_addr: 10.0.0.1\r\n }\n}\n"
	c := mustParse(t, "s.conf", good)
	if c.ClusterName != "spaced name" || c.Nodes[0].ID != 1 || c.Nodes[0].Links[0] != "10.0.0.1" {
		t.Errorf("parsed %+v", c)
	}
	long := "totem {\n cluster_name: " + strings.Repeat("x", 511-len(" cluster_name: ")) + "\n}\n"
	if _, err := Parse("s.conf", []byte(long+"nodelist {\nnode {\nnodeid: 1\nring0_addr: 1.1.1.1\n}\n}\n")); err != nil {
		t.Errorf("a 511-character line must be accepted: %v", err)
	}
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"too long", "totem {\n cluster_name: " + strings.Repeat("x", 512-len(" cluster_name: ")) + "\n}\n",
			[]string{"s.conf:2: line too long (512 characters, at most 511)"}},
		{"unbalanced close", "totem {\n}\n}\n", []string{"s.conf:3: unexpected '}': no section is open"}},
		{"unclosed", "totem {\n cluster_name: x\nnodelist {\n", []string{
			`s.conf:3: totem.nodelist: section is never closed (missing '}')`,
			`s.conf:1: totem: section is never closed (missing '}')`,
		}},
		{"neither", "totem {\n cluster_name x\n}\n", []string{"s.conf:2: syntax error: \"cluster_name x\" is not `key: value`, `section {` or `}`"}},
		{"key outside", "cluster_name: x\n", []string{"s.conf:1: cluster_name: key outside any section"}},
		{"no section name", "{\n}\n", []string{"s.conf:1: missing section name before '{'"}},
		{"after brace", "totem { cluster_name: x\n}\n", []string{"s.conf:1: totem: extra characters after '{'"}},
		{"around close", "totem {\n} x\n", []string{
			"s.conf:2: extra characters before or after '}'",
			"s.conf:1: totem: section is never closed (missing '}')",
		}},
		{"empty key", "totem {\n : x\n}\n", []string{"s.conf:2: missing key name before ':'"}},
		{"unknown section", "nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\nbogus {\n x: 1\n}\n", []string{"s.conf:7: bogus: unknown section"}},
		{"unknown subsection", "totem {\n cluster_name: c\n ring {\n }\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n  sub {\n  }\n }\n}\nquorum {\n device {\n  other {\n  }\n }\n}\n",
			[]string{
				"s.conf:3: totem.ring: unknown section",
				"s.conf:10: nodelist.node.0.sub: unknown section",
				"s.conf:16: quorum.device.other: unknown section",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.conf", []byte(tc.text))
			if got := errStrings(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidateInCode(t *testing.T) {
	c := &Config{
		ClusterName: "code",
		Nodes: []Node{
			{ID: 1, Name: "a", Links: [MaxLinks]string{"10.0.0.1"}},
			{ID: 2, Name: "b", Links: [MaxLinks]string{"10.0.0.2"}},
		},
		Totem: Totem{Token: time.Second, Consensus: 1200 * time.Millisecond, Join: 50 * time.Millisecond,
			Heartbeat: 125 * time.Millisecond, NetMTU: 1500, FlapCount: 4, FlapWindow: time.Minute},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	// Without defaults a zero Totem is refused; with no file there are no lines.
	c.Totem = Totem{}
	c.Nodes[1].Name = "a"
	want := []string{
		`nodelist.node.1.name: duplicate name "a" (also nodelist.node.0)`,
		"totem.token: must be at least 10ms (got 0s)",
		"totem.join: must be at least 1ms (got 0s)",
		"totem.consensus: must be greater than 0 (got 0s)",
		"totem.heartbeat: must be greater than 0 and less than the effective token timeout 0s (got 0s)",
		"totem.netmtu: must be from 576 to 65535 (got 0)",
		"totem.flap_count: must be at least 1 (got 0)",
		"totem.flap_window: must be at least 1ms (got 0s)",
	}
	if got := errStrings(t, c.Validate()); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}
