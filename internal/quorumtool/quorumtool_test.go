package quorumtool

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conclave/conclave/cs"
)

// date is the spec's example date, Sat Nov 21 23:30:00 2026.
var date = time.Date(2026, time.November, 21, 23, 30, 0, 0, time.UTC)

const header3 = `Quorum information
------------------
Date:             Sat Nov 21 23:30:00 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.1c
Quorate:          Yes
`

// three is the spec §8.2 example: three one-vote nodes, all up.
func three() Data {
	return Data{
		Date:     date,
		Provider: ProviderVotequorum,
		Quorate:  true,
		RingRep:  1,
		RingSeq:  0x1c,
		NodeID:   1,
		Info: Info{NodeState: 1, NodeVotes: 1, NodeExpectedVotes: 3, HighestExpected: 3,
			TotalVotes: 3, Quorum: 2, Flags: infoQuorate},
		Members: []Member{
			{NodeID: 1, Name: "node1", Addrs: []string{"10.0.0.1", "10.1.0.1"}, Votes: 1, Flags: infoQuorate},
			{NodeID: 2, Name: "node2", Addrs: []string{"10.0.0.2", "10.1.0.2"}, Votes: 1, Flags: infoQuorate},
			{NodeID: 3, Name: "node3", Addrs: []string{"10.0.0.3", "10.1.0.3"}, Votes: 1, Flags: infoQuorate},
		},
	}
}

// withQdevice gives every member of d a registered device with flags f and
// sets the local device numbers.
func withQdevice(d Data, f uint32, votes uint32) Data {
	d.Members = append([]Member(nil), d.Members...)
	for i := range d.Members {
		d.Members[i].Flags |= infoQdeviceRegistered | f
	}
	d.Info.Flags |= infoQdeviceRegistered | f
	d.Info.QdeviceVotes = votes
	d.Info.QdeviceName = "Qdevice"
	return d
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		d    func() Data
		o    Options
		exit int
		want string
	}{
		{
			name: "spec example",
			d:    three,
			exit: 0,
			want: header3 + `
Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 node3
`,
		},
		{
			name: "not quorate, activity blocked, empty flags",
			d: func() Data {
				d := three()
				d.Quorate = false
				d.Members = d.Members[:1]
				d.Members[0].Flags = 0
				d.Info.TotalVotes, d.Info.Flags = 1, 0
				return d
			},
			exit: 2,
			want: `Quorum information
------------------
Date:             Sat Nov 21 23:30:00 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          1
Ring ID:          1.1c
Quorate:          No

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      1
Quorum:           2 Activity blocked
Flags:            

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
`,
		},
		{
			name: "all flags in order, device casting",
			d: func() Data {
				d := withQdevice(three(), infoQdeviceAlive|infoQdeviceCastVote|infoQdeviceMasterWins, 1)
				d.Info.Flags = 1023
				d.Info.NodeExpectedVotes, d.Info.HighestExpected, d.Info.TotalVotes, d.Info.Quorum = 4, 4, 4, 3
				return d
			},
			exit: 0,
			want: header3 + `
Votequorum information
----------------------
Expected votes:   4
Highest expected: 4
Total votes:      4
Quorum:           3  
Flags:            2Node Quorate WaitForAll LastManStanding AutoTieBreaker AllowDownscale Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1     A,V,MW node1 (local)
         2          1     A,V,MW node2
         3          1     A,V,MW node3
         0          1            Qdevice
`,
		},
		{
			name: "device not casting: votes 0 and (votes N), mixed cells",
			d: func() Data {
				d := withQdevice(three(), 0, 2)
				d.Members[1].Flags |= infoQdeviceAlive
				d.Members[2].Flags = infoQuorate // not registered there
				d.Info.NodeExpectedVotes, d.Info.HighestExpected, d.Info.TotalVotes, d.Info.Quorum = 5, 5, 3, 3
				return d
			},
			exit: 0,
			want: header3 + `
Votequorum information
----------------------
Expected votes:   5
Highest expected: 5
Total votes:      3
Quorum:           3  
Flags:            Quorate Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1  NA,NV,NMW node1 (local)
         2          1   A,NV,NMW node2
         3          1         NR node3
         0          0            Qdevice (votes 2)
`,
		},
		{
			name: "device row follows the local node's cast vote, not another's",
			d: func() Data {
				d := withQdevice(three(), infoQdeviceAlive, 1)
				d.Members[2].Flags |= infoQdeviceCastVote
				return d
			},
			exit: 0,
			want: header3 + `
Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1   A,NV,NMW node1 (local)
         2          1   A,NV,NMW node2
         3          1    A,V,NMW node3
         0          0            Qdevice (votes 1)
`,
		},
		{
			name: "hex ids and -p column without a device",
			d:    three,
			o:    Options{Hex: true, Parsable: true},
			exit: 0,
			want: strings.Replace(header3, "Node ID:          1\n", "Node ID:          0x00000001\n", 1) + `
Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
0x00000001          1         NR node1 (local)
0x00000002          1         NR node2
0x00000003          1         NR node3
`,
		},
		{
			name: "hex device row",
			d: func() Data {
				d := withQdevice(three(), infoQdeviceAlive|infoQdeviceCastVote, 1)
				d.Members = d.Members[:1]
				return d
			},
			o:    Options{Hex: true},
			exit: 0,
			want: `Quorum information
------------------
Date:             Sat Nov 21 23:30:00 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          0x00000001
Ring ID:          1.1c
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
0x00000001          1    A,V,NMW node1 (local)
0x00000000          1            Qdevice
`,
		},
		{
			name: "no provider: stops after Quorate, ring id is the seq alone",
			d: func() Data {
				d := three()
				d.Provider = ""
				d.RingSeq = 0x2a
				return d
			},
			exit: 0,
			want: `Quorum information
------------------
Date:             Sat Nov 21 23:30:00 2026
Quorum provider:  Not configured
Nodes:            3
Node ID:          1
Ring ID:          2a
Quorate:          Yes
`,
		},
		{
			name: "local getinfo CS_ERR_NOT_EXIST: block from the zeroed struct, exit 1",
			d: func() Data {
				d := three()
				d.Info = Info{}
				d.InfoErr = cs.ErrNotExist
				return d
			},
			exit: 1,
			want: header3 + `
Votequorum information
----------------------
Expected votes:   0
Highest expected: 0
Total votes:      0
Quorum:           0 Activity blocked
Flags:            

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 node3
`,
		},
		{
			name: "local getinfo other error: no block, table, exit 1",
			d: func() Data {
				d := three()
				d.InfoErr = fmt.Errorf("getinfo: %w", cs.ErrTryAgain)
				return d
			},
			exit: 1,
			want: header3 + `
Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 node3
`,
		},
		{
			name: "per-node getinfo failure",
			d: func() Data {
				d := three()
				d.Members[1].Err = cs.ErrNotExist
				d.Members[1].Votes = 7 // ignored: the struct counts as zeroed
				d.Members[2].Err = cs.ErrTryAgain
				return d
			},
			o:    Options{Hex: true},
			exit: 0,
			want: strings.Replace(header3, "Node ID:          1\n", "Node ID:          0x00000001\n", 1) + `
Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 
Unable to get node 2 info
Unable to get node 3 info

Membership information
----------------------
    Nodeid      Votes Name
0x00000001          1 node1 (local)
0x00000002          0 node2
0x00000003          0 node3
`,
		},
		{
			name: "quorate by votequorum but not by libquorum: exit follows libquorum",
			d: func() Data {
				d := three()
				d.Quorate = false
				d.Members = nil
				return d
			},
			exit: 2,
			want: `Quorum information
------------------
Date:             Sat Nov 21 23:30:00 2026
Quorum provider:  corosync_votequorum
Nodes:            0
Node ID:          1
Ring ID:          1.1c
Quorate:          No

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes Name
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			o := tt.o
			o.Stderr = &errOut
			exit := Status(&out, tt.d(), o)
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s\ndiff: %s", show(got), show(tt.want), firstDiff(got, tt.want))
			}
			if exit != tt.exit {
				t.Errorf("exit %d, want %d", exit, tt.exit)
			}
		})
	}
}

func TestStatusStderr(t *testing.T) {
	d := three()
	d.InfoErr = fmt.Errorf("getinfo: %w", cs.ErrTryAgain)
	var out, errOut bytes.Buffer
	Status(&out, d, Options{Stderr: &errOut})
	if got, want := errOut.String(), "Unable to get node info: CS_ERR_TRY_AGAIN\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}

	d.InfoErr = errors.New("connection reset")
	errOut.Reset()
	Status(&out, d, Options{Stderr: &errOut})
	if got, want := errOut.String(), "Unable to get node info: connection reset\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}

	// NOT_EXIST prints the block instead; nothing on stderr. A nil Stderr
	// must not panic.
	d.InfoErr = cs.ErrNotExist
	errOut.Reset()
	Status(&out, d, Options{Stderr: &errOut})
	Status(&out, d, Options{})
	d.InfoErr = cs.ErrTryAgain
	Status(&out, d, Options{})
	if errOut.Len() != 0 {
		t.Errorf("stderr %q, want nothing", errOut.String())
	}
}

func TestDate(t *testing.T) {
	// ctime pads a one-digit day with a space.
	d := three()
	d.Date = time.Date(2027, time.February, 3, 4, 5, 6, 0, time.UTC)
	var out bytes.Buffer
	Status(&out, d, Options{})
	if want := "Date:             Wed Feb  3 04:05:06 2027\n"; !strings.Contains(out.String(), want) {
		t.Errorf("no %q in\n%s", want, out.String())
	}
}

// unordered is a member list whose list ("address") order, id order and
// name order all differ, with different votes on every node so a votes
// cell on the wrong line shows.
func unordered() Data {
	d := three()
	d.NodeID = 2
	d.Members = []Member{
		{NodeID: 3, Name: "alpha", Addrs: []string{"10.0.0.3"}, Votes: 3},
		{NodeID: 1, Name: "charlie", Addrs: []string{"10.0.0.1"}, Votes: 1},
		{NodeID: 2, Name: "bravo", Addrs: []string{"10.0.0.2"}, Votes: 2, Flags: infoQdeviceRegistered | infoQdeviceAlive},
	}
	d.Info.QdeviceName = "Qdevice"
	d.Info.QdeviceVotes = 1
	return d
}

func TestList(t *testing.T) {
	tests := []struct {
		name string
		d    func() Data
		o    Options
		want string
	}{
		{"order a: as listed", unordered, Options{Order: 'a'}, `
Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         3          3         NR alpha
         1          1         NR charlie
         2          2   A,NV,NMW bravo (local)
         0          0            Qdevice (votes 1)
`},
		{"order 0 is a", unordered, Options{}, `
Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         3          3         NR alpha
         1          1         NR charlie
         2          2   A,NV,NMW bravo (local)
         0          0            Qdevice (votes 1)
`},
		// Each node keeps its own votes and Qdevice cell (the upstream
		// quirk would print 3, 1, 2 down the votes column here).
		{"order i", unordered, Options{Order: 'i'}, `
Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1         NR charlie
         2          2   A,NV,NMW bravo (local)
         3          3         NR alpha
         0          0            Qdevice (votes 1)
`},
		{"order n", unordered, Options{Order: 'n'}, `
Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         3          3         NR alpha
         2          2   A,NV,NMW bravo (local)
         1          1         NR charlie
         0          0            Qdevice (votes 1)
`},
		{"order n with -i sorts the addresses", func() Data {
			d := unordered()
			d.Members[0].Addrs = []string{"10.0.0.9"}
			return d
		}, Options{Order: 'n', IPs: true, Hex: true}, `
Membership information
----------------------
    Nodeid      Votes    Qdevice Name
0x00000001          1         NR 10.0.0.1
0x00000002          2   A,NV,NMW 10.0.0.2 (local)
0x00000003          3         NR 10.0.0.9
0x00000000          0            Qdevice (votes 1)
`},
		{"-i first address", three, Options{IPs: true}, `
Membership information
----------------------
    Nodeid      Votes Name
         1          1 10.0.0.1 (local)
         2          1 10.0.0.2
         3          1 10.0.0.3
`},
		{"-a names then the other links", three, Options{AllAddrs: true}, `
Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1, 10.1.0.1 (local)
         2          1 node2, 10.1.0.2
         3          1 node3, 10.1.0.3
`},
		{"-i -a every address", three, Options{IPs: true, AllAddrs: true}, `
Membership information
----------------------
    Nodeid      Votes Name
         1          1 10.0.0.1, 10.1.0.1 (local)
         2          1 10.0.0.2, 10.1.0.2
         3          1 10.0.0.3, 10.1.0.3
`},
		{"no name: addresses, none: empty", func() Data {
			d := three()
			d.Members[1].Name = ""
			d.Members[2].Name = ""
			d.Members[2].Addrs = nil
			return d
		}, Options{AllAddrs: true}, `
Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1, 10.1.0.1 (local)
         2          1 10.0.0.2, 10.1.0.2
         3          1 
`},
		{"without votequorum: no votes or Qdevice column, no device row", func() Data {
			d := unordered()
			d.Provider = "corosync_quorum_other"
			d.Members[1].Err = cs.ErrNotExist
			return d
		}, Options{Parsable: true}, `
Membership information
----------------------
    Nodeid Name
         3 alpha
         1 charlie
         2 bravo (local)
`},
		{"wide numbers overflow the column", func() Data {
			d := three()
			d.Members = []Member{{NodeID: 4294967295, Name: "big", Votes: 2147483647}}
			return d
		}, Options{}, `
Membership information
----------------------
    Nodeid      Votes Name
4294967295 2147483647 big
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			List(&out, tt.d(), tt.o)
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s\ndiff: %s", show(got), show(tt.want), firstDiff(got, tt.want))
			}
		})
	}
}

func TestMonitorUpdate(t *testing.T) {
	var out, errOut bytes.Buffer
	d := three()
	if err := MonitorUpdate(&out, d, Options{Stderr: &errOut}); err != nil {
		t.Fatal(err)
	}
	var status bytes.Buffer
	Status(&status, d, Options{})
	if got, want := out.String(), status.String()+"\n"; got != want {
		t.Errorf("update:\n%s\nwant:\n%s", show(got), show(want))
	}

	// A not-quorate update does not stop the monitor.
	d.Quorate = false
	if err := MonitorUpdate(&out, d, Options{}); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	d.InfoErr = cs.ErrNotExist
	err := MonitorUpdate(&out, d, Options{Stderr: &errOut})
	if !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("err %v, want CS_ERR_NOT_EXIST", err)
	}
	if got, want := errOut.String(), "Unable to display quorum data: CS_ERR_NOT_EXIST\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if !strings.HasSuffix(out.String(), "node3\n\n") {
		t.Errorf("update does not end with the table and a blank line:\n%s", show(out.String()))
	}
	if MonitorNotConfigured != "\nQuorum is not configured - cannot monitor\n" {
		t.Errorf("MonitorNotConfigured = %q", MonitorNotConfigured)
	}
}

func TestJSON(t *testing.T) {
	issueExample := Data{
		NodeID: 1, RingRep: 1, RingSeq: 18, Quorate: true, Provider: ProviderVotequorum,
		Info: Info{NodeExpectedVotes: 4, HighestExpected: 4, TotalVotes: 3, Quorum: 3,
			Flags: infoQuorate | infoLastManStanding},
		AllNodes: []KnownNode{{NodeID: 1, Name: "node1", Votes: 1, Expected: 4, State: "member", Local: true}},
	}
	tests := []struct {
		name string
		d    Data
		want string
	}{
		{"issue example", issueExample,
			`{"node_id":1,"ring_id":{"rep":1,"seq":18},"quorate":true,"expected_votes":4,"highest_expected":4,"total_votes":3,"quorum":3,"flags":["Quorate","LastManStanding"],"wait_for_all_status":false,"nodes":[{"nodeid":1,"name":"node1","votes":1,"expected_votes":4,"state":"member","local":true}]}` + "\n"},
		{"empty lists are [], not null", Data{NodeID: 2, RingRep: 2, RingSeq: 1, WaitForAllStatus: true},
			`{"node_id":2,"ring_id":{"rep":2,"seq":1},"quorate":false,"expected_votes":0,"highest_expected":0,"total_votes":0,"quorum":0,"flags":[],"wait_for_all_status":true,"nodes":[]}` + "\n"},
		{"all flags, dead and leaving nodes sorted by id, names unescaped", Data{
			NodeID: 2, RingRep: 2, RingSeq: 0xffffffffffff, Quorate: false,
			Info: Info{NodeExpectedVotes: 5, HighestExpected: 5, TotalVotes: 2, Quorum: 3, Flags: 1023},
			AllNodes: []KnownNode{
				{NodeID: 3, Name: "n<3>&", Votes: 1, Expected: 5, State: "leaving"},
				{NodeID: 2, Name: "n2", Votes: 1, Expected: 5, State: "member", Local: true},
				{NodeID: 1, Name: `n"1"`, Votes: 1, Expected: 5, State: "dead"},
			},
		}, `{"node_id":2,"ring_id":{"rep":2,"seq":281474976710655},"quorate":false,"expected_votes":5,"highest_expected":5,"total_votes":2,"quorum":3,"flags":["2Node","Quorate","WaitForAll","LastManStanding","AutoTieBreaker","AllowDownscale","Qdevice","QdeviceAlive","QdeviceCastVote","QdeviceMasterWins"],"wait_for_all_status":false,"nodes":[{"nodeid":1,"name":"n\"1\"","votes":1,"expected_votes":5,"state":"dead","local":false},{"nodeid":2,"name":"n2","votes":1,"expected_votes":5,"state":"member","local":true},{"nodeid":3,"name":"n<3>&","votes":1,"expected_votes":5,"state":"leaving","local":false}]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := JSON(&out, tt.d); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s\ndiff: %s", got, tt.want, firstDiff(got, tt.want))
			}
		})
	}

	t.Run("getinfo failure", func(t *testing.T) {
		d := issueExample
		d.InfoErr = cs.ErrNotExist
		var out bytes.Buffer
		err := JSON(&out, d)
		if !errors.Is(err, cs.ErrNotExist) {
			t.Errorf("err %v, want CS_ERR_NOT_EXIST", err)
		}
		if out.Len() != 0 {
			t.Errorf("printed %q on error", out.String())
		}
	})
}

func TestFlagNames(t *testing.T) {
	tests := []struct {
		flags uint32
		want  string
	}{
		{0, ""},
		{infoQuorate | infoLastManStanding, "Quorate LastManStanding"},
		{infoQdeviceMasterWins | infoTwoNode, "2Node QdeviceMasterWins"},
		{1024 | 2048, ""}, // HEAD's HAS_EXTRA_INFO and unknown bits have no name
	}
	for _, tt := range tests {
		got := FlagNames(tt.flags)
		if got == nil || strings.Join(got, " ") != tt.want {
			t.Errorf("FlagNames(%d) = %#v, want %q", tt.flags, got, tt.want)
		}
	}
}

// show makes trailing spaces visible in a failure message.
func show(s string) string { return strings.ReplaceAll(s, " \n", "·\n") }

// firstDiff names the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, gl, wl)
		}
	}
	return "none"
}
