package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// maxLineLen is corosync's limit on a corosync.conf line (its parser reads
// lines into a 512-byte buffer).
const maxLineLen = 511

// ccItem is a section or a key of a corosync.conf, as written.
type ccItem struct {
	name    string
	value   string // keys only
	line    int
	section bool
	items   []*ccItem // sections only, in file order
}

// parseCorosyncText splits a corosync.conf into its sections and keys,
// following corosync's coroparse: per line, trailing blanks are stripped, a
// line starting with '#' is a comment, a line containing '{' opens a section
// (checked first, as corosync does), one containing ':' is `key: value` with
// the value being the rest of the line after the first ':', and a line that
// is only '}' closes a section. Values are never unquoted: `# ` after a value
// is part of the value, as in corosync.
func parseCorosyncText(file string, data []byte) (*ccItem, []error) {
	root := &ccItem{section: true}
	stack := []*ccItem{root}
	var errs []error
	fail := func(line int, key, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	path := func(name string) string {
		var parts []string
		for _, s := range stack[1:] {
			parts = append(parts, s.name)
		}
		return strings.Join(append(parts, name), ".")
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte("\n"))
		if len(raw) > maxLineLen {
			fail(lineNo, "", "line too long (%d characters, at most %d)", len(raw), maxLineLen)
			continue
		}
		line := trimBlanks(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		top := stack[len(stack)-1]
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name := trimBlanks(line[:i])
			switch {
			case name == "":
				fail(lineNo, "", "missing section name before '{'")
			case trimBlanks(line[i+1:]) != "":
				fail(lineNo, path(name), "extra characters after '{'")
			}
			s := &ccItem{name: name, line: lineNo, section: true}
			top.items = append(top.items, s)
			stack = append(stack, s)
			continue
		}
		if i := strings.IndexByte(line, ':'); i >= 0 {
			key := trimBlanks(line[:i])
			switch {
			case key == "":
				fail(lineNo, "", "missing key name before ':'")
			case len(stack) == 1 && !corosyncKeys.knows(key):
				// corosync stores a top-level key, but only Corosync
				// 1.x's `compatibility` ever meant anything there.
				fail(lineNo, key, "key outside any section")
			default:
				top.items = append(top.items, &ccItem{name: key, value: trimBlanks(line[i+1:]), line: lineNo})
			}
			continue
		}
		if strings.IndexByte(line, '}') >= 0 {
			switch {
			case line != "}":
				fail(lineNo, "", "extra characters before or after '}'")
			case len(stack) == 1:
				fail(lineNo, "", "unexpected '}': no section is open")
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		fail(lineNo, "", "syntax error: %s is not `key: value`, `section {` or `}`", strconv.Quote(line))
	}
	for len(stack) > 1 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fail(s.line, path(s.name), "section is never closed (missing '}')")
	}
	return root, errs
}

// trimBlanks strips what corosync strips around names and values: spaces,
// tabs, carriage returns and no-break spaces (byte 0xA0 in Latin-1, U+00A0
// in UTF-8).
func trimBlanks(s string) string {
	for {
		switch {
		case strings.HasPrefix(s, "\u00a0"):
			s = s[2:]
		case s != "" && strings.IndexByte(" \t\r\xa0", s[0]) >= 0:
			s = s[1:]
		case strings.HasSuffix(s, "\u00a0"):
			s = s[:len(s)-2]
		case s != "" && strings.IndexByte(" \t\r\xa0", s[len(s)-1]) >= 0:
			s = s[:len(s)-1]
		default:
			return s
		}
	}
}

// readCorosync feeds a corosync.conf to the builder. It returns false when
// the file's structure is broken (then nothing else is checked).
func (b *builder) readCorosync(data []byte) bool {
	root, errs := parseCorosyncText(b.file, data)
	if len(errs) > 0 {
		b.errs = append(b.errs, errs...)
		return false
	}
	for _, s := range root.items {
		if !s.section {
			b.warnf(s.name, s.line, legacyKeyMsg)
			continue
		}
		b.mark(s.name, s.line)
		switch s.name {
		case "totem":
			b.walk(s.name, s, b.totemKey, map[string]func(string, *ccItem){"interface": b.ccInterface})
		case "nodelist":
			b.walk(s.name, s, func(e entry) { b.otherKey(corosyncKeys.sub("nodelist"), e) },
				map[string]func(string, *ccItem){"node": b.ccNode})
		case "quorum":
			b.walk(s.name, s, b.quorumKey, map[string]func(string, *ccItem){"device": b.ccDevice})
		case "uidgid":
			b.walk(s.name, s, b.uidgidKey, nil)
		default:
			b.ignoredSection(s.name, s, corosyncKeys.sub(s.name))
		}
	}
	return true
}

// walk applies the keys of section s (whose dotted name is key) in file
// order, handing subsections to subs; any other subsection is an error.
func (b *builder) walk(key string, s *ccItem, apply func(entry), subs map[string]func(string, *ccItem)) {
	for _, it := range s.items {
		k := key + "." + it.name
		if !it.section {
			apply(entry{name: it.name, value: value{key: k, line: it.line, raw: it.value}})
			continue
		}
		sub, ok := subs[it.name]
		if !ok {
			b.errorf(k, it.line, unknownSectionMsg)
			continue
		}
		sub(k, it)
	}
}

// ignoredSection checks a section Conclave does not use (logging, system,
// …) against what Corosync knows of it (schema, nil when nothing): one
// warning per known key, an error per unknown key or subsection. A Corosync
// 1.x section gets one warning as a whole, and the sections of other
// programs (schema.free) one warning per key, whatever they contain.
func (b *builder) ignoredSection(key string, s *ccItem, schema *ccSection) {
	switch {
	case schema == nil:
		b.errorf(key, s.line, unknownSectionMsg)
		return
	case schema.legacy:
		b.warnf(key, s.line, legacySectionMsg)
		return
	}
	for _, it := range s.items {
		k := key + "." + it.name
		switch {
		case it.section && schema.free:
			b.ignoredSection(k, it, schema)
		case it.section:
			b.ignoredSection(k, it, schema.sub(it.name))
		case schema.knows(it.name):
			b.warnf(k, it.line, ignoredMsg)
		default:
			b.errorf(k, it.line, unknownKeyMsg)
		}
	}
}

// keysOnly returns the keys of a section that may not have subsections,
// reporting any subsection as unknown.
func (b *builder) keysOnly(key string, s *ccItem) []entry {
	var es []entry
	b.walk(key, s, func(e entry) { es = append(es, e) }, nil)
	return es
}

// ccInterface handles totem.interface. Its keys are named, as in corosync's
// cmap, totem.interface.<linknumber>.<key>; the link number may be written
// anywhere in the block and defaults to 0.
func (b *builder) ccInterface(_ string, s *ccItem) {
	link := "0"
	for _, it := range s.items {
		if !it.section && (it.name == "linknumber" || it.name == "ringnumber") {
			link = it.value
		}
	}
	key := "totem.interface." + link
	b.mark(key, s.line)
	var es []entry
	b.walk(key, s, func(e entry) { es = append(es, e) }, map[string]func(string, *ccItem){
		"member": func(k string, m *ccItem) { b.ignoredSection(k, m, ccInterfaceKeys.sub("member")) },
	})
	b.iface(key, s.line, es)
}

// ccNode handles one nodelist.node; its keys are nodelist.node.<index>.<key>
// with the index counted from 0 over all nodelist sections, as in cmap.
func (b *builder) ccNode(_ string, s *ccItem) {
	key := nodeKey(len(b.cfg.Nodes))
	b.mark(key, s.line)
	b.node(key, s.line, b.keysOnly(key, s))
}

func (b *builder) ccDevice(key string, s *ccItem) {
	b.device(s.line)
	b.walk(key, s, b.deviceKey, map[string]func(string, *ccItem){
		"net": func(k string, s *ccItem) {
			b.mark(k, s.line)
			for _, e := range b.keysOnly(k, s) {
				b.deviceMap(e, false)
			}
		},
		"heuristics": func(k string, s *ccItem) {
			b.mark(k, s.line)
			for _, e := range b.keysOnly(k, s) {
				b.deviceMap(e, true)
			}
		},
	})
}
