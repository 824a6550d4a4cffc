package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Validate checks the rules both formats share and returns every problem as
// an *Error joined with errors.Join, or nil. Parse calls it after applying
// defaults; call it again after changing a Config in code (Resolve does).
// It does not apply defaults: a zero Totem fails it.
func (c *Config) Validate() error {
	v := validation{c: c}
	v.cluster()
	v.nodes()
	v.totem()
	v.crypto()
	if p := c.Quorum.Provider; p != "" && p != QuorumProvider {
		v.errorf("quorum.provider", "Invalid quorum provider %q: only %s is supported", p, QuorumProvider)
	}
	if l := c.Agent.LogLevel; l != "" && !slices.Contains(LogLevels, l) {
		v.errorf("agent.log_level", "invalid value %q: must be one of %s", l, strings.Join(LogLevels, ", "))
	}
	return errors.Join(v.errs...)
}

type validation struct {
	c    *Config
	errs []error
}

func (v *validation) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.c.Path, Line: v.c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validation) cluster() {
	if v.c.ClusterName != "" {
		return
	}
	if v.c.has("totem.cluster_name") {
		v.errorf("totem.cluster_name", "must not be empty")
	} else {
		v.errorf("totem.cluster_name", "missing (required)")
	}
}

func nodeKey(i int) string { return fmt.Sprintf("nodelist.node.%d", i) }

func linkKey(i, link int) string { return fmt.Sprintf("nodelist.node.%d.ring%d_addr", i, link) }

func (v *validation) nodes() {
	c := v.c
	if len(c.Nodes) == 0 {
		v.errorf("nodelist", "at least one node is required")
		return
	}
	ids := map[uint32]int{}
	names := map[string]int{}
	addrs := map[string]int{} // link + normalized address -> node index
	for i, n := range c.Nodes {
		key := nodeKey(i)
		switch {
		case n.ID == 0 && c.has(key+".nodeid"):
			v.errorf(key+".nodeid", "nodeid 0 is reserved")
		case n.ID == 0:
			v.errorf(key+".nodeid", "missing (required)")
		default:
			if j, dup := ids[n.ID]; dup {
				v.errorf(key+".nodeid", "duplicate nodeid %d (also %s)", n.ID, v.nodeRef(j))
			} else {
				ids[n.ID] = i
			}
		}
		_, dupID := ids[n.ID]
		switch {
		case n.Name == "" && n.ID != 0:
			v.errorf(key+".name", "must not be empty")
		case dupID && ids[n.ID] != i && n.Name == fmt.Sprintf("node%d", n.ID):
			// The default name of a duplicate nodeid: already reported.
		case n.Name != "":
			if j, dup := names[n.Name]; dup {
				v.errorf(key+".name", "duplicate name %q (also %s)", n.Name, v.nodeRef(j))
			} else {
				names[n.Name] = i
			}
		}
		if n.Links[0] == "" {
			v.errorf(key+".ring0_addr", "missing (required)")
		}
		if i > 0 && linkSet(n) != linkSet(c.Nodes[0]) {
			v.errorf(key, "configures links %s but %s configures links %s: every node must configure the same links",
				linkSet(n), nodeKey(0), linkSet(c.Nodes[0]))
		}
		for link, s := range n.Links {
			if s == "" {
				continue
			}
			a, err := parseRingAddr(s)
			if err != nil {
				v.errorf(linkKey(i, link), "invalid address %q: %v", s, err)
				continue
			}
			id := fmt.Sprintf("%d/%s", link, a.normalized(c.LinkPort(link)))
			if j, dup := addrs[id]; dup {
				v.errorf(linkKey(i, link), "address %q is also used by %s on link %d", s, nodeKey(j), link)
			} else {
				addrs[id] = i
			}
		}
	}
}

// nodeRef names node j for a message: its key, and its line when known.
func (v *validation) nodeRef(j int) string {
	if l := v.c.Nodes[j].Line; l > 0 {
		return fmt.Sprintf("%s, line %d", nodeKey(j), l)
	}
	return nodeKey(j)
}

// linkSet renders the link numbers a node configures, e.g. "[0 1]".
func linkSet(n Node) string {
	var l []string
	for link, s := range n.Links {
		if s != "" {
			l = append(l, fmt.Sprint(link))
		}
	}
	return "[" + strings.Join(l, " ") + "]"
}

func (v *validation) totem() {
	t := v.c.Totem
	atLeast := func(key string, d, lo time.Duration) {
		if d < lo {
			v.errorf(key, "must be at least %v (got %v)", lo, d)
		}
	}
	atLeast("totem.token", t.Token, MinToken)
	atLeast("totem.token_coefficient", t.TokenCoefficient, 0)
	atLeast("totem.join", t.Join, MinJoin)
	if t.Consensus <= 0 {
		v.errorf("totem.consensus", "must be greater than 0 (got %v)", t.Consensus)
	}
	eff := t.EffectiveToken(len(v.c.Nodes))
	if t.Heartbeat <= 0 || t.Heartbeat >= eff {
		v.errorf("totem.heartbeat", "must be greater than 0 and less than the effective token timeout %v (got %v)", eff, t.Heartbeat)
	}
	if t.NetMTU < MinNetMTU || t.NetMTU > MaxNetMTU {
		v.errorf("totem.netmtu", "must be from %d to %d (got %d)", MinNetMTU, MaxNetMTU, t.NetMTU)
	}
	if t.FlapCount < 1 {
		v.errorf("totem.flap_count", "must be at least 1 (got %d)", t.FlapCount)
	}
	atLeast("totem.flap_window", t.FlapWindow, time.Millisecond)
	atLeast("totem.flap_holddown", t.FlapHolddown, 0)
	seen := map[int]bool{}
	for _, in := range t.Interfaces {
		switch {
		case in.Link < 0 || in.Link >= MaxLinks:
			v.errorf("totem.interface", "linknumber %d: must be from 0 to %d", in.Link, MaxLinks-1)
		case seen[in.Link]:
			v.errorf("totem.interface", "duplicate interface for linknumber %d", in.Link)
		}
		seen[in.Link] = true
	}
}

func (v *validation) crypto() {
	cr := v.c.Crypto
	if cr.Cipher != "" && !slices.Contains(Ciphers, cr.Cipher) {
		v.errorf("totem.crypto_cipher", "invalid value %q: must be one of %s", cr.Cipher, strings.Join(Ciphers, ", "))
		return
	}
	if cr.Hash != "" && !slices.Contains(Hashes, cr.Hash) {
		v.errorf("totem.crypto_hash", "invalid value %q: must be one of %s", cr.Hash, strings.Join(Hashes, ", "))
		return
	}
	// Frames are either sealed (cipher and hash) or cleartext (neither);
	// authentication without encryption, or the reverse, is refused rather
	// than half-honoured.
	switch {
	case cr.Cipher == "none" && cr.Hash != "" && cr.Hash != "none":
		v.errorf("totem.crypto_hash", "crypto_hash requires crypto_cipher")
	case cr.Cipher != "" && cr.Cipher != "none" && cr.Hash == "none":
		v.errorf("totem.crypto_cipher", "crypto_cipher requires crypto_hash")
	case cr.Cipher == "" && cr.Hash == "none":
		v.errorf("totem.crypto_hash", "crypto_hash none requires crypto_cipher none: without crypto_cipher, frames are encrypted")
	}
}
