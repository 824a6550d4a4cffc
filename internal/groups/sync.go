package groups

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"
)

// lineage names where a replica comes from: the ring it was last installed
// in, and how many of that ring's deliveries it applied since (its
// position in the ring's total order). Every member of a ring applies the
// same sequence from the same reconciled state, so two replicas of one
// lineage are identical. The ring alone is not enough: a member that
// started a new view and never installed it still holds the replica of
// its last installed ring, but it left that ring with the cut of the view
// it started (virtual synchrony only holds between members that move
// together), while a member that stayed delivered more.
type lineage struct {
	Ring RingID
	Pos  uint64
}

func lineageLess(a, b lineage) bool {
	if a.Ring != b.Ring {
		return ringLess(a.Ring, b.Ring)
	}
	return a.Pos < b.Pos
}

// syncCopy is what one member sent in the sync step: the lineage of its
// replica, and that replica's groups.
type syncCopy struct {
	prev   lineage
	want   int // groups announced in the header
	groups []*group
	ad     *adState // the sender's own adapters
}

// complete: every group the header announced arrived. A sync step can be
// cut short (the host drops what no longer fits), and a member of the same
// lineage with a whole copy is then the better source.
func (c *syncCopy) complete() bool { return len(c.groups) == c.want }

// Nodelist starts the sync step of a new view: queue this replica, tagged
// with its lineage (the ring it was last installed in and its position in
// that ring's order), as sync messages. Members of one lineage hold
// identical replicas, so at Installed one copy per lineage is read, and the
// copies of different lineages — partitions that ran apart, even for a
// few messages — are reconciled by the rule of spec U-13.
//
// Every member sends its whole replica, which is simple and makes the
// reconciliation independent of who knows what; cutting it down to one
// sender per lineage is an optimisation left for later.
func (e *Engine) Nodelist(now time.Time, ring RingID, members []NodeID) {
	e.now = now
	e.syncing = true
	e.syncRing = ring
	e.syncCopies = map[NodeID]*syncCopy{}
	// A time-out sent in the old view may have been lost with it; the new
	// representative sends again if the phase is still open.
	e.timeoutSent = map[phaseKey]bool{}
	from := lineage{}
	if e.installed {
		from = lineage{e.ring, e.pos}
	}
	e.syncFrom = from
	e.syncOut = e.syncOut[:0]
	e.syncOut = append(e.syncOut, encode(&wmsg{K: kSyncHeader, PrevRing: from.Ring, Pos: from.Pos, Seq: uint64(len(e.groups)), Ad: e.adapterHeader()}))
	for _, name := range sortedKeys(e.groups) {
		e.syncOut = append(e.syncOut, encode(&wmsg{K: kSyncGroup, PrevRing: from.Ring, Pos: from.Pos, Group: e.groups[name]}))
	}
}

func (e *Engine) deliverSync(ring RingID, from NodeID, payload []byte) {
	if !e.syncing || ring != e.syncRing {
		return
	}
	m, err := decode(payload)
	if err != nil {
		return
	}
	switch m.K {
	case kSyncHeader:
		e.syncCopies[from] = &syncCopy{prev: lineage{m.PrevRing, m.Pos}, want: int(m.Seq), ad: m.Ad}
	case kSyncGroup:
		c := e.syncCopies[from]
		if c == nil || c.prev != (lineage{m.PrevRing, m.Pos}) || m.Group == nil {
			return
		}
		c.groups = append(c.groups, m.Group)
	}
}

// Installed ends the sync step: reconcile the copies, fail the providers
// that are not (or no longer validly) in the view, update the system groups
// (adapters from the members' own sync headers), then apply what was
// delivered meanwhile.
func (e *Engine) Installed(now time.Time, ring RingID, members []NodeID) {
	e.now = now
	synced := e.syncing && ring == e.syncRing
	// Deliveries are held from Nodelist on, so the position is the one
	// the sync step sent.
	myPrev := e.syncFrom
	if !synced {
		// No sync step seen for this ring (a driver bug or a restart in
		// the middle): keep what we have; the next view repairs it.
		e.syncCopies = map[NodeID]*syncCopy{}
	}
	ms := append([]NodeID(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	e.ring, e.members, e.installed, e.syncing, e.pos = ring, ms, true, false, 0
	if e.syncCopies != nil {
		e.reconcile(ms, myPrev)
	}
	ads := e.adaptersFrom(ms, synced)
	e.syncCopies = nil
	e.syncOut = nil // anything the host did not take belongs to the step that ended
	e.updateHost()
	e.setAdapters(ads)
	if _, ok := e.adapters[e.node]; !ok && len(e.adLocal) > 0 {
		// Our header did not make it: announce again, in the new view.
		e.announceAdapters(true)
	}
	buf := e.buffered
	e.buffered = nil
	for _, d := range buf {
		e.apply(d.from, d.payload)
	}
}

func ringLess(a, b RingID) bool {
	if a.Seq != b.Seq {
		return a.Seq < b.Seq
	}
	return a.Rep < b.Rep
}

// mergeCand is one instance of a group among the copies: the copy of one
// lineage, or of several lineages of one ring whose copies of the group
// are identical (from: their lineages, oldest first).
type mergeCand struct {
	ring     lineage // from[0]
	from     []lineage
	g        *group
	enc      []byte
	survivor []ProviderID
	gl       NodeID
}

func (c mergeCand) has(l lineage) bool { return slices.Contains(c.from, l) }

// reconcile replaces the replica with the merge of the members' copies.
//
// A provider is valid in a copy only if its node is in the view and came
// from that copy's lineage: the node's own lineage is authoritative for its
// providers (a node that went through another view, or restarted, may have
// lost or re-made them, or been told outcomes the copy has not reached).
// Lineages of one ring that hold the same copy of a group (the deliveries
// between their positions did not touch it) are one instance of it, valid
// for the providers of all their nodes. Invalid providers fail. For a
// group present in several instances the one with the most valid providers
// wins; ties go to the lower node of its group leader (first valid
// provider in join order), then to the older lineage. The other instances
// are dissolved: their local providers get a merge notification carrying
// their lost state value and must re-join (U-13).
func (e *Engine) reconcile(members []NodeID, myPrev lineage) {
	inView := map[NodeID]bool{}
	for _, n := range members {
		inView[n] = true
	}
	prevOf := map[NodeID]lineage{}
	canon := map[lineage]NodeID{}
	for n, c := range e.syncCopies {
		if !inView[n] {
			continue
		}
		prevOf[n] = c.prev
		// The lowest member with a complete copy; any copy if none is.
		cur, ok := canon[c.prev]
		if !ok {
			canon[c.prev] = n
			continue
		}
		cc := e.syncCopies[cur]
		if (c.complete() && !cc.complete()) || (c.complete() == cc.complete() && n < cur) {
			canon[c.prev] = n
		}
	}
	rings := make([]lineage, 0, len(canon))
	for r := range canon {
		rings = append(rings, r)
	}
	sort.Slice(rings, func(i, j int) bool { return lineageLess(rings[i], rings[j]) })
	valid := func(id ProviderID, c mergeCand) bool {
		pr, ok := prevOf[id.Node]
		return ok && c.has(pr)
	}

	cands := map[string][]mergeCand{}
	for _, r := range rings {
	copies:
		for _, g := range e.syncCopies[canon[r]].groups {
			enc := encodeGroup(g)
			for i := range cands[g.Name] {
				if c := &cands[g.Name][i]; c.ring.Ring == r.Ring && bytes.Equal(c.enc, enc) {
					c.from = append(c.from, r)
					continue copies
				}
			}
			cands[g.Name] = append(cands[g.Name], mergeCand{ring: r, from: []lineage{r}, g: g, enc: enc})
		}
	}
	for _, name := range sortedKeys(cands) {
		for i := range cands[name] {
			c := &cands[name][i]
			c.gl = math.MaxUint32
			for _, m := range c.g.Providers {
				if valid(m.ID, *c) {
					c.survivor = append(c.survivor, m.ID)
					if c.gl == math.MaxUint32 {
						c.gl = m.ID.Node
					}
				}
			}
		}
	}
	winners := map[string]mergeCand{}
	newGroups := map[string]*group{}
	for _, name := range sortedKeys(cands) {
		cs := cands[name]
		best := cs[0]
		for _, c := range cs[1:] {
			if len(c.survivor) > len(best.survivor) || (len(c.survivor) == len(best.survivor) && c.gl < best.gl) {
				best = c
			}
		}
		winners[name] = best
		newGroups[name] = best.g
	}

	// Local providers and subscribers of instances that lost.
	old := e.groups
	for _, name := range sortedKeys(old) {
		og := old[name]
		w, ok := winners[name]
		if ok && w.has(myPrev) {
			if len(cands[name]) > 1 && w.g.Attrs.MergeControl == DontMerge {
				var others []ProviderID
				for _, c := range cands[name] {
					if c.ring != w.ring {
						others = append(others, c.survivor...)
					}
				}
				for _, id := range w.survivor {
					e.tell(name, id, Notification{Type: NotifyMerge, Protocol: ProtoMerge, Merging: others,
						MergeState: clone(og.State), WinnerState: clone(og.State)})
				}
			}
			continue
		}
		var winnerIDs []ProviderID
		var winnerState []byte
		if ok {
			winnerIDs, winnerState = w.survivor, w.g.State
		}
		for _, m := range og.Providers {
			e.tell(name, m.ID, Notification{Type: NotifyMerge, Protocol: ProtoMerge, Summary: GroupDissolved,
				Merging: winnerIDs, MergeState: clone(og.State), WinnerState: clone(winnerState)})
			e.forget(name, m.ID)
		}
		var joiners []member
		joiners = append(joiners, og.Joins...)
		if og.Proto != nil {
			joiners = append(joiners, og.Proto.Joiners...)
		}
		for _, j := range joiners {
			e.delayedError(name, j.ID, ProtoJoin, ErrGroupDissolved,
				&Request{Protocol: ProtoJoin, Join: &JoinArgs{Attributes: og.Attrs, Instance: j.ID.Instance, LocalName: j.LocalName}})
			e.forget(name, j.ID)
		}
		for _, tok := range append([]Token(nil), e.subs[name]...) {
			e.emit(tok, e.tokens[tok], name, Notification{Type: NotifySubscription, SubscriptionType: SubscriptionDissolved})
			e.dropToken(tok)
		}
	}

	// Timers: keep this replica's start time for a phase it saw start;
	// a phase learnt from another partition starts its limit now.
	timers := map[string]phaseTimer{}
	for _, name := range sortedKeys(newGroups) {
		g := newGroups[name]
		p := g.Proto
		if p == nil || p.Phase == 0 {
			continue
		}
		key := phaseKey{name, p.Seq, p.Phase}
		if t, ok := e.timers[name]; ok && t.key == key && winners[name].has(myPrev) {
			timers[name] = t
			continue
		}
		if l := phaseLimit(p); l > 0 {
			timers[name] = phaseTimer{key: key, deadline: e.now.Add(time.Duration(l) * time.Second)}
		}
	}
	e.groups, e.timers = newGroups, timers

	// One failure event for every provider that is not validly in the view.
	var fails []failNote
	for _, name := range sortedKeys(newGroups) {
		g, w := newGroups[name], winners[name]
		seen := map[ProviderID]bool{}
		add := func(id ProviderID) {
			if !valid(id, w) && !seen[id] {
				seen[id] = true
				fails = append(fails, failNote{G: name, P: id, Info: LeaveInfo{Reason: ProviderFailedLeave}})
			}
		}
		for _, m := range g.Providers {
			add(m.ID)
		}
		for _, j := range g.Joins {
			add(j.ID)
		}
		if g.Proto != nil {
			for _, j := range g.Proto.Joiners {
				add(j.ID)
			}
		}
	}
	// A local joiner that the winning copy holds but this replica did not:
	// another partition applied the join this node sent (the message was
	// in flight when the views split) and this node's lineage never will.
	// It is told as if its instance had been dissolved, before it fails
	// out of the winning copy (where its node did not come from).
	for _, f := range fails {
		if f.P.Node == e.node {
			e.joinLost(f.G, f.P.Instance)
		}
	}
	if len(fails) > 0 {
		e.applyFail(fails)
	}
	// The same when the copy already failed it out: the join is spent
	// there (the group applied it), so it will never be answered.
	for _, tok := range e.pendingJoins() {
		ti := e.tokens[tok]
		if g := e.groups[ti.group]; g != nil && !g.hasProvider(e.pid(ti)) && g.seen(e.node, msgID{e.cfg.Incarnation, ti.joinNum}) {
			e.joinLost(ti.group, ti.inst)
		}
	}
}

// pendingJoins lists the local provider tokens whose join is not approved
// yet, in creation order.
func (e *Engine) pendingJoins() []Token {
	var ts []Token
	for tok, ti := range e.tokens {
		if !ti.sub && !ti.member && ti.joinNum != 0 {
			ts = append(ts, tok)
		}
	}
	slices.Sort(ts)
	return ts
}

// joinLost ends a local provider's pending join with a delayed
// GROUP_DISSOLVED, as for the joiners of a dissolved instance.
func (e *Engine) joinLost(name string, inst int16) {
	tok, ok := e.byProv[provKey{name, inst}]
	if !ok {
		return
	}
	ti := e.tokens[tok]
	if ti.member {
		return
	}
	var at Attributes
	if g := e.groups[name]; g != nil {
		at = g.Attrs
	}
	e.delayedError(name, ProviderID{e.node, inst}, ProtoJoin, ErrGroupDissolved,
		&Request{Protocol: ProtoJoin, Join: &JoinArgs{Attributes: at, Instance: inst, LocalName: ti.localName}})
	e.dropToken(tok)
}

// phaseLimit is the time limit of the current phase in seconds (0 = none).
func phaseLimit(p *protocol) uint32 {
	if p.Phases == OnePhase {
		return p.DeactLimit
	}
	l := p.TimeLimit
	if p.Type == ProtoExpel && p.DeactPhase == p.Phase && l > 0 && p.DeactLimit > l {
		l = p.DeactLimit
	}
	return l
}

// updateHost moves the host-membership system group to the installed view
// and tells its subscribers what changed. Its state value is the ring id.
func (e *Engine) updateHost() {
	old := map[NodeID]bool{}
	for _, n := range e.host {
		old[n] = true
	}
	now := map[NodeID]bool{}
	var joined, left []ProviderID
	for _, n := range e.members {
		now[n] = true
		if !old[n] {
			joined = append(joined, ProviderID{Node: n})
		}
	}
	for _, n := range e.host {
		if !now[n] {
			left = append(left, ProviderID{Node: n})
		}
	}
	e.host = append([]NodeID(nil), e.members...)
	e.notifySystem(HostGroupName, []byte(e.ring.String()), true, joined, left)
}

// notifySystem tells the subscribers of a system group what changed: the
// joined and left pseudo-providers, and the state value if stateChanged.
func (e *Engine) notifySystem(name string, state []byte, stateChanged bool, joined, left []ProviderID) {
	for _, tok := range append([]Token(nil), e.subs[name]...) {
		ti := e.tokens[tok]
		n := Notification{Type: NotifySubscription}
		if stateChanged && ti.control&SubscribeState != 0 {
			n.SubscriptionType |= SubscriptionState
			n.State = clone(state)
		}
		var changing []ProviderID
		if len(joined) > 0 && ti.control&SubscribeDeltaJoins != 0 {
			n.SubscriptionType |= SubscriptionDeltaJoin
			changing = append(changing, joined...)
		}
		if len(left) > 0 && ti.control&SubscribeDeltaLeaves != 0 {
			n.SubscriptionType |= SubscriptionDeltaLeave
			changing = append(changing, left...)
		}
		if n.SubscriptionType == 0 {
			continue
		}
		n.ChangingMembership = changing
		if ti.control&SubscribeMembership != 0 && ti.control&SubscribeDeltasOnly == 0 {
			_, n.FullMembership = e.snapshot(name)
		}
		e.emit(tok, ti, name, n)
	}
}

// encodeGroup is a group's canonical encoding, to compare copies.
func encodeGroup(g *group) []byte {
	b, err := json.Marshal(g)
	if err != nil {
		panic("groups: encode: " + err.Error())
	}
	return b
}
