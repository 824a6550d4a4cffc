package groups

import (
	"slices"
	"time"
)

// member is one provider in a group's membership list.
type member struct {
	ID            ProviderID `json:"id"`
	LocalName     string     `json:"ln,omitempty"`
	ClientVersion int16      `json:"cv,omitempty"`
}

// failEntry is one departing provider with its leave info.
type failEntry struct {
	ID   ProviderID `json:"id"`
	Info LeaveInfo  `json:"li"`
}

// leaveBatch is one queued departure event: the providers that failed
// together (one node, one client), or the target providers one source
// protocol cast out. Batches of one event always run as one protocol; the
// batch-control attribute only decides whether separate events are merged
// (U-8).
type leaveBatch struct {
	Entries     []failEntry `json:"e"`
	SourceState []byte      `json:"ss,omitempty"`
}

// protocol is the running protocol of a group. Every field is replicated.
type protocol struct {
	Seq         uint64       `json:"s"`
	Type        ProtocolType `json:"t"`
	Proposer    ProviderID   `json:"pp"`
	HasProposer bool         `json:"hp,omitempty"`
	Phases      NumPhases    `json:"np"`
	TimeLimit   uint32       `json:"tl,omitempty"`
	Phase       int          `json:"ph"`

	Changing  []ProviderID `json:"ch,omitempty"`
	LeaveInfo []LeaveInfo  `json:"li,omitempty"`
	Joiners   []member     `json:"j,omitempty"`

	CurrentState     []byte      `json:"cs,omitempty"`
	ProposedState    []byte      `json:"ps,omitempty"`
	HasProposedState bool        `json:"hps,omitempty"`
	ProtoMessage     []byte      `json:"pm,omitempty"`
	HasProtoMessage  bool        `json:"hpm,omitempty"`
	VoteMessage      []byte      `json:"vm,omitempty"`
	HasVoteMessage   bool        `json:"hvm,omitempty"`
	SourceState      []byte      `json:"ss,omitempty"`
	HasSourceState   bool        `json:"hss,omitempty"`
	ProposedAttrs    *Attributes `json:"pa,omitempty"`

	// Ballots of the current phase: the voters, then the providers that
	// failed during the protocol (default votes recorded for them in every
	// phase, spec §6.2).
	Ballots []ballot    `json:"b,omitempty"`
	Failed  []failEntry `json:"f,omitempty"`

	Default        VoteValue    `json:"dv"`
	PendingDefault VoteValue    `json:"pdv,omitempty"`
	PhaseState     []byte       `json:"phs,omitempty"`
	HasPhaseState  bool         `json:"hphs,omitempty"`
	PhaseMsg       []byte       `json:"phm,omitempty"`
	HasPhaseMsg    bool         `json:"hphm,omitempty"`
	Summary        SummaryCode  `json:"sc,omitempty"`
	Tardy          []ProviderID `json:"td,omitempty"`

	DeactPhase int    `json:"dp,omitempty"`
	DeactLimit uint32 `json:"dl,omitempty"`
	ExpelCode  uint32 `json:"ec,omitempty"`
	DeactArg   string `json:"da,omitempty"`
}

// group is one group's replica. Every field is replicated, so a snapshot
// (JSON) is the whole state a merging partition needs.
type group struct {
	Name        string       `json:"n"`
	Attrs       Attributes   `json:"a"`
	Providers   []member     `json:"p,omitempty"`
	State       []byte       `json:"s,omitempty"`
	Seq         uint64       `json:"q,omitempty"`
	Proto       *protocol    `json:"pr,omitempty"`
	Fails       []leaveBatch `json:"f,omitempty"`
	CastOuts    []leaveBatch `json:"co,omitempty"`
	Joins       []member     `json:"j,omitempty"`
	Reflections [][]byte     `json:"r,omitempty"`
	// Seen is, per sender node, the id of the last of its messages this
	// group applied (Engine.apply): a message is applied to a group at
	// most once, whichever view delivers it and however often.
	Seen map[NodeID]msgID `json:"sn,omitempty"`
}

// msgID names one message: its sender's engine incarnation and number.
type msgID struct {
	Inc uint64 `json:"i"`
	Num uint64 `json:"n"`
}

func (a msgID) after(b msgID) bool {
	return a.Inc > b.Inc || (a.Inc == b.Inc && a.Num > b.Num)
}

// seen: the group applied from's message id (or a later one of from).
func (g *group) seen(from NodeID, id msgID) bool {
	last, ok := g.Seen[from]
	return ok && !id.after(last)
}

func (g *group) see(from NodeID, id msgID) {
	if last, ok := g.Seen[from]; ok && !id.after(last) {
		return
	}
	if g.Seen == nil {
		g.Seen = map[NodeID]msgID{}
	}
	g.Seen[from] = id
}

// unseen lists the groups m acts on (a group that does not exist counts:
// m may create it), leaving out, for a failure event or a responsiveness
// report, the groups that already applied m. It returns nil when every
// group m names already applied it.
func (e *Engine) unseen(from NodeID, m *wmsg) []string {
	id := msgID{m.Inc, m.Num}
	fresh := func(name string) bool {
		g := e.groups[name]
		return g == nil || !g.seen(from, id)
	}
	switch m.K {
	case kFail, kResp:
		var names []string
		notes := m.Fails[:0:0]
		for _, f := range m.Fails {
			if !fresh(f.G) {
				continue
			}
			notes = append(notes, f)
			if !slices.Contains(names, f.G) {
				names = append(names, f.G)
			}
		}
		m.Fails = notes
		return names
	case kAdapter:
		return []string{} // not a group's: ordered by its own sequence
	default:
		if !fresh(m.G) {
			return nil
		}
		return []string{m.G}
	}
}

// markSeen records m in the groups it acted on that exist now.
func (e *Engine) markSeen(from NodeID, m *wmsg, names []string) {
	for _, name := range names {
		if g := e.groups[name]; g != nil {
			g.see(from, msgID{m.Inc, m.Num})
		}
	}
}

func (g *group) ids() []ProviderID {
	out := make([]ProviderID, len(g.Providers))
	for i, m := range g.Providers {
		out[i] = m.ID
	}
	return out
}

func (g *group) memberIndex(id ProviderID) int {
	for i, m := range g.Providers {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// hasProvider: a member, a joiner of the running join or a queued joiner —
// anything that holds the (node, instance) pair.
func (g *group) hasProvider(id ProviderID) bool {
	if g == nil {
		return false
	}
	if g.memberIndex(id) >= 0 {
		return true
	}
	for _, j := range g.Joins {
		if j.ID == id {
			return true
		}
	}
	if g.Proto != nil {
		for _, j := range g.Proto.Joiners {
			if j.ID == id {
				return true
			}
		}
	}
	return false
}

func (g *group) hasNode(n NodeID) bool {
	if g == nil {
		return false
	}
	for _, m := range g.Providers {
		if m.ID.Node == n {
			return true
		}
	}
	return false
}

// backlevel lists the providers whose client level is below this engine's.
func (g *group) backlevel() []ProviderID {
	var out []ProviderID
	for _, m := range g.Providers {
		if m.ClientVersion != 0 && m.ClientVersion < ClientVersionLevel {
			out = append(out, m.ID)
		}
	}
	return out
}

func (p *protocol) ballot(id ProviderID) *ballot {
	if p == nil {
		return nil
	}
	for i := range p.Ballots {
		if p.Ballots[i].P == id {
			return &p.Ballots[i]
		}
	}
	return nil
}

func (p *protocol) failed(id ProviderID) bool {
	for _, f := range p.Failed {
		if f.ID == id {
			return true
		}
	}
	return false
}

func (p *protocol) isChanging(id ProviderID) bool {
	for _, c := range p.Changing {
		if c == id {
			return true
		}
	}
	return false
}

// ---- applying requests ----

func (e *Engine) delayedError(group string, id ProviderID, typ ProtocolType, err Error, req *Request) {
	e.tell(group, id, Notification{Type: NotifyDelayedError, Protocol: typ, Err: err, FailingRequest: req})
}

// joinFailed reports an asynchronous join error to the joiner's node and
// kills the token there.
func (e *Engine) joinFailed(m *wmsg, err Error) {
	req := &Request{Protocol: ProtoJoin, Join: &JoinArgs{Attributes: *m.Attrs, Instance: m.P.Instance, LocalName: m.LocalName}}
	e.delayedError(m.G, m.P, ProtoJoin, err, req)
	if m.P.Node == e.node {
		if tok, ok := e.byProv[provKey{m.G, m.P.Instance}]; ok && !e.tokens[tok].member {
			e.dropToken(tok)
		}
	}
}

func (e *Engine) applyJoin(m *wmsg) {
	if m.Attrs == nil {
		return
	}
	at := *m.Attrs
	if err := at.validate(); err != nil {
		e.joinFailed(m, Code(err))
		return
	}
	if reservedName(at.GroupName) || at.GroupName != m.G {
		e.joinFailed(m, ErrInvalidGroup)
		return
	}
	g := e.groups[m.G]
	if g == nil {
		if err := e.checkSource(at, m.P.Node); err != nil {
			e.joinFailed(m, Code(err))
			return
		}
		g = &group{Name: m.G, Attrs: at.norm()}
		e.groups[m.G] = g
	} else {
		if !at.sameAs(g.Attrs) {
			e.joinFailed(m, ErrBadGroupAttributes)
			return
		}
		if g.hasProvider(m.P) {
			e.joinFailed(m, ErrDuplicateInstance)
			return
		}
		if src := g.Attrs.SourceGroupName; src != "" && !e.groups[src].hasNode(m.P.Node) {
			e.joinFailed(m, ErrNoSourceGroupProvider)
			return
		}
	}
	g.Joins = append(g.Joins, member{ID: m.P, LocalName: m.LocalName, ClientVersion: at.norm().ClientVersion})
	e.startNext(g)
}

// applyProposal starts a provider's proposal, or refuses it with an
// asynchronous COLLIDE when the group is busy: the first proposal in the
// total order wins (U-16).
func (e *Engine) applyProposal(m *wmsg) {
	g := e.groups[m.G]
	if g == nil || g.memberIndex(m.P) < 0 {
		return // the proposer left before its proposal was ordered
	}
	var typ ProtocolType
	var req Request
	switch m.K {
	case kLeave:
		typ = ProtoLeave
		req.Leave = &LeaveArgs{NumPhases: m.Phases, TimeLimit: m.Limit, LeaveCode: m.Code}
	case kExpel:
		typ = ProtoExpel
		req.Expel = &ExpelArgs{NumPhases: m.Phases, TimeLimit: m.Limit, List: m.List, ExpelCode: m.Code,
			DeactivatePhase: m.DPhase, DeactivateTimeLimit: m.DLimit, DeactivateArgument: m.DArg}
	case kState:
		typ = ProtoStateValueChange
		req.State = &StateChangeArgs{NumPhases: m.Phases, TimeLimit: m.Limit, NewState: m.Value}
	case kMessage:
		typ = ProtoProviderMessage
		req.Message = &MessageArgs{NumPhases: m.Phases, TimeLimit: m.Limit, Message: m.Msg}
	case kAttrs:
		typ = ProtoGroupAttributeChange
		if m.Attrs != nil {
			req.Attrs = &AttributesArgs{NumPhases: m.Phases, TimeLimit: m.Limit, Attributes: *m.Attrs}
		}
	}
	req.Protocol = typ
	if g.busy() {
		e.delayedError(g.Name, m.P, typ, ErrCollide, &req)
		return
	}
	if !m.Phases.valid() || m.Limit > MaxTimeLimit {
		e.delayedError(g.Name, m.P, typ, ErrBadParameter, &req)
		return
	}
	p := &protocol{Type: typ, Proposer: m.P, HasProposer: true, Phases: m.Phases.norm(), TimeLimit: m.Limit}
	switch typ {
	case ProtoLeave:
		p.Changing = []ProviderID{m.P}
		p.LeaveInfo = []LeaveInfo{{Reason: ProviderLeft, Code: m.Code}}
	case ProtoExpel:
		if len(m.List) == 0 {
			e.delayedError(g.Name, m.P, typ, ErrBadParameter, &req)
			return
		}
		for _, id := range m.List {
			if g.memberIndex(id) < 0 {
				e.delayedError(g.Name, m.P, typ, ErrUnknownProvider, &req)
				return
			}
		}
		p.Changing = append([]ProviderID(nil), m.List...)
		for range m.List {
			p.LeaveInfo = append(p.LeaveInfo, LeaveInfo{Reason: ProviderExpelled, Code: m.Code})
		}
		p.DeactPhase, p.DeactLimit, p.ExpelCode, p.DeactArg = m.DPhase, m.DLimit, m.Code, m.DArg
		if p.DeactLimit == 0 {
			p.DeactLimit = m.Limit
		}
	case ProtoStateValueChange:
		if !m.HasValue {
			e.delayedError(g.Name, m.P, typ, ErrBadParameter, &req)
			return
		}
		p.ProposedState, p.HasProposedState = nonNil(m.Value), true
	case ProtoProviderMessage:
		p.ProtoMessage, p.HasProtoMessage = nonNil(m.Msg), true
	case ProtoGroupAttributeChange:
		if m.Attrs == nil || m.Attrs.GroupName != g.Name || m.Attrs.SourceGroupName != g.Attrs.SourceGroupName || m.Attrs.validate() != nil {
			e.delayedError(g.Name, m.P, typ, ErrBadGroupAttributes, &req)
			return
		}
		if bl := g.backlevel(); len(bl) > 0 {
			req.BacklevelProviders = bl
			e.delayedError(g.Name, m.P, typ, ErrBacklevelProviders, &req)
			return
		}
		a := m.Attrs.norm()
		p.ProposedAttrs = &a
	}
	e.start(g, p)
}

func (e *Engine) applyVote(m *wmsg) {
	g := e.groups[m.G]
	if g == nil || g.Proto == nil {
		return
	}
	p := g.Proto
	if p.Seq != m.Seq || p.Phase != m.Phase || p.Phases != NPhase {
		return // late: the phase it answered is closed (§6.2 "late votes")
	}
	b := p.ballot(m.P)
	if b == nil || b.Failed || b.NoVote || b.Voted {
		return
	}
	if m.Vote != VoteApprove && m.Vote != VoteContinue && m.Vote != VoteReject {
		return
	}
	b.Voted, b.Value = true, m.Vote
	if e.traced[g.Name] {
		e.trace(TraceEvent{Kind: TraceVote, Group: g.Name, Seq: p.Seq, Phase: p.Phase, Provider: m.P,
			Vote: m.Vote, Default: m.Default, HasState: m.HasValue, HasMessage: m.HasMsg})
	}
	p.PendingDefault = combineDefault(p.PendingDefault, m.Default)
	// "first candidate received" (§6.2): the first in the total order.
	if m.HasValue && !p.HasPhaseState {
		p.PhaseState, p.HasPhaseState = nonNil(m.Value), true
	}
	if m.HasMsg && !p.HasPhaseMsg {
		p.PhaseMsg, p.HasPhaseMsg = nonNil(m.Msg), true
	}
	e.checkPhase(g)
}

func (e *Engine) applyTimeout(m *wmsg) {
	g := e.groups[m.G]
	if g == nil || g.Proto == nil || g.Proto.Seq != m.Seq || g.Proto.Phase != m.Phase {
		return
	}
	if e.traced[g.Name] {
		e.trace(TraceEvent{Kind: TraceTimeout, Group: g.Name, Seq: m.Seq, Phase: m.Phase})
	}
	e.endPhase(g, true)
}

func (e *Engine) applyDeact(m *wmsg) {
	g := e.groups[m.G]
	if g == nil || g.Proto == nil || g.Proto.Seq != m.Seq || g.Proto.DeactPhase != g.Proto.Phase {
		return
	}
	b := g.Proto.ballot(m.P)
	if b == nil || b.Failed || b.Deact != deactivatePending {
		return
	}
	b.Deact = m.Deact
	if e.traced[g.Name] {
		e.trace(TraceEvent{Kind: TraceDeactivate, Group: g.Name, Seq: m.Seq, Phase: g.Proto.Phase, Provider: m.P, Deactivate: m.Deact})
	}
	e.checkPhase(g)
}

func (e *Engine) applyResp(m *wmsg) {
	code := ResponsivenessNoResponse
	if m.Responding {
		code = ResponsivenessResponse
	}
	byGroup := map[string][]ProviderID{}
	for _, f := range m.Fails {
		if g := e.groups[f.G]; g != nil && g.memberIndex(f.P) >= 0 {
			byGroup[f.G] = append(byGroup[f.G], f.P)
		}
	}
	for _, name := range sortedKeys(byGroup) {
		for _, id := range e.groups[name].ids() {
			e.tell(name, id, Notification{Type: NotifyAnnouncement, Summary: code, Announcement: byGroup[name]})
		}
	}
}

// applyFail is one failure event: every listed provider fails at once.
// A provider that is voting in a running protocol gets its default vote
// (PROVIDER_FAILED) and that protocol finishes first; the failure leave is
// queued behind it (spec §1.11).
func (e *Engine) applyFail(notes []failNote) {
	byGroup := map[string][]failEntry{}
	for _, n := range notes {
		byGroup[n.G] = append(byGroup[n.G], failEntry{ID: n.P, Info: n.Info})
	}
	for _, name := range sortedKeys(byGroup) {
		g := e.groups[name]
		if g == nil {
			continue
		}
		var queued []failEntry
		for _, f := range byGroup[name] {
			// A queued joiner simply disappears: it never was a member.
			for i, j := range g.Joins {
				if j.ID == f.ID {
					g.Joins = append(g.Joins[:i:i], g.Joins[i+1:]...)
					e.forget(name, f.ID)
					break
				}
			}
			if p := g.Proto; p != nil && !p.failed(f.ID) && !(p.Type.cannotVeto() && p.isChanging(f.ID)) {
				if b := p.ballot(f.ID); b != nil || g.memberIndex(f.ID) >= 0 || isJoiner(p, f.ID) {
					p.Failed = append(p.Failed, f)
					// A vote already cast in this phase stands; the default
					// vote replaces it from the next phase on.
					if b != nil && (!b.Voted || b.Deact == deactivatePending) {
						b.Failed = true
					} else if b == nil && p.Phase > 0 && (g.memberIndex(f.ID) >= 0 || isJoiner(p, f.ID)) && p.Phases == NPhase {
						p.Ballots = append(p.Ballots, ballot{P: f.ID, Failed: true, Deact: deactivateNotNeeded})
					}
				}
			}
			if g.memberIndex(f.ID) >= 0 && !queuedFail(queued, f.ID) {
				queued = append(queued, f)
			}
		}
		if len(queued) > 0 {
			g.Fails = append(g.Fails, leaveBatch{Entries: queued})
		}
		if g.Proto != nil {
			e.checkPhase(g)
		} else {
			e.startNext(g)
		}
	}
}

func isJoiner(p *protocol, id ProviderID) bool {
	for _, j := range p.Joiners {
		if j.ID == id {
			return true
		}
	}
	return false
}

func queuedFail(q []failEntry, id ProviderID) bool {
	for _, f := range q {
		if f.ID == id {
			return true
		}
	}
	return false
}

// forget drops the local token of a provider that is no longer anything in
// the group (rejected or vanished joiner, departed member).
func (e *Engine) forget(group string, id ProviderID) {
	if id.Node != e.node {
		return
	}
	if tok, ok := e.byProv[provKey{group, id.Instance}]; ok {
		e.dropToken(tok)
	}
}

// ---- running protocols ----

// startNext starts the next queued protocol of an idle group, in the order
// of U-8: failure leaves, cast-outs, joins (all membership changes before
// any state change, §1.3), then source-state reflections. A group with no
// providers and nothing queued is dissolved.
func (e *Engine) startNext(g *group) {
	for g.Proto == nil {
		bc := g.Attrs.BatchControl
		switch {
		case len(g.Fails) > 0 || len(g.CastOuts) > 0:
			typ, q := ProtoFailureLeave, &g.Fails
			if len(g.Fails) == 0 {
				typ, q = ProtoCastOut, &g.CastOuts
			}
			n := 1
			if bc&BatchLeaves != 0 {
				n = len(*q)
			}
			var entries []failEntry
			var src []byte
			for _, b := range (*q)[:n] {
				for _, f := range b.Entries {
					if g.memberIndex(f.ID) >= 0 && !queuedFail(entries, f.ID) {
						entries = append(entries, f)
					}
				}
				src = b.SourceState
			}
			*q = (*q)[n:]
			if len(entries) == 0 {
				continue
			}
			p := &protocol{Type: typ, Phases: g.Attrs.NumPhases, TimeLimit: g.Attrs.TimeLimit}
			if typ == ProtoCastOut {
				p.Phases, p.TimeLimit = g.Attrs.SourceReflectionNumPhases, g.Attrs.SourceProtocolTimeLimit
				p.SourceState, p.HasSourceState = nonNil(src), true
			}
			for _, f := range entries {
				p.Changing = append(p.Changing, f.ID)
				p.LeaveInfo = append(p.LeaveInfo, f.Info)
			}
			e.start(g, p)
		case len(g.Joins) > 0:
			n := 1
			if bc&BatchJoins != 0 {
				n = len(g.Joins)
			}
			p := &protocol{Type: ProtoJoin, Phases: g.Attrs.NumPhases, TimeLimit: g.Attrs.TimeLimit}
			p.Joiners = append([]member(nil), g.Joins[:n]...)
			g.Joins = g.Joins[n:]
			for _, j := range p.Joiners {
				p.Changing = append(p.Changing, j.ID)
			}
			e.start(g, p)
		case len(g.Reflections) > 0:
			src := g.Reflections[0]
			g.Reflections = g.Reflections[1:]
			if len(g.Providers) == 0 {
				continue
			}
			p := &protocol{Type: ProtoSourceStateReflection, Phases: g.Attrs.SourceReflectionNumPhases,
				TimeLimit: g.Attrs.SourceProtocolTimeLimit, SourceState: nonNil(src), HasSourceState: true}
			e.start(g, p)
		default:
			if len(g.Providers) == 0 && e.groups[g.Name] == g {
				delete(e.groups, g.Name)
				delete(e.timers, g.Name)
			}
			return
		}
	}
}

func (e *Engine) start(g *group, p *protocol) {
	// Providers whose own failure leave is queued have failed already:
	// this protocol neither waits for nor tells them, as if they had
	// failed during it (§1.11). Otherwise a failure leave started for one
	// of several clients that went away one after the other would wait for
	// the votes of the others, for ever in a group with no time limit.
	for _, b := range g.Fails {
		for _, f := range b.Entries {
			if g.memberIndex(f.ID) >= 0 && !p.isChanging(f.ID) && !p.failed(f.ID) {
				p.Failed = append(p.Failed, f)
			}
		}
	}
	g.Seq++
	p.Seq = g.Seq
	p.CurrentState = g.State
	p.Default = g.Attrs.norm().DefaultVote
	g.Proto = p
	if p.Phases == NPhase {
		e.beginPhase(g)
		return
	}
	p.Phase = 1
	if p.Type == ProtoExpel && p.DeactPhase == 1 {
		// A one-phase expel still waits for the scripts: their outcome is
		// reported in the approved notification (U-10).
		for _, id := range p.Changing {
			p.Ballots = append(p.Ballots, ballot{P: id, NoVote: true, Deact: deactivatePending})
		}
		e.requestDeactivations(g)
		e.armTimer(g, p.DeactLimit)
		e.checkPhase(g)
		return
	}
	e.finish(g, true)
}

// beginPhase opens the next voting phase: a barrier — its n-phase
// notifications go out only once the previous phase is closed on this
// replica, and every replica closes it at the same point of the stream.
func (e *Engine) beginPhase(g *group) {
	p := g.Proto
	p.Phase++
	var voters []ProviderID
	if p.Phase == 1 {
		for _, m := range g.Providers {
			if p.Type == ProtoFailureLeave && p.isChanging(m.ID) {
				continue // the failed do not vote on their own failure
			}
			if !p.failed(m.ID) {
				voters = append(voters, m.ID)
			}
		}
		for _, j := range p.Joiners {
			if !p.failed(j.ID) {
				voters = append(voters, j.ID)
			}
		}
	} else {
		for _, b := range p.Ballots {
			if !b.Failed && !b.NoVote && !p.failed(b.P) {
				voters = append(voters, b.P)
			}
		}
	}
	p.Ballots = p.Ballots[:0]
	for _, v := range voters {
		b := ballot{P: v, Deact: deactivateNotNeeded}
		if p.Type == ProtoExpel && p.DeactPhase == p.Phase && p.isChanging(v) {
			b.Deact = deactivatePending
		}
		p.Ballots = append(p.Ballots, b)
	}
	for _, f := range p.Failed {
		p.Ballots = append(p.Ballots, ballot{P: f.ID, Failed: true, Deact: deactivateNotNeeded})
	}
	p.PendingDefault = NullVote
	p.PhaseState, p.HasPhaseState = nil, false
	p.PhaseMsg, p.HasPhaseMsg = nil, false
	prop := e.proposal(g, p, false)
	for _, v := range voters {
		e.tell(g.Name, v, Notification{Type: NotifyNPhase, Protocol: p.Type, Summary: p.Summary, Proposal: copyProposal(prop)})
	}
	// A vote's message is delivered once, with the next notification.
	p.VoteMessage, p.HasVoteMessage = nil, false
	limit := p.TimeLimit
	if p.Type == ProtoExpel && p.DeactPhase == p.Phase {
		e.requestDeactivations(g)
		if limit > 0 && p.DeactLimit > limit {
			limit = p.DeactLimit
		}
	}
	e.armTimer(g, limit)
	e.checkPhase(g)
}

// armTimer starts the current phase's time limit on this replica (0 = no
// limit). Replicas see the phase start at slightly different times; only
// the representative's view matters, because only it sends the time-out.
func (e *Engine) armTimer(g *group, limit uint32) {
	delete(e.timers, g.Name)
	if limit == 0 {
		return
	}
	p := g.Proto
	e.timers[g.Name] = phaseTimer{key: phaseKey{g.Name, p.Seq, p.Phase},
		deadline: e.now.Add(time.Duration(limit) * time.Second)}
}

// requestDeactivations asks the agent to run the deactivate scripts of this
// node's expelled providers; a provider without a script succeeds at once
// (U-9), through the ordered stream like any result.
func (e *Engine) requestDeactivations(g *group) {
	p := g.Proto
	for _, b := range p.Ballots {
		if b.Deact != deactivatePending || b.P.Node != e.node {
			continue
		}
		id := DeactivationID{Group: g.Name, Seq: p.Seq, Provider: b.P}
		tok, ok := e.byProv[provKey{g.Name, b.P.Instance}]
		if !ok || e.tokens[tok].script == "" {
			e.send(&wmsg{K: kDeact, G: g.Name, P: b.P, Seq: p.Seq, Deact: DeactivateOK})
			continue
		}
		ti := e.tokens[tok]
		e.ready.Deactivations = append(e.ready.Deactivations, Deactivation{ID: id, Client: ti.client, Token: tok,
			Script: ti.script, ExpelCode: p.ExpelCode, Argument: p.DeactArg,
			TimeLimit: time.Duration(p.DeactLimit) * time.Second})
	}
}

func (e *Engine) checkPhase(g *group) {
	p := g.Proto
	if p == nil || p.Phase == 0 {
		return
	}
	for _, b := range p.Ballots {
		if !b.complete() {
			return
		}
	}
	e.endPhase(g, false)
}

// endPhase closes the current phase (all ballots in, or the time limit
// delivered) and moves the protocol on.
func (e *Engine) endPhase(g *group, timedOut bool) {
	p := g.Proto
	if p.PendingDefault != NullVote {
		p.Default = p.PendingDefault
	}
	p.PendingDefault = NullVote
	r := tally(p.Type, p.Phases == OnePhase, p.Default, p.Ballots, timedOut)
	p.Summary |= r.Summary
	for _, t := range r.Tardy {
		if !containsID(p.Tardy, t) {
			p.Tardy = append(p.Tardy, t)
		}
	}
	if p.HasPhaseState {
		p.ProposedState, p.HasProposedState = p.PhaseState, true
	}
	if p.HasPhaseMsg {
		p.VoteMessage, p.HasVoteMessage = p.PhaseMsg, true
	}
	delete(e.timers, g.Name)
	switch r.Outcome {
	case outcomeContinue:
		e.beginPhase(g)
	case outcomeApproved:
		e.finish(g, true)
	default:
		e.finish(g, false)
	}
}

func containsID(s []ProviderID, id ProviderID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

// proposal builds the proposal block of a notification. final: the
// protocol has ended with approved.
func (e *Engine) proposal(g *group, p *protocol, approved bool) *Proposal {
	pr := &Proposal{
		Phase:             PhaseInfo{Number: p.Phase, NumPhases: p.Phases, TimeLimit: p.TimeLimit},
		CurrentState:      clone(p.CurrentState),
		CurrentMembership: g.ids(),
		CurrentAttributes: g.Attrs,
	}
	if len(p.Changing) > 0 {
		pr.WhatsChanged |= ChangedMembership
		pr.ChangingMembership = append([]ProviderID(nil), p.Changing...)
		if p.Type != ProtoJoin {
			pr.LeaveInfo = append([]LeaveInfo(nil), p.LeaveInfo...)
		}
	}
	pr.ProposedMembership = e.proposedMembership(g, p)
	if p.HasProposedState {
		pr.WhatsChanged |= ChangedState
		pr.ProposedState, pr.HasProposedState = clone(nonNil(p.ProposedState)), true
	}
	switch {
	case p.HasVoteMessage:
		pr.Message, pr.HasMessage = clone(nonNil(p.VoteMessage)), true
	case p.HasProtoMessage:
		pr.Message, pr.HasMessage = clone(nonNil(p.ProtoMessage)), true
	}
	if pr.HasMessage {
		pr.WhatsChanged |= ChangedMessage
	}
	if p.HasSourceState {
		pr.WhatsChanged |= ChangedSourceState
		pr.SourceState, pr.HasSourceState = clone(nonNil(p.SourceState)), true
	}
	if p.ProposedAttrs != nil {
		pr.WhatsChanged |= ChangedAttributes
		a := *p.ProposedAttrs
		pr.ProposedAttributes = &a
	}
	return pr
}

// proposedMembership is the membership the protocol would leave.
func (e *Engine) proposedMembership(g *group, p *protocol) []ProviderID {
	out := g.ids()
	switch {
	case p.Type == ProtoJoin:
		for _, j := range p.Joiners {
			if !p.failed(j.ID) {
				out = append(out, j.ID)
			}
		}
	case p.Type.isDeparture():
		out = out[:0]
		for _, m := range g.Providers {
			if !p.isChanging(m.ID) {
				out = append(out, m.ID)
			}
		}
	}
	return out
}

func copyProposal(p *Proposal) *Proposal {
	c := *p
	return &c
}

// finish ends the running protocol: apply the outcome, tell the providers
// (approved/rejected, then the tardy announcement), tell the subscribers,
// drive the target groups, and start whatever is queued.
func (e *Engine) finish(g *group, approved bool) {
	p := g.Proto
	// Recipients: the members during the protocol plus the joiners, minus
	// the failed (U-4).
	var recipients []ProviderID
	for _, m := range g.Providers {
		if !p.failed(m.ID) && !(p.Type == ProtoFailureLeave && p.isChanging(m.ID)) {
			recipients = append(recipients, m.ID)
		}
	}
	for _, j := range p.Joiners {
		if !p.failed(j.ID) {
			recipients = append(recipients, j.ID)
		}
	}
	prop := e.proposal(g, p, approved)
	summary := p.Summary

	changesMembership := (approved && (p.Type == ProtoJoin || p.Type.isDeparture())) || (!approved && p.Type.cannotVeto())
	stateChanged := approved && p.HasProposedState && !bytesEqual(nonNil(p.ProposedState), nonNil(g.State))
	var joined, left []ProviderID
	if changesMembership {
		if p.Type == ProtoJoin {
			for _, j := range p.Joiners {
				if !p.failed(j.ID) {
					g.Providers = append(g.Providers, j)
					joined = append(joined, j.ID)
				}
			}
		} else {
			kept := g.Providers[:0:0]
			for _, m := range g.Providers {
				if p.isChanging(m.ID) {
					left = append(left, m.ID)
				} else {
					kept = append(kept, m)
				}
			}
			g.Providers = kept
		}
	}
	if approved && p.HasProposedState {
		g.State = nonNil(p.ProposedState)
	}
	if approved && p.ProposedAttrs != nil {
		a := *p.ProposedAttrs
		a.GroupName, a.SourceGroupName = g.Name, g.Attrs.SourceGroupName
		g.Attrs = a
	}
	g.Proto = nil
	delete(e.timers, g.Name)

	typ := NotifyApproved
	if !approved {
		typ = NotifyRejected
	}
	for _, r := range recipients {
		e.tell(g.Name, r, Notification{Type: typ, Protocol: p.Type, Summary: summary, Proposal: copyProposal(prop)})
	}
	// Local tokens follow the outcome.
	if p.Type == ProtoJoin {
		for _, j := range p.Joiners {
			if j.ID.Node != e.node {
				continue
			}
			if tok, ok := e.byProv[provKey{g.Name, j.ID.Instance}]; ok {
				if approved && !p.failed(j.ID) {
					e.tokens[tok].member = true
				} else {
					e.dropToken(tok)
				}
			}
		}
	}
	for _, id := range left {
		e.forget(g.Name, id)
	}
	if len(p.Tardy) > 0 {
		for _, id := range g.ids() {
			e.tell(g.Name, id, Notification{Type: NotifyAnnouncement, Summary: TimeLimitExceeded,
				Announcement: append([]ProviderID(nil), p.Tardy...)})
		}
	}
	if len(joined) > 0 || len(left) > 0 || stateChanged {
		e.notifySubscribers(g, joined, left, stateChanged)
	}
	// Failed providers that are still members leave next: their failure
	// batch was queued when they failed.
	e.driveTargets(g, left, stateChanged)
	if len(g.Providers) == 0 {
		e.dissolve(g)
	}
	e.startNext(g)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// notifySubscribers sends one subscription notification per subscriber for
// an approved change (U-18), after the providers have been told.
func (e *Engine) notifySubscribers(g *group, joined, left []ProviderID, stateChanged bool) {
	for _, tok := range append([]Token(nil), e.subs[g.Name]...) {
		ti := e.tokens[tok]
		n := Notification{Type: NotifySubscription}
		if stateChanged && ti.control&SubscribeState != 0 {
			n.SubscriptionType |= SubscriptionState
			n.State = clone(g.State)
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
			n.FullMembership = g.ids()
		}
		e.emit(tok, ti, g.Name, n)
	}
}

// dissolve: the last provider is gone (U-27). Subscribers are told and
// their subscriptions end; the state value and attributes are forgotten
// unless queued joins re-create the group at once.
func (e *Engine) dissolve(g *group) {
	for _, tok := range append([]Token(nil), e.subs[g.Name]...) {
		ti := e.tokens[tok]
		e.emit(tok, ti, g.Name, Notification{Type: NotifySubscription, SubscriptionType: SubscriptionDissolved})
		e.dropToken(tok)
	}
	g.State = nil
	g.Fails, g.CastOuts, g.Reflections = nil, nil, nil
}

// driveTargets is U-11: after a source protocol, cast out target providers
// on nodes left without a source provider, and reflect a new source state
// into every target. Source protocols never wait for target protocols.
func (e *Engine) driveTargets(src *group, left []ProviderID, stateChanged bool) {
	if len(left) == 0 && !stateChanged {
		return
	}
	gone := map[NodeID]bool{}
	for _, id := range left {
		if !src.hasNode(id.Node) {
			gone[id.Node] = true
		}
	}
	// Only the target groups, in name order: sorting every group's name
	// here made a node's failure quadratic in the number of groups (56 s
	// under the agent's lock with 10,000 groups).
	var targets []string
	for name, t := range e.groups {
		if t.Attrs.SourceGroupName == src.Name {
			targets = append(targets, name)
		}
	}
	slices.Sort(targets)
	for _, name := range targets {
		t := e.groups[name]
		var batch []failEntry
		for _, m := range t.Providers {
			if gone[m.ID.Node] {
				batch = append(batch, failEntry{ID: m.ID, Info: LeaveInfo{Reason: ProviderCastOut}})
			}
		}
		if len(batch) > 0 {
			t.CastOuts = append(t.CastOuts, leaveBatch{Entries: batch, SourceState: nonNil(src.State)})
		}
		if stateChanged {
			t.Reflections = append(t.Reflections, nonNil(clone(src.State)))
		}
		e.startNext(t)
	}
}
