package quorumtool

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Kind is the command a corosync-quorumtool command line asks for.
type Kind int

// The commands. KindStatus is the default when no command option is given.
const (
	KindStatus      Kind = iota // -s
	KindList                    // -l
	KindMonitor                 // -m
	KindSetVotes                // -v
	KindSetExpected             // -e
	KindUnregister              // -f
	KindVersion                 // -V
	KindHelp                    // -h
)

var kindNames = [...]string{"status", "list", "monitor", "setvotes", "setexpected", "unregister", "version", "help"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Command is a parsed corosync-quorumtool command line.
type Command struct {
	Kind     Kind
	Votes    uint32 // -v: 0..INT_MAX
	NodeID   uint32 // -n: 1..UINT_MAX; 0 = not given (the local node)
	Expected uint32 // -e: 1..INT_MAX
	Options  Options
}

// Target is the node -v changes: the -n node, or local when none was given.
func (c Command) Target(local uint32) uint32 {
	if c.NodeID != 0 {
		return c.NodeID
	}
	return local
}

// The value errors, with corosync-quorumtool's messages (spec §8.1). The
// tool prints the message to standard error and exits 1.
//
//lint:ignore ST1005 corosync-quorumtool's messages, verbatim (spec §8.1)
var (
	ErrBadVotes    = errors.New("New votes value was not valid, try a positive number or zero")
	ErrBadNodeID   = errors.New("The nodeid was not valid, try a positive number")
	ErrBadExpected = errors.New("New expected votes value was not valid, try a positive number")
	ErrBadOrder    = errors.New("Invalid ordering option. valid orders are a(address), i(node ID) or n(name)")
)

// UsageError is getopt's complaint about an unknown option or a missing
// option argument, in glibc's words ("invalid option -- 'x'"). The tool
// prints "<prog>: " and the message to standard error, then the usage
// text to standard output, and exits 1.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// quorumtoolOpts is corosync-quorumtool's getopt string (3.1.x; HEAD's
// W: X: C are not taken).
const quorumtoolOpts = "VHaslpmfe:v:hin:o:"

// ParseQuorumtool parses corosync-quorumtool's options (args without the
// program name) the way glibc getopt(3) would with the string
// "VHaslpmfe:v:hin:o:": options may be clustered (-sH), an option argument
// may be attached (-e3) or the next word (-e 3, even if that word starts
// with '-'), words that are not options are skipped (GNU permutation) and
// "--" ends the options. The last command option wins. Like the tool, it
// stops at the first -h, -V, bad value or unknown option, so "-h -x" is
// help and "-x -h" a usage error.
func ParseQuorumtool(args []string) (Command, error) {
	c := Command{Kind: KindStatus, Options: Options{Order: 'a'}}
	for i := 0; i < len(args); i++ {
		word := args[i]
		if word == "--" {
			break
		}
		if len(word) < 2 || word[0] != '-' {
			continue
		}
		for j := 1; j < len(word); j++ {
			ch := word[j]
			k := strings.IndexByte(quorumtoolOpts, ch)
			if ch == ':' || k < 0 {
				return c, &UsageError{Msg: "invalid option -- '" + string([]byte{ch}) + "'"}
			}
			var arg string
			hasArg := k+1 < len(quorumtoolOpts) && quorumtoolOpts[k+1] == ':'
			if hasArg {
				switch {
				case j+1 < len(word):
					arg = word[j+1:]
				case i+1 < len(args):
					i++
					arg = args[i]
				default:
					return c, &UsageError{Msg: "option requires an argument -- '" + string([]byte{ch}) + "'"}
				}
			}
			if err := c.apply(ch, arg); err != nil {
				return c, err
			}
			if c.Kind == KindHelp || c.Kind == KindVersion {
				return c, nil
			}
			if hasArg {
				break // the rest of the word was the argument
			}
		}
	}
	return c, nil
}

// apply records one option, as the tool's switch does.
func (c *Command) apply(ch byte, arg string) error {
	switch ch {
	case 'f':
		c.Kind = KindUnregister
	case 's':
		c.Kind = KindStatus
	case 'a':
		c.Options.AllAddrs = true
	case 'm':
		c.Kind = KindMonitor
	case 'i':
		c.Options.IPs = true
	case 'H':
		c.Options.Hex = true
	case 'l':
		c.Kind = KindList
	case 'p':
		c.Options.Parsable = true
	case 'e':
		v, ok := strtonum(arg, 1, math.MaxInt32)
		if !ok {
			return ErrBadExpected
		}
		c.Expected = uint32(v)
		c.Kind = KindSetExpected
	case 'n':
		v, ok := strtonum(arg, 1, math.MaxUint32)
		if !ok {
			return ErrBadNodeID
		}
		c.NodeID = uint32(v)
	case 'v':
		v, ok := strtonum(arg, 0, math.MaxInt32)
		if !ok {
			return ErrBadVotes
		}
		c.Votes = uint32(v)
		c.Kind = KindSetVotes
	case 'o':
		switch arg {
		case "a", "i", "n":
			c.Options.Order = arg[0]
		default:
			return ErrBadOrder
		}
	case 'V':
		c.Kind = KindVersion
	case 'h':
		c.Kind = KindHelp
	}
	return nil
}

// strtonum is corosync's util_strtonum: strtoll(s, &end, 10) must consume
// the whole word (leading white space and a sign allowed, nothing after
// the digits), not overflow, and land in [lo, hi].
func strtonum(s string, lo, hi int64) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	digits := t
	if digits != "" && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// RequireVotequorum is the tool's refusal of -v, -e and -f when
// provider is not corosync_votequorum (print it to standard error, exit 1);
// nil when the command may run.
func (c Command) RequireVotequorum(provider string) error {
	if provider == ProviderVotequorum {
		return nil
	}
	switch c.Kind {
	case KindSetVotes:
		return errVotesNeedVQ
	case KindSetExpected:
		return errExpectedNeedVQ
	case KindUnregister:
		return errUnregisterNeedVQ
	}
	return nil
}

//lint:ignore ST1005 corosync-quorumtool's messages, verbatim (spec §8.1)
var (
	errVotesNeedVQ      = errors.New("You cannot change node votes, corosync is not using votequorum")
	errExpectedNeedVQ   = errors.New("You cannot change expected votes, corosync is not using votequorum")
	errUnregisterNeedVQ = errors.New("You cannot unregister quorum device, corosync is not using votequorum")
)

// Failure is the line the tool prints to standard error when the -v, -e or
// -f call fails with err (exit 1); local is the node -v changes when no -n
// was given. "" for other commands.
func (c Command) Failure(local uint32, err error) string {
	switch c.Kind {
	case KindSetVotes:
		return fmt.Sprintf("Unable to set votes %d for nodeid: %d: %s", c.Votes, c.Target(local), strerror(err))
	case KindSetExpected:
		return fmt.Sprintf("Unable to set expected votes: %s", strerror(err))
	case KindUnregister:
		return fmt.Sprintf("Unable to unregister quorum device: %s", strerror(err))
	}
	return ""
}

// Usage prints the help text for corosync-quorumtool's options; prog is
// the name to show ("conclave quorumtool").
func Usage(w io.Writer, prog string) {
	fmt.Fprintf(w, `usage: %s [options]

Show or change the quorum of the local node's cluster. Without a command
option the status is shown (-s).

  commands:
  -s             show the quorum status; exit 0 quorate, 2 not quorate
  -m             show the quorum status again after every change
  -l             list the member nodes
  -v <votes>     give a node this many votes (*)
  -n <nodeid>    the node -v changes (default: this node)
  -e <expected>  set the cluster's expected votes (*)
  -f             unregister this node's quorum device; dangerous (*)
  -h             show this help
  -V             show the version

  display:
  -H             node ids in hexadecimal
  -i             node addresses instead of names
  -a             every name or address of a node, not only the first
  -o <a|n|i>     order nodes by address (the default), name or node id
  -p             always show the Qdevice column (-s, -l)

  (*) only when the quorum provider is corosync_votequorum
`, prog)
}
