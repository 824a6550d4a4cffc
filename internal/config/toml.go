package config

import (
	"bytes"
	"cmp"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// The TOML document as go-toml decodes it. Scalars are `any` so that the
// builder converts them with the same code and messages as corosync.conf
// values (and can accept both true and 1 for a quorum boolean); a nil field
// is an absent key. go-toml, in strict mode, rejects unknown keys: TOML is
// Conclave's own format, so nothing in it is silently ignored.
type tomlDoc struct {
	Totem    *tomlTotem    `toml:"totem"`
	Nodelist *tomlNodelist `toml:"nodelist"`
	Quorum   *tomlQuorum   `toml:"quorum"`
	Agent    *tomlAgent    `toml:"agent"`
}

func (d *tomlDoc) totemInterfaces() []tomlInterface {
	if d.Totem == nil {
		return nil
	}
	return d.Totem.Interface
}

func (d *tomlDoc) nodes() []tomlNode {
	if d.Nodelist == nil {
		return nil
	}
	return d.Nodelist.Node
}

type tomlTotem struct {
	ClusterName      any             `toml:"cluster_name"`
	Token            any             `toml:"token"`
	TokenCoefficient any             `toml:"token_coefficient"`
	Consensus        any             `toml:"consensus"`
	Join             any             `toml:"join"`
	Heartbeat        any             `toml:"heartbeat"`
	NetMTU           any             `toml:"netmtu"`
	CryptoCipher     any             `toml:"crypto_cipher"`
	CryptoHash       any             `toml:"crypto_hash"`
	KeyFile          any             `toml:"keyfile"`
	FlapCount        any             `toml:"flap_count"`
	FlapWindow       any             `toml:"flap_window"`
	FlapHolddown     any             `toml:"flap_holddown"`
	Interface        []tomlInterface `toml:"interface"`
}

type tomlInterface struct {
	LinkNumber any `toml:"linknumber"`
	MCastPort  any `toml:"mcastport"`
}

type tomlNodelist struct {
	Node []tomlNode `toml:"node"`
}

type tomlNode struct {
	NodeID      any `toml:"nodeid"`
	Name        any `toml:"name"`
	Ring0Addr   any `toml:"ring0_addr"`
	Ring1Addr   any `toml:"ring1_addr"`
	Ring2Addr   any `toml:"ring2_addr"`
	Ring3Addr   any `toml:"ring3_addr"`
	Ring4Addr   any `toml:"ring4_addr"`
	Ring5Addr   any `toml:"ring5_addr"`
	Ring6Addr   any `toml:"ring6_addr"`
	Ring7Addr   any `toml:"ring7_addr"`
	QuorumVotes any `toml:"quorum_votes"`
}

type tomlQuorum struct {
	Provider              any         `toml:"provider"`
	ExpectedVotes         any         `toml:"expected_votes"`
	Votes                 any         `toml:"votes"`
	TwoNode               any         `toml:"two_node"`
	WaitForAll            any         `toml:"wait_for_all"`
	LastManStanding       any         `toml:"last_man_standing"`
	LastManStandingWindow any         `toml:"last_man_standing_window"`
	AutoTieBreaker        any         `toml:"auto_tie_breaker"`
	AutoTieBreakerNode    any         `toml:"auto_tie_breaker_node"`
	AllowDownscale        any         `toml:"allow_downscale"`
	ExpectedVotesTracking any         `toml:"expected_votes_tracking"`
	Lease                 any         `toml:"lease"`
	Device                *tomlDevice `toml:"device"`
}

type tomlDevice struct {
	Model       any            `toml:"model"`
	Votes       any            `toml:"votes"`
	Timeout     any            `toml:"timeout"`
	SyncTimeout any            `toml:"sync_timeout"`
	Net         map[string]any `toml:"net"`
	Heuristics  map[string]any `toml:"heuristics"`
}

type tomlAgent struct {
	Socket      any `toml:"socket"`
	DataDir     any `toml:"data_dir"`
	LogLevel    any `toml:"log_level"`
	AllowedUIDs any `toml:"allowed_uids"`
	AllowedGIDs any `toml:"allowed_gids"`
}

// readTOML feeds a TOML document to the builder. It returns false when the
// document cannot be decoded at all (a syntax or structure error).
func (b *builder) readTOML(data []byte) bool {
	var doc tomlDoc
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&doc)
	ix := indexTOML(data)
	var strict *toml.StrictMissingError
	var decode *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		// Decoding went through; only unknown keys were found. Report them
		// and go on, so the file's other problems show up in the same run.
		for _, e := range strict.Errors {
			row, _ := e.Position()
			b.errorf(ix.keyAt(row, e.Key()), row, "unknown key")
		}
	case errors.As(err, &decode):
		row, _ := decode.Position()
		b.errorf(ix.keyAt(row, decode.Key()), row, "%s", decodeMsg(decode))
		return false
	default:
		b.errorf("", 0, "%v", err)
		return false
	}
	// go-toml lets a single [table] fill a slice; insist on the documented
	// [[array]] form, so that keys are numbered the same way everywhere.
	for _, arr := range []struct {
		key string
		n   int
	}{{"totem.interface", len(doc.totemInterfaces())}, {"nodelist.node", len(doc.nodes())}} {
		if _, ok := ix.lines[arr.key+".0"]; arr.n > 0 && !ok {
			b.errorf(arr.key, ix.line(arr.key), "must be an array of tables: write [[%s]]", arr.key)
			return false
		}
	}
	entries := ix.entries

	if t := doc.Totem; t != nil {
		b.mark("totem", ix.line("totem"))
		for _, e := range entries("totem", t) {
			b.totemKey(e)
		}
		for i, in := range t.Interface {
			key := "totem.interface." + strconv.Itoa(i)
			b.mark(key, ix.line(key))
			b.iface(key, ix.line(key), entries(key, &in))
		}
	}
	if nl := doc.Nodelist; nl != nil {
		b.mark("nodelist", ix.line("nodelist"))
		for i, n := range nl.Node {
			key := nodeKey(i)
			b.mark(key, ix.line(key))
			b.node(key, ix.line(key), entries(key, &n))
		}
	}
	if q := doc.Quorum; q != nil {
		b.mark("quorum", ix.line("quorum"))
		for _, e := range entries("quorum", q) {
			b.quorumKey(e)
		}
		if d := q.Device; d != nil {
			b.device(ix.line("quorum.device"))
			for _, e := range entries("quorum.device", d) {
				b.deviceKey(e)
			}
			for _, m := range []struct {
				key        string
				kv         map[string]any
				heuristics bool
			}{{"quorum.device.net", d.Net, false}, {"quorum.device.heuristics", d.Heuristics, true}} {
				if m.kv != nil {
					b.mark(m.key, ix.line(m.key))
				}
				for _, e := range ix.mapEntries(m.key, m.kv) {
					b.deviceMap(e, m.heuristics)
				}
			}
		}
	}
	if a := doc.Agent; a != nil {
		b.mark("agent", ix.line("agent"))
		for _, e := range entries("agent", a) {
			b.agentKey(e)
		}
	}
	return true
}

// decodeMsg rewrites go-toml's type-mismatch message, which names Go types,
// into one about the document.
func decodeMsg(e *toml.DecodeError) string {
	msg := strings.TrimPrefix(e.Error(), "toml: ")
	rest, ok := strings.CutPrefix(msg, "cannot decode TOML ")
	if !ok {
		return msg
	}
	kind, _, _ := strings.Cut(rest, " ")
	_, typ, ok := strings.Cut(rest, " of type ")
	if !ok {
		return msg
	}
	if strings.HasPrefix(typ, "[]") {
		return "must be an array of tables, not a TOML " + kind
	}
	return "must be a table, not a TOML " + kind
}

// tomlIndex maps the dotted keys of a TOML document to their lines. Array
// table entries are numbered from 0 like corosync's cmap numbers nodes
// ("nodelist.node.1.ring0_addr"), which go-toml's errors do not do.
type tomlIndex struct {
	lines  map[string]int
	byLine map[int][]string
	starts []int // byte offset of each line
}

func indexTOML(data []byte) *tomlIndex {
	ix := &tomlIndex{lines: map[string]int{}, byLine: map[int][]string{}, starts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			ix.starts = append(ix.starts, i+1)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	arrays := map[string]int{} // array table path -> entries so far
	cur := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, line := ix.keyParts(e)
			path := ""
			for i, part := range parts {
				path = join(path, part)
				if i == len(parts)-1 && e.Kind == unstable.ArrayTable {
					ix.add(path, line)
					n := arrays[path]
					arrays[path] = n + 1
					path += "." + strconv.Itoa(n)
				} else if n, ok := arrays[path]; ok {
					path += "." + strconv.Itoa(n-1)
				}
				ix.add(path, line)
			}
			cur = path
		case unstable.KeyValue:
			parts, line := ix.keyParts(e)
			path := cur
			for _, part := range parts {
				path = join(path, part)
				ix.add(path, line)
			}
			ix.value(path, e.Value())
		}
	}
	return ix
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (ix *tomlIndex) lineOf(offset uint32) int {
	return sort.Search(len(ix.starts), func(i int) bool { return ix.starts[i] > int(offset) })
}

// keyParts returns the parts of the key of a table header or key/value and
// the line of its first part.
func (ix *tomlIndex) keyParts(n *unstable.Node) ([]string, int) {
	var parts []string
	line := 0
	for it := n.Key(); it.Next(); {
		k := it.Node()
		if line == 0 {
			line = ix.lineOf(k.Raw.Offset)
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

// value indexes the keys inside inline tables and arrays of inline tables.
func (ix *tomlIndex) value(path string, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			parts, line := ix.keyParts(kv)
			p := path
			for _, part := range parts {
				p = join(p, part)
				ix.add(p, line)
			}
			ix.value(p, kv.Value())
		}
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); i++ {
			el := it.Node()
			p := path + "." + strconv.Itoa(i)
			if el.Kind == unstable.InlineTable {
				if first := el.Children(); first.Next() && first.Node().Kind == unstable.KeyValue {
					_, line := ix.keyParts(first.Node())
					ix.add(p, line)
				}
			}
			ix.value(p, el)
		}
	}
}

// add records key at line. The first line is the key's line; every line is
// kept for keyAt, since go-toml reports a repeated key where it is repeated.
func (ix *tomlIndex) add(key string, line int) {
	if _, ok := ix.lines[key]; !ok {
		ix.lines[key] = line
	}
	if !slices.Contains(ix.byLine[line], key) {
		ix.byLine[line] = append(ix.byLine[line], key)
	}
}

func (ix *tomlIndex) line(key string) int { return ix.lines[key] }

// keyAt turns the key of a go-toml error at row into our dotted spelling,
// with array entries numbered: go-toml leaves the numbers out (and, inside
// inline tables, sometimes the table's own name), so the key written on that
// row that ends the same way is taken.
func (ix *tomlIndex) keyAt(row int, key toml.Key) string {
	want := strings.Join(key, ".")
	if len(key) == 0 {
		return ""
	}
	cands := ix.byLine[row]
	for _, c := range cands {
		if stripIndexes(c) == want {
			return c
		}
	}
	last := key[len(key)-1]
	for _, c := range slices.Backward(cands) {
		if c == last || strings.HasSuffix(c, "."+last) {
			return c
		}
	}
	return want
}

// stripIndexes removes the numeric parts of a dotted key.
func stripIndexes(key string) string {
	parts := strings.Split(key, ".")
	parts = slices.DeleteFunc(parts, func(p string) bool {
		_, err := strconv.Atoi(p)
		return err == nil
	})
	return strings.Join(parts, ".")
}

// entries lists the written scalar fields of a decoded TOML struct (its
// `any` fields that are not nil), in the order they appear in the file.
func (ix *tomlIndex) entries(prefix string, s any) []entry {
	var es []entry
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() != reflect.Interface || v.Field(i).IsNil() {
			continue
		}
		name := f.Tag.Get("toml")
		key := prefix + "." + name
		es = append(es, entry{name: name, value: value{key: key, line: ix.line(key), raw: v.Field(i).Interface()}})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.line, b.line) })
	return es
}

// mapEntries lists a free-form table (quorum.device.net) by line, then name.
func (ix *tomlIndex) mapEntries(prefix string, m map[string]any) []entry {
	var es []entry
	for name, raw := range m {
		key := prefix + "." + name
		es = append(es, entry{name: name, value: value{key: key, line: ix.line(key), raw: raw}})
	}
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.name, b.name))
	})
	return es
}
