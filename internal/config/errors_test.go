package config

import (
	"slices"
	"strings"
	"testing"
)

// ccConf builds a corosync.conf whose line numbers are easy to count: the
// totem section starts at line 1 with cluster_name on line 2, then the given
// totem lines, then one node per address (6 lines each: node {, nodeid,
// name, ring0_addr, extra, }), then the quorum lines.
func ccConf(totem []string, nodes []string, quorum []string) string {
	var b strings.Builder
	b.WriteString("totem {\n cluster_name: t\n")
	for _, l := range totem {
		b.WriteString(" " + l + "\n")
	}
	b.WriteString("}\nnodelist {\n")
	for _, n := range nodes {
		b.WriteString(" node {\n" + n + " }\n")
	}
	b.WriteString("}\nquorum {\n")
	for _, l := range quorum {
		b.WriteString(" " + l + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func node(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

var (
	n1 = node("nodeid: 1", "ring0_addr: 10.0.0.1")
	n2 = node("nodeid: 2", "ring0_addr: 10.0.0.2")
)

func TestCorosyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []string
	}{
		{"two_node yes", ccConf(nil, []string{n1}, []string{"two_node: yes"}),
			[]string{`c.conf:11: quorum.two_node: invalid value "yes": must be 0 or 1`}},
		{"wait_for_all 2", ccConf(nil, []string{n1}, []string{"wait_for_all: 2"}),
			[]string{`c.conf:11: quorum.wait_for_all: invalid value "2": must be 0 or 1`}},
		{"junk integer", ccConf([]string{"token: 12x"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.token: invalid value "12x": must be an integer number of milliseconds from 0 to 4294967295`}},
		{"negative", ccConf(nil, []string{n1}, []string{"expected_votes: -1"}),
			[]string{`c.conf:11: quorum.expected_votes: invalid value "-1": must be an integer from 0 to 4294967295`}},
		{"overflow", ccConf(nil, []string{node("nodeid: 4294967296", "ring0_addr: 10.0.0.1")}, nil),
			[]string{`c.conf:6: nodelist.node.0.nodeid: invalid value "4294967296": must be an integer from 0 to 4294967295`}},
		{"empty value", ccConf([]string{"join:"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.join: invalid value "": must be an integer number of milliseconds from 0 to 4294967295`}},
		{"inline comment is part of the value", ccConf([]string{"version: 2 # required"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.version: invalid value "2 # required": must be an integer from 0 to 4294967295`}},
		{"version", ccConf([]string{"version: 1"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.version: unsupported version 1: only version 2 configurations are understood`}},
		{"transport", ccConf([]string{"transport: sctp"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.transport: invalid value "sctp": must be knet, udpu or udp`}},
		{"provider", ccConf(nil, []string{n1}, []string{"provider: corosync_quorum"}),
			[]string{`c.conf:11: quorum.provider: Invalid quorum provider "corosync_quorum": only corosync_votequorum is supported`}},
		{"empty cluster_name", strings.Replace(ccConf(nil, []string{n1}, nil), "cluster_name: t", "cluster_name:", 1),
			[]string{`c.conf:2: totem.cluster_name: must not be empty`}},
		{"no nodes", ccConf(nil, nil, nil),
			[]string{`c.conf:4: nodelist: at least one node is required`}},
		{"nodeid 0", ccConf(nil, []string{n1, node("nodeid: 0", "ring0_addr: 10.0.0.2")}, nil),
			[]string{`c.conf:10: nodelist.node.1.nodeid: nodeid 0 is reserved`}},
		{"nodeid missing", ccConf(nil, []string{n1, node("name: b", "ring0_addr: 10.0.0.2")}, nil),
			[]string{`c.conf:9: nodelist.node.1.nodeid: missing (required)`}},
		{"nodeid duplicate", ccConf(nil, []string{n1, node("nodeid: 1", "ring0_addr: 10.0.0.2")}, nil),
			[]string{`c.conf:10: nodelist.node.1.nodeid: duplicate nodeid 1 (also nodelist.node.0, line 5)`}},
		{"name duplicate", ccConf(nil, []string{node("nodeid: 1", "name: a", "ring0_addr: 10.0.0.1"), node("nodeid: 2", "name: a", "ring0_addr: 10.0.0.2")}, nil),
			[]string{`c.conf:12: nodelist.node.1.name: duplicate name "a" (also nodelist.node.0, line 5)`}},
		{"default name collides", ccConf(nil, []string{node("nodeid: 1", "name: node2", "ring0_addr: 10.0.0.1"), n2}, nil),
			[]string{`c.conf:10: nodelist.node.1.name: duplicate name "node2" (also nodelist.node.0, line 5)`}},
		{"ring0 missing", ccConf(nil, []string{n1, node("nodeid: 2", "ring1_addr: 10.0.1.2")}, nil),
			[]string{
				`c.conf:9: nodelist.node.1.ring0_addr: missing (required)`,
				`c.conf:9: nodelist.node.1: configures links [1] but nodelist.node.0 configures links [0]: every node must configure the same links`,
			}},
		{"link sets differ", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: 10.0.0.1", "ring1_addr: 10.0.1.1"), n2}, nil),
			[]string{`c.conf:10: nodelist.node.1: configures links [0] but nodelist.node.0 configures links [0 1]: every node must configure the same links`}},
		{"bad address", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: 10.0.0.256")}, nil),
			[]string{`c.conf:7: nodelist.node.0.ring0_addr: invalid address "10.0.0.256": not an IP address, IP:port, [IPv6]:port or hostname`}},
		{"port 0", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: 10.0.0.1:0")}, nil),
			[]string{`c.conf:7: nodelist.node.0.ring0_addr: invalid address "10.0.0.1:0": invalid port "0": must be from 1 to 65535`}},
		{"port too big", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: [::1]:65536")}, nil),
			[]string{`c.conf:7: nodelist.node.0.ring0_addr: invalid address "[::1]:65536": invalid port "65536": must be from 1 to 65535`}},
		{"brackets on IPv4", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: [10.0.0.1]:5405")}, nil),
			[]string{`c.conf:7: nodelist.node.0.ring0_addr: invalid address "[10.0.0.1]:5405": brackets are only for IPv6 addresses`}},
		{"unspecified address", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: 0.0.0.0")}, nil),
			[]string{`c.conf:7: nodelist.node.0.ring0_addr: invalid address "0.0.0.0": not a unicast node address`}},
		{"duplicate address", ccConf(nil, []string{n1, node("nodeid: 2", "ring0_addr: 10.0.0.1:5405")}, nil),
			[]string{`c.conf:11: nodelist.node.1.ring0_addr: address "10.0.0.1:5405" is also used by nodelist.node.0 on link 0`}},
		{"duplicate hostname", ccConf(nil, []string{node("nodeid: 1", "ring0_addr: Alpha.example"), node("nodeid: 2", "ring0_addr: alpha.example.")}, nil),
			[]string{`c.conf:11: nodelist.node.1.ring0_addr: address "alpha.example." is also used by nodelist.node.0 on link 0`}},
		{"token too small", ccConf([]string{"token: 5"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.token: must be at least 10ms (got 5ms)`}},
		{"join 0", ccConf([]string{"join: 0"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.join: must be at least 1ms (got 0s)`}},
		{"consensus 0", ccConf([]string{"consensus: 0"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.consensus: must be greater than 0 (got 0s)`}},
		{"heartbeat too long", ccConf([]string{"heartbeat: 800"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.heartbeat: must be greater than 0 and less than the effective token timeout 800ms (got 800ms)`}},
		{"netmtu small", ccConf([]string{"netmtu: 575"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.netmtu: must be from 576 to 65535 (got 575)`}},
		{"netmtu big", ccConf([]string{"netmtu: 65536"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.netmtu: must be from 576 to 65535 (got 65536)`}},
		{"flap_count 0", ccConf([]string{"flap_count: 0"}, []string{n1}, nil),
			[]string{`c.conf:3: totem.flap_count: must be at least 1 (got 0)`}},
		{"linknumber", ccConf([]string{"interface {", "linknumber: 8", "}"}, []string{n1}, nil),
			[]string{`c.conf:4: totem.interface.8.linknumber: invalid value "8": must be an integer from 0 to 7`}},
		{"mcastport", ccConf([]string{"interface {", "mcastport: 0", "}"}, []string{n1}, nil),
			[]string{`c.conf:4: totem.interface.0.mcastport: invalid value "0": must be an integer from 1 to 65535`}},
		{"empty ring address", ccConf(nil, []string{n1, node("nodeid: 2", "ring0_addr: 10.0.0.2", "ring1_addr:")}, nil),
			[]string{
				`c.conf:12: nodelist.node.1.ring1_addr: invalid value "": must not be empty`,
			}},
		{"many problems at once", ccConf([]string{"token: abc", "netmtu: 9"},
			[]string{node("nodeid: 1", "ring0_addr: 10.0.0.1"), node("nodeid: 1", "ring0_addr: 10.0.0.1")},
			[]string{"two_node: yes", "provider: x"}),
			[]string{
				`c.conf:3: totem.token: invalid value "abc": must be an integer number of milliseconds from 0 to 4294967295`,
				`c.conf:17: quorum.two_node: invalid value "yes": must be 0 or 1`,
				`c.conf:12: nodelist.node.1.nodeid: duplicate nodeid 1 (also nodelist.node.0, line 7)`,
				`c.conf:13: nodelist.node.1.ring0_addr: address "10.0.0.1" is also used by nodelist.node.0 on link 0`,
				`c.conf:4: totem.netmtu: must be from 576 to 65535 (got 9)`,
				`c.conf:18: quorum.provider: Invalid quorum provider "x": only corosync_votequorum is supported`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.conf", []byte(tc.text))
			if got := errStrings(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q\nfile:\n%s", got, tc.want, tc.text)
			}
			if err != nil && c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
		})
	}
}

// tomlConf is a valid TOML configuration (lines 1-4) followed by extra.
func tomlConf(extra string) string {
	return "[totem]\ncluster_name = \"t\"\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n" + extra
}

func TestTOMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []string
	}{
		{"cluster_name missing", "[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n",
			[]string{`t.toml: totem.cluster_name: missing (required)`}},
		{"cluster_name missing in totem", "[totem]\ntoken = 900\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n",
			[]string{`t.toml:1: totem.cluster_name: missing (required)`}},
		{"no nodes", "[totem]\ncluster_name = \"t\"\n",
			[]string{`t.toml: nodelist: at least one node is required`}},
		{"syntax", tomlConf("[quorum\n"),
			[]string{`t.toml:6: expected ']' to close table name`}},
		{"duplicate key", tomlConf("[quorum]\ntwo_node = 1\ntwo_node = 0\n"),
			[]string{`t.toml:8: quorum.two_node: key two_node is already defined`}},
		{"unknown keys", tomlConf("bogus = 1\n[[nodelist.node]]\nnodeid = 2\nring0_addr = \"10.0.0.2\"\ncolour = \"red\"\n[totem.extra]\nx = 1\n[frob]\n[quorum]\nsecauth = \"on\"\n"),
			[]string{
				`t.toml:6: nodelist.node.0.bogus: unknown key`,
				`t.toml:10: nodelist.node.1.colour: unknown key`,
				`t.toml:11: totem.extra: unknown key`,
				`t.toml:13: frob: unknown key`,
				`t.toml:15: quorum.secauth: unknown key`,
			}},
		{"unknown key in inline table", "[totem]\ncluster_name = \"t\"\n[nodelist]\nnode = [{nodeid = 1, ring0_addr = \"10.0.0.1\", x = 2}]\n",
			[]string{`t.toml:4: nodelist.node.0.x: unknown key`}},
		{"corosync-only keys are unknown", tomlConf("[quorum]\n[[totem.interface]]\nbindnetaddr = \"10.0.0.0\"\n"),
			[]string{`t.toml:8: totem.interface.0.bindnetaddr: unknown key`}},
		{"string for integer", tomlConf("[quorum]\nexpected_votes = \"3\"\n"),
			[]string{`t.toml:7: quorum.expected_votes: invalid value "3": must be an integer from 0 to 4294967295`}},
		{"float for duration", "[totem]\ncluster_name = \"t\"\ntoken = 1.5\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n",
			[]string{`t.toml:3: totem.token: invalid value 1.5: must be an integer number of milliseconds from 0 to 4294967295`}},
		{"negative", tomlConf("[quorum]\nvotes = -2\n"),
			[]string{`t.toml:7: quorum.votes: invalid value -2: must be an integer from 0 to 4294967295`}},
		{"bool yes", tomlConf("[quorum]\ntwo_node = \"yes\"\nwait_for_all = 2\nauto_tie_breaker = [1]\n"),
			[]string{
				`t.toml:7: quorum.two_node: invalid value "yes": must be true, false, 0 or 1`,
				`t.toml:8: quorum.wait_for_all: invalid value 2: must be true, false, 0 or 1`,
				`t.toml:9: quorum.auto_tie_breaker: invalid value (an array): must be true, false, 0 or 1`,
			}},
		{"number for string", "[totem]\ncluster_name = 5\n[[nodelist.node]]\nnodeid = 1\nring0_addr = \"10.0.0.1\"\n",
			[]string{`t.toml:2: totem.cluster_name: invalid value 5: must be a string`}},
		{"table for table", "totem = 5\n",
			[]string{`t.toml:1: totem: must be a table, not a TOML integer`}},
		{"array of tables", "[nodelist]\nnode = 5\n",
			[]string{`t.toml:2: nodelist.node: must be an array of tables, not a TOML integer`}},
		{"date", tomlConf("[quorum]\nexpected_votes = 2024-01-01\n"),
			[]string{`t.toml:7: quorum.expected_votes: invalid value (a TOML toml.LocalDate): must be an integer from 0 to 4294967295`}},
		{"device net nested", tomlConf("[quorum.device.net]\nhost = \"q\"\ntls = true\n[quorum.device.net.sub]\nx = 1\n"),
			[]string{
				`t.toml:8: quorum.device.net.tls: invalid value true: must be a string or an integer`,
				`t.toml:9: quorum.device.net.sub: invalid value (a table): must be a string or an integer`,
			}},
		{"duplicate interface", tomlConf("[[totem.interface]]\nlinknumber = 1\n[[totem.interface]]\nlinknumber = 1\n"),
			[]string{`t.toml:8: totem.interface.1: duplicate interface for linknumber 1`}},
		{"single table for an array", tomlConf("[totem.interface]\nlinknumber = 1\n"),
			[]string{`t.toml:6: totem.interface: must be an array of tables: write [[totem.interface]]`}},
		{"log level", tomlConf("[agent]\nlog_level = \"verbose\"\n"),
			[]string{`t.toml:7: agent.log_level: invalid value "verbose": must be one of debug, info, warn, error`}},
		{"node errors by index", tomlConf("[[nodelist.node]]\nnodeid = 2\nring0_addr = \"10.0.0.1\"\nquorum_votes = true\n"),
			[]string{
				`t.toml:9: nodelist.node.1.quorum_votes: invalid value true: must be an integer from 0 to 4294967295`,
				`t.toml:8: nodelist.node.1.ring0_addr: address "10.0.0.1" is also used by nodelist.node.0 on link 0`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tc.text))
			if got := errStrings(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q\nfile:\n%s", got, tc.want, tc.text)
			}
		})
	}
}

func TestTOMLBooleans(t *testing.T) {
	c := mustParse(t, "b.toml", tomlConf("[quorum]\ntwo_node = 1\nwait_for_all = false\nlast_man_standing = true\nallow_downscale = 0\nauto_tie_breaker_node = 3\n"))
	q := c.Quorum
	if !*q.TwoNode || *q.WaitForAll || !*q.LastManStanding || *q.AllowDownscale || q.AutoTieBreaker != nil || q.AutoTieBreakerNode != "3" {
		t.Errorf("quorum = %+v", q)
	}
	want := map[string]int{"quorum": 6, "quorum.two_node": 7, "quorum.wait_for_all": 8, "quorum.last_man_standing": 9,
		"quorum.allow_downscale": 10, "quorum.auto_tie_breaker_node": 11}
	if !mapsEqual(q.Line, want) {
		t.Errorf("Quorum.Line = %v, want %v", q.Line, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
