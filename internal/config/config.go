// Package config reads a Conclave configuration: either Conclave's native
// TOML or an unmodified corosync.conf, so a Corosync user can start the agent
// with the file they already have. Both formats produce the same *Config.
//
// The format is detected from the content (see Detect), never from the file
// name: /etc/corosync/corosync.conf and conclave.toml may be renamed freely.
//
// Parse reports every problem it finds at once, each as an *Error naming the
// file, the line and the dotted key (corosync's cmap spelling, e.g.
// nodelist.node.2.ring0_addr), joined with errors.Join. In a corosync.conf,
// keys that Corosync (2.x or 3.x) knows but Conclave does not use are
// accepted and reported as one-line warnings in Config.Warnings, so an
// operator sees what is being ignored; so are Corosync 1.x's amf, aisexec,
// service and event sections, one warning each. A key or section Corosync
// does not know is an error, as is every unknown key in TOML: a misspelt key
// would otherwise leave the cluster on defaults nobody chose.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Format is the syntax a configuration file was written in.
type Format int

const (
	// FormatTOML is Conclave's native format (key names follow corosync.conf).
	FormatTOML Format = iota
	// FormatCorosync is corosync.conf(5) syntax: `section {` … `}` blocks and
	// `key: value` lines.
	FormatCorosync
)

// String returns "toml" or "corosync.conf".
func (f Format) String() string {
	switch f {
	case FormatTOML:
		return "toml"
	case FormatCorosync:
		return "corosync.conf"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Defaults. Durations are what the corresponding key means when it is absent;
// every duration key in both formats is an integer number of milliseconds.
const (
	// DefaultToken is Conclave's token timeout. It is deliberately shorter
	// than Corosync's 3000 ms: Conclave detects failures faster by design,
	// and the heartbeat (token/8) keeps false suspicions rare.
	DefaultToken = 800 * time.Millisecond
	// DefaultTokenCoefficient is 0 (Corosync: 650 ms), so by default the
	// token does not grow with the cluster size.
	DefaultTokenCoefficient = 0
	// DefaultJoin is how long a node waits for join messages (corosync: 50 ms).
	DefaultJoin = 50 * time.Millisecond
	// DefaultNetMTU is the link MTU in bytes (corosync netmtu default).
	DefaultNetMTU = 1500
	// MinNetMTU and MaxNetMTU bound netmtu: 576 is the smallest MTU every
	// IPv4 host must accept, 65535 the largest IP datagram.
	MinNetMTU = 576
	MaxNetMTU = 65535
	// DefaultPort is the UDP port of a link whose totem.interface block does
	// not set mcastport (corosync default 5405).
	DefaultPort = 5405
	// MaxLinks is the number of links a node can have: ring0_addr..ring7_addr.
	MaxLinks = 8
	// DefaultFlapCount, DefaultFlapWindow and DefaultFlapHolddown: a link that
	// goes down FlapCount times within FlapWindow is held down for
	// FlapHolddown before it is used again (Conclave only).
	DefaultFlapCount    = 4
	DefaultFlapWindow   = 60 * time.Second
	DefaultFlapHolddown = 10 * time.Second
	// MinToken and MinJoin are the smallest accepted token and join timeouts.
	MinToken = 10 * time.Millisecond
	MinJoin  = time.Millisecond
	// DefaultClusterName is what corosync calls a cluster whose totem section
	// has no cluster_name. The TOML format requires the key.
	DefaultClusterName = "corosync"
	// DefaultCorosyncKeyFile is the key a corosync.conf with encryption uses
	// when totem.keyfile is absent (corosync's own default).
	DefaultCorosyncKeyFile = "/etc/corosync/authkey"
	// DefaultKeyFile is the key a TOML configuration with encryption uses when
	// totem.keyfile is absent (written by `conclave keygen`).
	DefaultKeyFile = "/etc/conclave/authkey"
	// QuorumProvider is the only accepted quorum.provider.
	QuorumProvider = "corosync_votequorum"
)

// Ciphers, Hashes and LogLevels are the accepted values of crypto_cipher,
// crypto_hash and agent.log_level, in the order messages list them.
var (
	Ciphers   = []string{"none", "aes256", "aes192", "aes128"}
	Hashes    = []string{"none", "md5", "sha1", "sha256", "sha384", "sha512"}
	LogLevels = []string{"debug", "info", "warn", "error"}
)

// Config is one parsed and validated configuration file.
type Config struct {
	Path        string // file the configuration was read from (messages only)
	Format      Format
	ClusterName string // totem.cluster_name; frames of other clusters are dropped
	Totem       Totem
	Nodes       []Node // nodelist.node, in file order
	Quorum      Quorum
	Crypto      Crypto
	// Agent holds Conclave-only settings (TOML [agent]). A corosync.conf's
	// uidgid{} sections map to AllowedUIDs/AllowedGIDs.
	Agent Agent
	// Warnings lists keys Corosync knows but Conclave ignores (one per key;
	// one per Corosync 1.x section), and other non-fatal notes.
	Warnings []*Error

	// lines maps every dotted key (and section) that was written in the file
	// to its line. It tells "absent" from "written as zero" when defaults are
	// applied and lets Validate name a line; a Config built in code has none.
	lines map[string]int
}

// Totem holds the membership protocol timing. All durations are written in
// the file as integer milliseconds.
type Totem struct {
	// Token is the token timeout: a node that has not been heard from for the
	// effective token (see EffectiveToken) is considered failed. Default
	// DefaultToken (800 ms; corosync's 3000 ms is deliberately not used).
	Token time.Duration
	// TokenCoefficient is added to Token for every node beyond two when the
	// nodelist has at least 3 nodes (corosync's formula). Default 0.
	TokenCoefficient time.Duration
	// Consensus is how long to wait for consensus before starting a new
	// membership round. Default 1.2 × the effective token.
	Consensus time.Duration
	// Join is how long to wait for join messages. Default DefaultJoin (50 ms).
	Join time.Duration
	// Heartbeat is the interval between liveness messages (Conclave only).
	// Default effective token / 8; must be below the effective token.
	Heartbeat time.Duration
	// NetMTU is the link MTU in bytes, MinNetMTU..MaxNetMTU. Default 1500.
	NetMTU int
	// FlapCount, FlapWindow, FlapHolddown: a link that goes down FlapCount
	// times within FlapWindow is not used again for FlapHolddown (Conclave
	// only). Defaults 4, 60 s, 10 s.
	FlapCount    int
	FlapWindow   time.Duration
	FlapHolddown time.Duration
	// Interfaces are the totem.interface blocks, merged by link number, in
	// file order. A link without a block uses DefaultPort.
	Interfaces []Interface
}

// Interface is one totem.interface block: the settings of one link.
type Interface struct {
	Link int    // linknumber, 0..MaxLinks-1 (corosync's older name: ringnumber)
	Port uint16 // mcastport, 1..65535; 0 = not written (DefaultPort)
}

// EffectiveToken is the token timeout for a cluster of the given number of
// nodes: Token + (nodes-2) × TokenCoefficient when nodes >= 3, else Token.
// This is corosync's runtime.config.totem.token.
func (t Totem) EffectiveToken(nodes int) time.Duration {
	if nodes >= 3 {
		return t.Token + time.Duration(nodes-2)*t.TokenCoefficient
	}
	return t.Token
}

// Node is one nodelist.node entry.
type Node struct {
	ID   uint32 // nodeid: required, unique, 0 is reserved
	Name string // name: unique; default "node<ID>"
	// Links holds ring0_addr..ring7_addr as written ("" = link not
	// configured): an IP literal, IP:port, [IPv6]:port, or a hostname (with
	// an optional :port) that Config.Resolve replaces by an address.
	Links       [MaxLinks]string
	QuorumVotes uint32 // quorum_votes, default 1
	Line        int    // line of the node's block, for messages

	// ports are the links' default ports (Config.LinkPort), copied in by
	// Parse so that Addr works on a Node on its own; 0 means DefaultPort.
	ports [MaxLinks]uint16
}

// Quorum is the quorum section. Pointers are nil when the key is absent: the
// quorum engine's defaults depend on presence (wait_for_all defaults to
// two_node only when it is not written).
type Quorum struct {
	Provider string // "" or QuorumProvider; anything else is an error

	ExpectedVotes *uint32 // overrides the sum of the nodes' quorum_votes
	Votes         *uint32 // deprecated by corosync; only meaningful without a nodelist

	// The quorum flags. In a corosync.conf they are u8 0/1 ("yes" is an
	// error, as in corosync); TOML also accepts true/false.
	TwoNode, WaitForAll, LastManStanding, AutoTieBreaker, AllowDownscale, ExpectedVotesTracking *bool

	// Lease is Conclave's quorum lease (docs/quorum.md): nil or true = on.
	// A corosync.conf has no such key; a TOML file may turn it off.
	Lease *bool

	// LastManStandingWindow is in ms in the file; nil = the engine's default
	// (10000 ms).
	LastManStandingWindow *time.Duration
	// AutoTieBreakerNode is kept as written ("lowest", "highest" or a list of
	// node ids such as "1 3 5"); the quorum engine validates it.
	AutoTieBreakerNode string
	Device             *Device // nil when there is no quorum.device section
	// Line maps each written quorum key, as its full dotted key (for example
	// "quorum.two_node", "quorum.device.votes", and "quorum" for the section
	// itself), to its line, so the quorum engine can report
	// "file:line: key: ..." for semantic problems it finds later.
	Line map[string]int
}

// Device is quorum.device, the settings of a quorum device (qdevice).
type Device struct {
	Model       string
	Votes       *uint32
	Timeout     *time.Duration // ms in the file
	SyncTimeout *time.Duration // ms in the file
	// Net and Heuristics are kept as strings: they belong to the qdevice
	// daemon, which interprets them.
	Net        map[string]string
	Heuristics map[string]string
}

// Crypto is the encryption of frames between nodes.
type Crypto struct {
	Cipher  string // crypto_cipher: one of Ciphers, "" = not said
	Hash    string // crypto_hash: one of Hashes, "" = not said
	KeyFile string // totem.keyfile; defaults to DefaultCorosyncKeyFile or DefaultKeyFile when a key is needed
}

// Cleartext reports whether the file explicitly turned encryption off:
// crypto_cipher "none" with crypto_hash "none" or absent (or corosync's
// secauth set to anything but "on", with neither). A file that says nothing
// about crypto is NOT cleartext: Conclave encrypts by default.
func (c Crypto) Cleartext() bool {
	return c.Cipher == "none" && (c.Hash == "none" || c.Hash == "")
}

// NeedsKey reports whether the agent must load a key file.
func (c Crypto) NeedsKey() bool { return !c.Cleartext() }

// Agent holds Conclave-only settings of the agent. Empty values mean: use the
// command line or the built-in default.
type Agent struct {
	Socket   string // client API socket path
	DataDir  string // per-node state directory
	LogLevel string // one of LogLevels
	// AllowedUIDs and AllowedGIDs may use the client API besides root (TOML
	// agent.allowed_uids/gids; corosync.conf uidgid{uid, gid}).
	AllowedUIDs, AllowedGIDs []uint32
}

// Error is one problem (or warning) in a configuration file.
type Error struct {
	File string
	Line int    // 1-based; 0 = not tied to a line
	Key  string // dotted key, e.g. "quorum.two_node"; "" = not tied to a key
	Msg  string
}

// Error formats the problem as "FILE:LINE: KEY: MSG", leaving out the line
// when it is 0 and the key when it is empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		} else {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
	}
	for _, s := range []string{e.Key, e.Msg} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses, defaults and validates a configuration in either format (see
// Detect). path is only used in messages. On failure the error joins one
// *Error per problem found.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, Detect(data))
}

// parse is Parse with the format given.
func parse(path string, data []byte, format Format) (*Config, error) {
	b := &builder{
		file:   path,
		format: format,
		cfg:    &Config{Path: path, Format: format, lines: map[string]int{}},
	}
	var ok bool
	if b.format == FormatCorosync {
		ok = b.readCorosync(data)
	} else {
		ok = b.readTOML(data)
	}
	if !ok { // the structure itself is broken: nothing more is reliable
		return nil, errors.Join(b.errs...)
	}
	b.finish()
	errs := b.errs
	if err := b.cfg.Validate(); err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			// A value that could not be converted was left at its zero value
			// or default; what validation says about it would mislead.
			if ce, ok := e.(*Error); !ok || !b.bad[ce.Key] {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b.cfg, nil
}

// Detect tells the format from the content. The first line that is neither
// blank nor a comment decides: a TOML table header (`[`…) or a `key = value`
// line (an `=` before any `:` or `{`) means TOML; anything else — `name {`,
// `key: value`, `}` — means corosync.conf. An empty file is TOML.
func Detect(data []byte) Format {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimLeft(line, " \t\r\ufeff")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			return FormatTOML
		}
		if i := bytes.IndexAny(line, "=:{}"); i >= 0 && line[i] == '=' {
			return FormatTOML
		}
		return FormatCorosync
	}
	return FormatTOML
}

// LinkPort is the port of link (totem.interface mcastport), DefaultPort when
// the link has no interface block or no mcastport.
func (c *Config) LinkPort(link int) uint16 {
	for _, in := range c.Totem.Interfaces {
		if in.Link == link && in.Port != 0 {
			return in.Port
		}
	}
	return DefaultPort
}

// LinkCount is the number of links the nodes configure. Validation ensures
// every node configures the same link numbers, so the first node decides.
func (c *Config) LinkCount() int {
	if len(c.Nodes) == 0 {
		return 0
	}
	n := 0
	for _, a := range c.Nodes[0].Links {
		if a != "" {
			n++
		}
	}
	return n
}

// NodeByID returns the node with the given nodeid.
func (c *Config) NodeByID(id uint32) (Node, bool) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// line is where key (or, failing that, its closest enclosing section) was
// written; 0 when unknown.
func (c *Config) line(key string) int {
	for key != "" {
		if l, ok := c.lines[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// has reports whether key was written in the file.
func (c *Config) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}
