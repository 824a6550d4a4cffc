package config

import (
	"os"
	"path/filepath"
	"testing"
)

// seed adds every testdata file with the given extension to the corpus.
func seed(f *testing.F, ext string, extra ...string) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files *%s: %v", ext, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// checkParsed asserts what must hold for any input: no panic (the fuzzer
// reports it), every problem is an *Error, and an accepted Config passes
// Validate again and can answer every question the agent will ask of it.
func checkParsed(t *testing.T, c *Config, err error) {
	if err != nil {
		if c != nil {
			t.Fatalf("Config and error both returned: %v", err)
		}
		errStrings(t, err) // fails unless every error is a *config.Error
		return
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted config does not re-validate: %v", err)
	}
	if len(c.Nodes) == 0 || c.ClusterName == "" {
		t.Fatalf("accepted config without nodes or cluster name: %+v", c)
	}
	for _, n := range c.Nodes {
		for link, s := range n.Links {
			if s == "" {
				continue
			}
			a, err := parseRingAddr(s)
			if err != nil {
				t.Fatalf("accepted address %q does not parse: %v", s, err)
			}
			if _, err := n.Addr(link); (err == nil) != (a.host == "") {
				t.Fatalf("Addr(%d) of %q: %v", link, s, err)
			}
		}
	}
	c.LinkCount()
	_ = c.Crypto.NeedsKey()
}

func FuzzParseCorosync(f *testing.F) {
	seed(f, ".conf",
		ccConf([]string{"token: 12x", "interface {", "linknumber: 1", "}"}, []string{n1, n2}, []string{"two_node: 1"}),
		"totem {\n}\n}\n",
		"totem {\n cluster_name: x\nnodelist {\n",
		"uidgid {\n uid: root\n gid: 0\n}\n",
		"logging {\n logger_subsys {\n  subsys: QUORUM\n }\n}\n",
		"compatibility: whitetank\namf {\n mode: disabled\n}\naisexec {\n user: root\n}\nservice {\n name: pacemaker\n ver: 0\n}\nevent {\n}\n",
		"totem {\n secauth: false\n interface {\n  ringnumber: 1\n  mcastport: 5407\n  member {\n   memberaddr: 10.0.0.1\n  }\n }\n}\n",
		"resources {\n watchdog_device: off\n system {\n  memory_used {\n   poll_period: 1000\n  }\n }\n}\nsystem {\n state_dir: /x\n}\n",
		"logging {\n logging_daemon {\n  name: corosync\n  subsys: QDEVICE\n }\n}\nnozzle {\n name: n\n}\nqb {\n ipc_type: shm\n}\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("fuzz.conf", data, FormatCorosync)
		checkParsed(t, c, err)
	})
}

func FuzzParseTOML(f *testing.F) {
	seed(f, ".toml",
		tomlConf("[quorum]\ntwo_node = true\n[[totem.interface]]\nlinknumber = 1\n"),
		"[totem]\ncluster_name = \"t\"\n[nodelist]\nnode = [{nodeid = 1, ring0_addr = \"10.0.0.1\"}]\n",
		"totem = 5\n",
		"[agent]\nallowed_uids = [0, \"root\"]\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("fuzz.toml", data, FormatTOML)
		checkParsed(t, c, err)
	})
}
