package groups

import (
	"math"
	"sort"
	"time"
)

// syncCopy is what one member sent in the sync step: the ring its replica
// comes from, and that replica's groups.
type syncCopy struct {
	prev   RingID
	want   int // groups announced in the header
	groups []*group
	ad     *adState // the sender's own adapters
}

// complete: every group the header announced arrived. A sync step can be
// cut short (the host drops what no longer fits), and a member of the same
// ring with a whole copy is then the better source.
func (c *syncCopy) complete() bool { return len(c.groups) == c.want }

// Nodelist starts the sync step of a new view: queue this replica, tagged
// with the ring it was built in, as sync messages. Members that come from
// the same ring hold identical replicas (virtual synchrony: they delivered
// the same messages), so at Installed one copy per previous ring is read
// and the copies of different rings — partitions that ran apart — are
// reconciled by the rule of spec U-13.
//
// Every member sends its whole replica, which is simple and makes the
// reconciliation independent of who knows what; cutting it down to one
// sender per previous ring is an optimisation left for later.
func (e *Engine) Nodelist(now time.Time, ring RingID, members []NodeID) {
	e.now = now
	e.syncing = true
	e.syncRing = ring
	e.syncCopies = map[NodeID]*syncCopy{}
	// A time-out sent in the old view may have been lost with it; the new
	// representative sends again if the phase is still open.
	e.timeoutSent = map[phaseKey]bool{}
	prev := RingID{}
	if e.installed {
		prev = e.ring
	}
	e.syncOut = e.syncOut[:0]
	e.syncOut = append(e.syncOut, encode(&wmsg{K: kSyncHeader, PrevRing: prev, Seq: uint64(len(e.groups)), Ad: e.adapterHeader()}))
	for _, name := range sortedKeys(e.groups) {
		e.syncOut = append(e.syncOut, encode(&wmsg{K: kSyncGroup, PrevRing: prev, Group: e.groups[name]}))
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
		e.syncCopies[from] = &syncCopy{prev: m.PrevRing, want: int(m.Seq), ad: m.Ad}
	case kSyncGroup:
		c := e.syncCopies[from]
		if c == nil || c.prev != m.PrevRing || m.Group == nil {
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
	myPrev := RingID{}
	if e.installed {
		myPrev = e.ring
	}
	synced := e.syncing && ring == e.syncRing
	if !synced {
		// No sync step seen for this ring (a driver bug or a restart in
		// the middle): keep what we have; the next view repairs it.
		e.syncCopies = map[NodeID]*syncCopy{}
	}
	ms := append([]NodeID(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	e.ring, e.members, e.installed, e.syncing = ring, ms, true, false
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

type mergeCand struct {
	ring     RingID
	g        *group
	survivor []ProviderID
	gl       NodeID
}

// reconcile replaces the replica with the merge of the members' copies.
//
// A provider is valid in a copy only if its node is in the view and came
// from that copy's ring: the node's own lineage is authoritative for its
// providers (a node that went through another view, or restarted, may have
// lost or re-made them). Invalid providers fail. For a group present in
// several copies the instance with the most valid providers wins; ties go
// to the lower node of its group leader (first valid provider in join
// order), then to the older ring. The other instances are dissolved: their
// local providers get a merge notification carrying their lost state value
// and must re-join (U-13).
func (e *Engine) reconcile(members []NodeID, myPrev RingID) {
	inView := map[NodeID]bool{}
	for _, n := range members {
		inView[n] = true
	}
	prevOf := map[NodeID]RingID{}
	canon := map[RingID]NodeID{}
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
	rings := make([]RingID, 0, len(canon))
	for r := range canon {
		rings = append(rings, r)
	}
	sort.Slice(rings, func(i, j int) bool { return ringLess(rings[i], rings[j]) })
	valid := func(id ProviderID, r RingID) bool {
		pr, ok := prevOf[id.Node]
		return ok && pr == r
	}

	cands := map[string][]mergeCand{}
	for _, r := range rings {
		for _, g := range e.syncCopies[canon[r]].groups {
			c := mergeCand{ring: r, g: g, gl: math.MaxUint32}
			for _, m := range g.Providers {
				if valid(m.ID, r) {
					c.survivor = append(c.survivor, m.ID)
					if c.gl == math.MaxUint32 {
						c.gl = m.ID.Node
					}
				}
			}
			cands[g.Name] = append(cands[g.Name], c)
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
		if ok && w.ring == myPrev {
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
		if t, ok := e.timers[name]; ok && t.key == key && winners[name].ring == myPrev {
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
		g, r := newGroups[name], winners[name].ring
		seen := map[ProviderID]bool{}
		add := func(id ProviderID) {
			if !valid(id, r) && !seen[id] {
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
	if len(fails) > 0 {
		e.applyFail(fails)
	}
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
