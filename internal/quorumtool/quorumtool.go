// Package quorumtool prints what corosync-quorumtool prints and parses the
// options it takes, so `conclave quorumtool` runs existing scripts unchanged
// and `conclave quorum status` shows an operator the screen they know.
//
// The package is pure: the caller gathers a Data (from the agent, the
// configuration and the clock) and the functions here only format it to an
// io.Writer. Nothing here dials, resolves names or reads the time, so every
// layout rule of spec §8 is a golden-string test.
package quorumtool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/conclave/conclave/cs"
)

// ProviderVotequorum is the quorum.provider value under which
// corosync-quorumtool shows (and may change) the votequorum numbers. Under
// any other provider -s stops after the Quorate line.
const ProviderVotequorum = "corosync_votequorum"

// The votequorum_info flags (spec §3, VOTEQUORUM_INFO_*); C values.
const (
	infoTwoNode           = 1
	infoQuorate           = 2
	infoWaitForAll        = 4
	infoLastManStanding   = 8
	infoAutoTieBreaker    = 16
	infoAllowDownscale    = 32
	infoQdeviceRegistered = 64
	infoQdeviceAlive      = 128
	infoQdeviceCastVote   = 256
	infoQdeviceMasterWins = 512
)

// flagNames are the names of the flags in the order the tool prints them.
// The -s Flags line stops after Qdevice; --json uses all ten.
var flagNames = []struct {
	bit  uint32
	name string
}{
	{infoTwoNode, "2Node"},
	{infoQuorate, "Quorate"},
	{infoWaitForAll, "WaitForAll"},
	{infoLastManStanding, "LastManStanding"},
	{infoAutoTieBreaker, "AutoTieBreaker"},
	{infoAllowDownscale, "AllowDownscale"},
	{infoQdeviceRegistered, "Qdevice"},
	{infoQdeviceAlive, "QdeviceAlive"},
	{infoQdeviceCastVote, "QdeviceCastVote"},
	{infoQdeviceMasterWins, "QdeviceMasterWins"},
}

// statusFlags is how many of flagNames the -s Flags line shows.
const statusFlags = 7

// ctimeLayout is ctime(3)'s format without its newline: the day of the
// month is padded with a space ("Sat Nov  1 09:05:00 2026").
const ctimeLayout = "Mon Jan _2 15:04:05 2006"

// Info is the local node's votequorum_info (spec §3), as getinfo(0)
// returns it.
type Info struct {
	NodeState         uint32
	NodeVotes         uint32
	NodeExpectedVotes uint32
	HighestExpected   uint32
	TotalVotes        uint32
	Quorum            uint32
	Flags             uint32 // VOTEQUORUM_INFO_* bits
	QdeviceVotes      uint32 // the cluster-wide device vote count
	QdeviceName       string // the locally registered device, "" if none
}

// Member is one entry of the libquorum member list with what the table
// shows about it.
type Member struct {
	NodeID uint32
	// Name is the nodelist name (nodelist.node.X.name), or whatever name
	// the caller resolved for the node's first address; "" prints the
	// first address instead. It stands for link 0: with -a the remaining
	// addresses follow it.
	Name string
	// Addrs are the node's link addresses in link order, as printed (the
	// caller decides numeric or resolved).
	Addrs []string
	// Votes and Flags are that node's getinfo node_votes and flags
	// (VOTEQUORUM_INFO_* bits). Both are taken as 0 when Err is set: the
	// daemon leaves the struct unset on failure and spec §11.2 asks us to
	// zero it.
	Votes uint32
	Flags uint32
	// Err is that node's getinfo failure; the table then prints
	// "Unable to get node <id> info" above itself.
	Err error
}

// KnownNode is one node of the local node table, dead and leaving nodes
// included, for --json.
type KnownNode struct {
	NodeID   uint32
	Name     string
	Votes    uint32
	Expected uint32
	State    string // "member", "dead" or "leaving"
	Local    bool
}

// Data is everything -s, -l, -m and --json print. The caller fills it; the
// functions here never ask anyone anything.
type Data struct {
	Date     time.Time // printed as ctime(3) prints it, in Date's location
	Provider string    // quorum.provider; "" = not configured
	Quorate  bool      // libquorum's view: the Quorate line and the exit code
	RingRep  uint32    // ring id representative (votequorum nodelist event)
	RingSeq  uint64    // ring id sequence (libquorum)
	NodeID   uint32    // the local node
	Info     Info      // getinfo of the local node
	// InfoErr is the local getinfo failure. cs.ErrNotExist still prints the
	// votequorum block (from Info, which should then be zero) but -s exits
	// 1; any other error prints "Unable to get node info: …" to
	// Options.Stderr instead of the block, still prints the membership
	// table, and -s exits 1.
	InfoErr          error
	WaitForAllStatus bool
	// Members is the libquorum member list, in its order (corosync's
	// "address" order, the -o a order).
	Members []Member
	// AllNodes is every node votequorum knows, for --json.
	AllNodes []KnownNode
}

// votequorum reports whether the votequorum blocks are shown at all.
func (d *Data) votequorum() bool { return d.Provider == ProviderVotequorum }

// Options are the display options of corosync-quorumtool.
type Options struct {
	Hex      bool // -H: node ids as 0x%08x
	IPs      bool // -i: addresses instead of names
	AllAddrs bool // -a: every address of a node, not only the first
	Order    byte // -o: 'a' (as listed; also 0), 'i' node id, 'n' name
	Parsable bool // -p: always print the Qdevice column
	// Stderr receives the lines corosync-quorumtool writes to standard
	// error ("Unable to get node info: …"); nil discards them.
	// ParseQuorumtool leaves it nil.
	Stderr io.Writer
}

// ExitCode is the -s exit status for d: 0 quorate, 2 not quorate, 1 when
// the local getinfo failed (only looked at under votequorum). Quorate is
// libquorum's view, as in corosync-quorumtool.
func ExitCode(d Data) int {
	if d.votequorum() && d.InfoErr != nil {
		return 1
	}
	if d.Quorate {
		return 0
	}
	return 2
}

// Status prints the -s block and returns the exit status (see ExitCode).
func Status(w io.Writer, d Data, o Options) (exit int) {
	var b strings.Builder
	b.WriteString("Quorum information\n")
	b.WriteString("------------------\n")
	fmt.Fprintf(&b, "Date:             %s\n", d.Date.Format(ctimeLayout))
	provider := d.Provider
	if provider == "" {
		provider = "Not configured"
	}
	fmt.Fprintf(&b, "Quorum provider:  %s\n", provider)
	fmt.Fprintf(&b, "Nodes:            %d\n", len(d.Members))
	fmt.Fprintf(&b, "Node ID:          %s\n", nodeIDText(d.NodeID, o.Hex))
	if d.votequorum() {
		fmt.Fprintf(&b, "Ring ID:          %x.%x\n", d.RingRep, d.RingSeq)
	} else {
		fmt.Fprintf(&b, "Ring ID:          %x\n", d.RingSeq)
	}
	fmt.Fprintf(&b, "Quorate:          %s\n", yesNo(d.Quorate))
	if !d.votequorum() {
		io.WriteString(w, b.String())
		return ExitCode(d)
	}

	if d.InfoErr == nil || errors.Is(d.InfoErr, cs.ErrNotExist) {
		in := d.Info
		b.WriteString("\nVotequorum information\n")
		b.WriteString("----------------------\n")
		// The C tool prints these unsigned fields with %d.
		fmt.Fprintf(&b, "Expected votes:   %d\n", int32(in.NodeExpectedVotes))
		fmt.Fprintf(&b, "Highest expected: %d\n", int32(in.HighestExpected))
		fmt.Fprintf(&b, "Total votes:      %d\n", int32(in.TotalVotes))
		blocked := "Activity blocked"
		if in.Flags&infoQuorate != 0 {
			blocked = " "
		}
		fmt.Fprintf(&b, "Quorum:           %d %s\n", int32(in.Quorum), blocked)
		b.WriteString("Flags:            ")
		for _, f := range flagNames[:statusFlags] {
			if in.Flags&f.bit != 0 {
				b.WriteString(f.name)
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	} else {
		// Flush first so a terminal shows the message where the C tool's
		// line-buffered stdout would have put it.
		io.WriteString(w, b.String())
		b.Reset()
		if o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "Unable to get node info: %s\n", strerror(d.InfoErr))
		}
	}
	writeMembers(&b, d, o)
	io.WriteString(w, b.String())
	return ExitCode(d)
}

// List prints the -l output: the membership table, starting with its
// blank line. corosync-quorumtool -l exits 0 even when a node's getinfo
// failed.
func List(w io.Writer, d Data, o Options) {
	var b strings.Builder
	writeMembers(&b, d, o)
	io.WriteString(w, b.String())
}

// MonitorNotConfigured is what -m prints when no quorum provider is
// configured; it then prints one Status and exits with its status.
const MonitorNotConfigured = "\nQuorum is not configured - cannot monitor\n"

// MonitorUpdate prints one -m update: the Status block and an empty line.
// A non-nil result means the monitor stops and exits 1 (the local getinfo
// failed); "Unable to display quorum data: …" has then gone to o.Stderr.
func MonitorUpdate(w io.Writer, d Data, o Options) error {
	Status(w, d, o)
	io.WriteString(w, "\n")
	if !d.votequorum() || d.InfoErr == nil {
		return nil
	}
	if o.Stderr != nil {
		fmt.Fprintf(o.Stderr, "Unable to display quorum data: %s\n", strerror(d.InfoErr))
	}
	return d.InfoErr
}

// row is one line of the membership table, with its cells worked out.
type row struct {
	m     Member
	name  string
	votes uint32
	flags uint32
}

// writeMembers prints the membership table (spec §8.2), which is also the
// whole of -l.
func writeMembers(b *strings.Builder, d Data, o Options) {
	vq := d.votequorum()
	rows := make([]row, len(d.Members))
	showQdevice := false
	for i, m := range d.Members {
		r := row{m: m, name: nameCell(m, o)}
		if vq {
			if m.Err != nil {
				fmt.Fprintf(b, "Unable to get node %d info\n", m.NodeID)
			} else {
				r.votes, r.flags = m.Votes, m.Flags
			}
			if r.flags&infoQdeviceRegistered != 0 {
				showQdevice = true
			}
		}
		rows[i] = r
	}

	b.WriteString("\nMembership information\n")
	b.WriteString("----------------------\n")
	b.WriteString(padded("Nodeid"))
	if vq {
		b.WriteString(padded("Votes"))
		if showQdevice || o.Parsable {
			b.WriteString(padded("Qdevice"))
		}
	}
	b.WriteString("Name\n")

	// Upstream sorts only its name/id array and then prints the votes and
	// Qdevice cells from the unsorted getinfo array, so with -o i or -o n
	// they can sit on the wrong node's line (spec §8.2). We sort whole rows
	// and print each node's own votes and flags: a deliberate fix, listed in
	// docs/quorum.md. Stable sorts keep the member-list order among ties.
	switch o.Order {
	case 'i':
		slices.SortStableFunc(rows, func(x, y row) int { return cmpUint32(x.m.NodeID, y.m.NodeID) })
	case 'n':
		// strcmp of the printed name column, as upstream (so with -i it is
		// the address text).
		slices.SortStableFunc(rows, func(x, y row) int { return strings.Compare(x.name, y.name) })
	}

	var localFlags uint32
	for _, r := range rows {
		b.WriteString(idCell(r.m.NodeID, o.Hex))
		if vq {
			b.WriteString(padded(fmt.Sprint(r.votes)))
			if showQdevice || o.Parsable {
				b.WriteString(padded(qdeviceCell(r.flags)))
			}
		}
		b.WriteString(r.name)
		if r.m.NodeID == d.NodeID {
			b.WriteString(" (local)")
			localFlags = r.flags
		}
		b.WriteByte('\n')
	}

	if !showQdevice {
		return
	}
	// The device row. Its votes count only if the local node's device casts
	// a vote; otherwise 0 is shown, with the real number after the name.
	// Upstream reads the device fields from the first member's getinfo;
	// the daemon fills them from its own (local) device state whichever
	// node is asked, so the local Info carries the same values.
	b.WriteString(idCell(0, o.Hex))
	casting := localFlags&infoQdeviceCastVote != 0
	if casting {
		b.WriteString(padded(fmt.Sprint(d.Info.QdeviceVotes)))
	} else {
		b.WriteString(padded("0"))
	}
	b.WriteString("           ")
	b.WriteString(d.Info.QdeviceName)
	if !casting {
		fmt.Fprintf(b, " (votes %d)", int32(d.Info.QdeviceVotes))
	}
	b.WriteByte('\n')
}

// nameCell is the Name column: corosync-quorumtool's node_name(). With
// names, the nodelist name stands for the first address and -a appends
// the others; with -i (or without a name) the addresses are listed from
// the first. Entries are joined with ", ".
func nameCell(m Member, o Options) string {
	var parts []string
	start := 0
	if !o.IPs && m.Name != "" {
		parts = append(parts, m.Name)
		start = 1
	}
	n := len(m.Addrs)
	if !o.AllAddrs && n > 1 {
		n = 1
	}
	for i := start; i < n; i++ {
		parts = append(parts, m.Addrs[i])
	}
	return strings.Join(parts, ", ")
}

// qdeviceCell is the Qdevice column of one node: NR, or the three
// alive / casting a vote / master wins states.
func qdeviceCell(flags uint32) string {
	if flags&infoQdeviceRegistered == 0 {
		return "NR"
	}
	return pick(flags&infoQdeviceAlive != 0, "A", "NA") + "," +
		pick(flags&infoQdeviceCastVote != 0, "V", "NV") + "," +
		pick(flags&infoQdeviceMasterWins != 0, "MW", "NMW")
}

// padded right-aligns s in 10 columns and adds one space (longer strings
// are not cut), as print_string_padded does.
func padded(s string) string { return fmt.Sprintf("%10s ", s) }

// idCell is a node id cell of the table.
func idCell(id uint32, hex bool) string {
	if hex {
		return fmt.Sprintf("0x%08x ", id)
	}
	return padded(fmt.Sprint(id))
}

func nodeIDText(id uint32, hex bool) string {
	if hex {
		return fmt.Sprintf("0x%08x", id)
	}
	return fmt.Sprint(id)
}

func yesNo(v bool) string { return pick(v, "Yes", "No") }

func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// strerror is cs_strerror's text for a cs.Error anywhere in err's chain,
// and err's own text for anything else (a broken connection says more than
// CS_ERR_LIBRARY would).
func strerror(err error) string {
	var e cs.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// The --json shape. Field order is part of the interface: fields may be
// appended at the end of an object, never inserted or renamed.
type jsonStatus struct {
	NodeID           uint32     `json:"node_id"`
	RingID           jsonRingID `json:"ring_id"`
	Quorate          bool       `json:"quorate"`
	ExpectedVotes    uint32     `json:"expected_votes"`
	HighestExpected  uint32     `json:"highest_expected"`
	TotalVotes       uint32     `json:"total_votes"`
	Quorum           uint32     `json:"quorum"`
	Flags            []string   `json:"flags"`
	WaitForAllStatus bool       `json:"wait_for_all_status"`
	Nodes            []jsonNode `json:"nodes"`
}

type jsonRingID struct {
	Rep uint32 `json:"rep"`
	Seq uint64 `json:"seq"`
}

type jsonNode struct {
	NodeID        uint32 `json:"nodeid"`
	Name          string `json:"name"`
	Votes         uint32 `json:"votes"`
	ExpectedVotes uint32 `json:"expected_votes"`
	State         string `json:"state"`
	Local         bool   `json:"local"`
}

// FlagNames lists the names of the VOTEQUORUM_INFO_* bits set in flags, in
// corosync-quorumtool's order, the Qdevice states last. Never nil.
func FlagNames(flags uint32) []string {
	names := []string{}
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return names
}

// JSON prints the --json status as one line:
//
//	{"node_id":1,"ring_id":{"rep":1,"seq":18},"quorate":true,"expected_votes":4,"highest_expected":4,"total_votes":3,"quorum":3,"flags":["Quorate","LastManStanding"],"wait_for_all_status":false,"nodes":[{"nodeid":1,"name":"node1","votes":1,"expected_votes":4,"state":"member","local":true}]}
//
// quorate is libquorum's view (the Quorate line of -s); flags and the
// numbers are the local getinfo; nodes are AllNodes sorted by node id. If
// the local getinfo failed nothing is printed and the error is returned:
// its numbers would mean nothing.
func JSON(w io.Writer, d Data) error {
	if d.InfoErr != nil {
		return fmt.Errorf("unable to get node info: %w", d.InfoErr)
	}
	nodes := make([]jsonNode, 0, len(d.AllNodes))
	for _, n := range d.AllNodes {
		nodes = append(nodes, jsonNode{
			NodeID: n.NodeID, Name: n.Name, Votes: n.Votes,
			ExpectedVotes: n.Expected, State: n.State, Local: n.Local,
		})
	}
	slices.SortStableFunc(nodes, func(x, y jsonNode) int { return cmpUint32(x.NodeID, y.NodeID) })
	v := jsonStatus{
		NodeID:           d.NodeID,
		RingID:           jsonRingID{Rep: d.RingRep, Seq: d.RingSeq},
		Quorate:          d.Quorate,
		ExpectedVotes:    d.Info.NodeExpectedVotes,
		HighestExpected:  d.Info.HighestExpected,
		TotalVotes:       d.Info.TotalVotes,
		Quorum:           d.Info.Quorum,
		Flags:            FlagNames(d.Info.Flags),
		WaitForAllStatus: d.WaitForAllStatus,
		Nodes:            nodes,
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
