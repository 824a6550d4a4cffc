package quorumtool

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/conclave/conclave/cs"
)

func TestParseQuorumtool(t *testing.T) {
	def := Options{Order: 'a'}
	cmd := func(k Kind) Command { return Command{Kind: k, Options: def} }
	with := func(c Command, f func(*Command)) Command { f(&c); return c }
	tests := []struct {
		args string // split on spaces; "''" is an empty word
		want Command
		err  string
	}{
		// Commands; status is the default; the last one wins.
		{args: "", want: cmd(KindStatus)},
		{args: "-s", want: cmd(KindStatus)},
		{args: "-l", want: cmd(KindList)},
		{args: "-m", want: cmd(KindMonitor)},
		{args: "-f", want: cmd(KindUnregister)},
		{args: "-l -s", want: cmd(KindStatus)},
		{args: "-s -l", want: cmd(KindList)},
		{args: "-ls", want: cmd(KindStatus)},
		{args: "-e 3 -l", want: with(cmd(KindList), func(c *Command) { c.Expected = 3 })},
		{args: "-e 3 -v 2", want: with(cmd(KindSetVotes), func(c *Command) { c.Expected, c.Votes = 3, 2 })},
		{args: "-v 2 -e 3", want: with(cmd(KindSetExpected), func(c *Command) { c.Expected, c.Votes = 3, 2 })},

		// Display options, clustered or not.
		{args: "-sH", want: with(cmd(KindStatus), func(c *Command) { c.Options.Hex = true })},
		{args: "-Hiap", want: with(cmd(KindStatus), func(c *Command) {
			c.Options = Options{Hex: true, IPs: true, AllAddrs: true, Parsable: true, Order: 'a'}
		})},
		{args: "-l -o n", want: with(cmd(KindList), func(c *Command) { c.Options.Order = 'n' })},
		{args: "-loi", want: with(cmd(KindList), func(c *Command) { c.Options.Order = 'i' })},
		{args: "-o i -o a", want: cmd(KindStatus)},

		// Option arguments: attached, next word, next word starting with '-'.
		{args: "-e3", want: with(cmd(KindSetExpected), func(c *Command) { c.Expected = 3 })},
		{args: "-e 3", want: with(cmd(KindSetExpected), func(c *Command) { c.Expected = 3 })},
		{args: "-He3", want: with(cmd(KindSetExpected), func(c *Command) { c.Expected = 3; c.Options.Hex = true })},
		{args: "-v0", want: cmd(KindSetVotes)},
		{args: "-v 2 -n 5", want: with(cmd(KindSetVotes), func(c *Command) { c.Votes, c.NodeID = 2, 5 })},
		{args: "-n5 -v2", want: with(cmd(KindSetVotes), func(c *Command) { c.Votes, c.NodeID = 2, 5 })},
		{args: "-n 4294967295", want: with(cmd(KindStatus), func(c *Command) { c.NodeID = 4294967295 })},
		{args: "-e 2147483647", want: with(cmd(KindSetExpected), func(c *Command) { c.Expected = 2147483647 })},
		{args: "-o -l", err: ErrBadOrder.Error()},
		{args: "-e -1", err: ErrBadExpected.Error()},
		{args: "-v -0", want: cmd(KindSetVotes)},
		{args: "-v +7", want: with(cmd(KindSetVotes), func(c *Command) { c.Votes = 7 })},
		{args: "-e", err: "option requires an argument -- 'e'"},
		{args: "-l -o", err: "option requires an argument -- 'o'"},
		{args: "-sn", err: "option requires an argument -- 'n'"},

		// Non-options are skipped (GNU permutation); "--" ends the options.
		{args: "foo -l bar", want: cmd(KindList)},
		{args: "- -l", want: cmd(KindList)},
		{args: "'' -l", want: cmd(KindList)},
		{args: "-l -- -s", want: cmd(KindList)},
		{args: "-l -- -x", want: cmd(KindList)},

		// Unknown options, including long ones, ':' and HEAD's -W -X -C.
		{args: "-x", err: "invalid option -- 'x'"},
		{args: "-sx", err: "invalid option -- 'x'"},
		{args: "--status", err: "invalid option -- '-'"},
		{args: "-:", err: "invalid option -- ':'"},
		{args: "-W q", err: "invalid option -- 'W'"},
		{args: "-C", err: "invalid option -- 'C'"},

		// -h and -V end parsing at once, whatever follows; what comes
		// before them is still checked.
		{args: "-h", want: cmd(KindHelp)},
		{args: "-V", want: cmd(KindVersion)},
		{args: "-h -x", want: cmd(KindHelp)},
		{args: "-hx", want: cmd(KindHelp)},
		{args: "-V -e 0", want: cmd(KindVersion)},
		{args: "-x -h", err: "invalid option -- 'x'"},
		{args: "-e 0 -V", err: ErrBadExpected.Error()},

		// Bad values, with the tool's messages.
		{args: "-v -1", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v x", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v 2147483648", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v 1x", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v 0x10", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v ''", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-v +", err: "New votes value was not valid, try a positive number or zero"},
		{args: "-n 0", err: "The nodeid was not valid, try a positive number"},
		{args: "-n -1", err: "The nodeid was not valid, try a positive number"},
		{args: "-n 4294967296", err: "The nodeid was not valid, try a positive number"},
		{args: "-n 99999999999999999999", err: "The nodeid was not valid, try a positive number"},
		{args: "-e 0", err: "New expected votes value was not valid, try a positive number"},
		{args: "-e 2147483648", err: "New expected votes value was not valid, try a positive number"},
		{args: "-e abc", err: "New expected votes value was not valid, try a positive number"},
		{args: "-o x", err: "Invalid ordering option. valid orders are a(address), i(node ID) or n(name)"},
		{args: "-o nn", err: "Invalid ordering option. valid orders are a(address), i(node ID) or n(name)"},
		{args: "-o ''", err: "Invalid ordering option. valid orders are a(address), i(node ID) or n(name)"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			var args []string
			if tt.args != "" {
				args = strings.Split(tt.args, " ")
			}
			for i, a := range args {
				if a == "''" {
					args[i] = ""
				}
			}
			got, err := ParseQuorumtool(args)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseQuorumtoolWhitespace(t *testing.T) {
	// strtoll skips leading white space but util_strtonum refuses anything
	// after the digits.
	c, err := ParseQuorumtool([]string{"-e", " \t3"})
	if err != nil || c.Kind != KindSetExpected || c.Expected != 3 {
		t.Errorf("got %+v, %v", c, err)
	}
	if _, err := ParseQuorumtool([]string{"-e", "3 "}); !errors.Is(err, ErrBadExpected) {
		t.Errorf("trailing space: err %v", err)
	}
	if _, err := ParseQuorumtool([]string{"-v", "- 3"}); !errors.Is(err, ErrBadVotes) {
		t.Errorf("space after the sign: err %v", err)
	}
}

func TestParseErrorKinds(t *testing.T) {
	_, err := ParseQuorumtool([]string{"-q"})
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Errorf("-q: %T is not a *UsageError", err)
	}
	for args, want := range map[string]error{
		"-v -1": ErrBadVotes, "-n 0": ErrBadNodeID, "-e 0": ErrBadExpected, "-o z": ErrBadOrder,
	} {
		_, err := ParseQuorumtool(strings.Split(args, " "))
		if !errors.Is(err, want) {
			t.Errorf("%s: err %v, want %v", args, err, want)
		}
		if errors.As(err, &ue) {
			t.Errorf("%s: a value error is a *UsageError", args)
		}
	}
}

func TestKindString(t *testing.T) {
	var got []string
	for k := KindStatus; k <= KindHelp+1; k++ {
		got = append(got, k.String())
	}
	if want := "status list monitor setvotes setexpected unregister version help Kind(8)"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
}

func TestRequireVotequorum(t *testing.T) {
	tests := []struct {
		kind     Kind
		provider string
		want     string
	}{
		{KindSetVotes, "", "You cannot change node votes, corosync is not using votequorum"},
		{KindSetExpected, "other", "You cannot change expected votes, corosync is not using votequorum"},
		{KindUnregister, "", "You cannot unregister quorum device, corosync is not using votequorum"},
		{KindStatus, "", ""},
		{KindList, "", ""},
		{KindSetVotes, ProviderVotequorum, ""},
		{KindUnregister, ProviderVotequorum, ""},
	}
	for _, tt := range tests {
		err := Command{Kind: tt.kind}.RequireVotequorum(tt.provider)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%v under %q: %q, want %q", tt.kind, tt.provider, got, tt.want)
		}
	}
}

func TestFailure(t *testing.T) {
	tests := []struct {
		c    Command
		err  error
		want string
	}{
		{Command{Kind: KindSetVotes, Votes: 2}, cs.ErrInvalidParam, "Unable to set votes 2 for nodeid: 7: CS_ERR_INVALID_PARAM"},
		{Command{Kind: KindSetVotes, Votes: 0, NodeID: 3}, cs.ErrNotExist, "Unable to set votes 0 for nodeid: 3: CS_ERR_NOT_EXIST"},
		{Command{Kind: KindSetExpected, Expected: 1}, fmt.Errorf("setexpected: %w", cs.ErrInvalidParam), "Unable to set expected votes: CS_ERR_INVALID_PARAM"},
		{Command{Kind: KindUnregister}, cs.ErrNotExist, "Unable to unregister quorum device: CS_ERR_NOT_EXIST"},
		{Command{Kind: KindStatus}, cs.ErrNotExist, ""},
	}
	for _, tt := range tests {
		if got := tt.c.Failure(7, tt.err); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	Usage(&out, "conclave quorumtool")
	got := out.String()
	if !strings.HasPrefix(got, "usage: conclave quorumtool [options]\n") {
		t.Errorf("usage starts %q", strings.SplitN(got, "\n", 2)[0])
	}
	// Every option of the getopt string is described, with its argument.
	for _, opt := range []string{"-s ", "-m ", "-l ", "-a ", "-p ", "-v <votes>", "-n <nodeid>",
		"-e <expected>", "-H ", "-i ", "-o <a|n|i>", "-f ", "-h ", "-V "} {
		if !strings.Contains(got, "\n  "+opt) {
			t.Errorf("usage does not describe %q:\n%s", opt, got)
		}
	}
}
