package groups

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The adapter-membership system groups (spec U-19): AdapterGroupName(L)
// lists (node, L) for every member of the installed view whose link L is
// up, as that node itself sees it.
//
// A link's state is local knowledge (the node's failure detector), so each
// node announces its own adapters through the ordered stream and every
// replica derives the groups from the same announcements, at the same point
// of the stream:
//
//   - AdapterStatus records the local state and, once the node is in a
//     view, broadcasts the node's whole set of up links with a sequence
//     number (per node, newer is higher) when it differs from what the node
//     last announced; on delivery every replica keeps the newest
//     announcement of each member.
//   - At a view change every member's sync header carries its current set
//     under a new sequence number, and Installed rebuilds the adapters from
//     the members' headers alone: nodes that left lose their adapters,
//     nodes that merge or restart bring theirs. An announcement sent before
//     the header and delivered after the install is older and ignored.
//   - A member whose header did not arrive (a sync step cut short) has no
//     adapters until it announces again, which it does right after the
//     install.
//
// An adapter group exists while one of its adapters is up: subscribing to
// one with none is HA_GS_UNKNOWN_GROUP. A subscription outlives the group
// going empty (a network that is down is still configured): its subscriber
// sees the leaves, then the joins when the link comes back, and never
// SUBSCRIPTION_DISSOLVED. The state value is always empty; special data
// (§2.8) is not implemented.

// maxAdapterLink is the highest link number whose group name fits in
// MaxGroupName.
const maxAdapterLink = 999

// adState is one node's adapters as it last announced them: its up links,
// sorted, and the announcement's sequence number.
type adState struct {
	Seq   uint64 `json:"s"`
	Links []int  `json:"l,omitempty"`
}

// AdapterGroupName is the adapter-membership system group of link:
// AdapterGroupPrefix + "link" + the link number.
func AdapterGroupName(link int) string {
	return AdapterGroupPrefix + "link" + strconv.Itoa(link)
}

// adapterLink parses an adapter group name; the link number must be in
// canonical decimal, so that one link has one name.
func adapterLink(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, AdapterGroupPrefix+"link")
	if !ok || rest == "" || len(rest) > 3 || (rest[0] == '0' && len(rest) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, false
		}
		n = n*10 + int(rest[i]-'0')
	}
	return n, true
}

// AdapterStatus reports that this node's link is up or down (the agent
// derives it from its failure detector). A node's adapters are known to the
// other replicas only from the node itself: the change is broadcast, and
// AdapterGroupName(link) changes on every replica when it is delivered.
// Before the node's first view it is only recorded (the first sync step
// carries it). Links outside 0–999 are ignored.
func (e *Engine) AdapterStatus(now time.Time, link int, up bool) {
	e.now = now
	if link < 0 || link > maxAdapterLink {
		return
	}
	if up {
		e.adLocal[link] = true
	} else {
		delete(e.adLocal, link)
	}
	if e.installed || e.syncing {
		e.announceAdapters(false)
	}
}

// localLinks lists this node's up links, sorted.
func (e *Engine) localLinks() []int {
	ls := make([]int, 0, len(e.adLocal))
	for l := range e.adLocal {
		ls = append(ls, l)
	}
	sort.Ints(ls)
	return ls
}

// announceAdapters broadcasts this node's adapters when they differ from
// what it last announced (the state the replicas hold once that is
// delivered), or always with force.
func (e *Engine) announceAdapters(force bool) {
	links := e.localLinks()
	if !force && slices.Equal(links, e.adSent) {
		return
	}
	e.adSeq++
	e.adSent = links
	e.send(&wmsg{K: kAdapter, Ad: &adState{Seq: e.adSeq, Links: links}})
}

// adapterHeader is this node's adapters for its sync header: newer than
// any announcement it sent before.
func (e *Engine) adapterHeader() *adState {
	e.adSeq++
	e.adSent = e.localLinks()
	return &adState{Seq: e.adSeq, Links: e.adSent}
}

// adaptersFrom is the adapter replica of a view being installed: each
// member's own header when the view had a sync step, else what this replica
// had for the members.
func (e *Engine) adaptersFrom(members []NodeID, synced bool) map[NodeID]adState {
	next := map[NodeID]adState{}
	for _, n := range members {
		if !synced {
			if s, ok := e.adapters[n]; ok {
				next[n] = s
			}
			continue
		}
		if c := e.syncCopies[n]; c != nil && c.ad != nil {
			next[n] = adState{Seq: c.ad.Seq, Links: normLinks(c.ad.Links)}
		}
	}
	return next
}

// applyAdapter is a member's announcement of its adapters.
func (e *Engine) applyAdapter(from NodeID, m *wmsg) {
	if m.Ad == nil {
		return
	}
	if _, ok := slices.BinarySearch(e.members, from); !ok {
		return
	}
	if cur, ok := e.adapters[from]; ok && m.Ad.Seq <= cur.Seq {
		return // older than what the replica holds (a header that overtook it)
	}
	next := maps.Clone(e.adapters)
	if next == nil {
		next = map[NodeID]adState{}
	}
	next[from] = adState{Seq: m.Ad.Seq, Links: normLinks(m.Ad.Links)}
	e.setAdapters(next)
}

// normLinks: valid link numbers, sorted, once each.
func normLinks(ls []int) []int {
	var out []int
	for _, l := range ls {
		if l >= 0 && l <= maxAdapterLink {
			out = append(out, l)
		}
	}
	sort.Ints(out)
	return slices.Compact(out)
}

// setAdapters replaces the adapter replica and tells the subscribers of the
// adapter groups that changed.
func (e *Engine) setAdapters(next map[NodeID]adState) {
	old := e.adapters
	e.adapters = next
	for _, name := range sortedKeys(e.subs) {
		link, ok := adapterLink(name)
		if !ok {
			continue
		}
		was, is := adapterNodes(old, link), adapterNodes(next, link)
		var joined, left []ProviderID
		for _, n := range is {
			if _, ok := slices.BinarySearch(was, n); !ok {
				joined = append(joined, ProviderID{n, int16(link)})
			}
		}
		for _, n := range was {
			if _, ok := slices.BinarySearch(is, n); !ok {
				left = append(left, ProviderID{n, int16(link)})
			}
		}
		if len(joined) > 0 || len(left) > 0 {
			e.notifySystem(name, nil, false, joined, left)
		}
	}
}

// adapterNodes lists, sorted, the nodes whose link is up in ads.
func adapterNodes(ads map[NodeID]adState, link int) []NodeID {
	var ns []NodeID
	for n, s := range ads {
		if _, ok := slices.BinarySearch(s.Links, link); ok {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns
}

// adapterMembers is the membership of an adapter group, in node order.
func (e *Engine) adapterMembers(link int) []ProviderID {
	ns := adapterNodes(e.adapters, link)
	ids := make([]ProviderID, len(ns))
	for i, n := range ns {
		ids[i] = ProviderID{n, int16(link)}
	}
	return ids
}
