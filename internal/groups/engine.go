package groups

import (
	"bytes"
	"sort"
	"time"

	"github.com/conclave/conclave/internal/service"
)

// Config configures one node's engine.
type Config struct {
	// Node is this node's membership id; providers of local clients get it
	// as their node number.
	Node NodeID
	// MaxState and MaxMessage bound state values and provider messages in
	// bytes (spec U-6); 0 means DefaultMaxState / DefaultMaxMessage.
	MaxState   int
	MaxMessage int
	// Incarnation identifies this run of the node's engine: it must be
	// greater than that of any earlier engine of Node (the agent passes
	// the membership incarnation). Every message the engine broadcasts is
	// named by (Node, Incarnation, a counter), and the replicas apply each
	// at most once (see Deliver).
	Incarnation uint64
}

// Engine is the group-services replicated state machine of one node. Every
// node applies the same ordered stream (requests, votes, time-outs, view
// changes) to its full replica of every group, so every node knows every
// protocol's outcome without a leader; each then tells only its own clients.
// Local requests validate against the local replica (synchronous errors)
// and broadcast; their outcome comes back through Ready.
//
// An Engine is not safe for concurrent use: the service host calls it under
// its lock. It takes time only from its arguments.
type Engine struct {
	cfg  Config
	node NodeID
	now  time.Time

	// The installed view, and how many of its deliveries this replica
	// has applied (its position in the view's total order).
	ring      RingID
	members   []NodeID
	installed bool
	pos       uint64

	// lastNum numbers this engine's messages (wmsg.Num).
	lastNum uint64

	// groups is the replicated state: identical on every member of the
	// view after the same deliveries.
	groups map[string]*group

	// Local, not replicated: tokens of this node's clients.
	tokens map[Token]*tokenInfo
	byProv map[provKey]Token
	// byClient indexes tokens by client, so a client's calls and its
	// departure cost what the client holds, not what the node holds.
	byClient map[ClientID]map[Token]struct{}
	subs     map[string][]Token
	nextTok  Token
	voted    map[Token]phaseKey

	// Phase timers of running protocols, as this node saw them start. Only
	// the ring representative acts on them: it broadcasts a time-out, and
	// the first one delivered closes the phase on every replica.
	timers      map[string]phaseTimer
	timeoutSent map[phaseKey]bool

	// The sync step in progress.
	syncing    bool
	syncRing   RingID
	syncFrom   lineage // this replica's lineage, as sent in the sync step
	syncCopies map[NodeID]*syncCopy
	buffered   []delivery

	host []NodeID // the host-membership system group
	// adapters is the adapter-membership system groups' replica: each
	// member's adapters as it announced them (adapter.go).
	adapters map[NodeID]adState

	// Local: this node's adapters as the agent reports them, the last
	// announcement's sequence number, and the set it announced.
	adLocal map[int]bool
	adSeq   uint64
	adSent  []int

	syncOut, normOut [][]byte
	ready            Ready

	traced map[string]bool // groups whose steps go to Ready.Trace
}

type tokenInfo struct {
	client  ClientID
	group   string
	sub     bool
	member  bool // provider whose join was approved (false: joining)
	inst    int16
	script  string
	control SubscriptionControl
	// A provider's join: its message number and local name.
	joinNum   uint64
	localName string
}

type provKey struct {
	group string
	inst  int16
}

type phaseKey struct {
	group string
	seq   uint64
	phase int
}

type phaseTimer struct {
	key      phaseKey
	deadline time.Time
}

type delivery struct {
	ring    RingID
	from    NodeID
	payload []byte
}

var _ service.Service = (*Engine)(nil)

// New returns an engine with no groups, waiting for its first view.
func New(cfg Config) *Engine {
	if cfg.MaxState <= 0 {
		cfg.MaxState = DefaultMaxState
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	return &Engine{
		cfg:         cfg,
		node:        cfg.Node,
		groups:      map[string]*group{},
		tokens:      map[Token]*tokenInfo{},
		byProv:      map[provKey]Token{},
		byClient:    map[ClientID]map[Token]struct{}{},
		subs:        map[string][]Token{},
		voted:       map[Token]phaseKey{},
		timers:      map[string]phaseTimer{},
		timeoutSent: map[phaseKey]bool{},
		adapters:    map[NodeID]adState{},
		adLocal:     map[int]bool{},
	}
}

// Name is for logs.
func (e *Engine) Name() string { return "groups" }

// NodeNumber is ha_gs_get_node_number.
func (e *Engine) NodeNumber() NodeID { return e.node }

// Ready takes the notifications and deactivate-script requests produced
// since the last call.
func (e *Engine) Ready() Ready {
	r := e.ready
	e.ready = Ready{}
	return r
}

// Output takes the messages to broadcast (service.Service).
func (e *Engine) Output() (sync, normal [][]byte) {
	sync, normal = e.syncOut, e.normOut
	e.syncOut, e.normOut = nil, nil
	return sync, normal
}

// SyncReady: the whole snapshot is queued at Nodelist, so the step is done
// once the host has taken it.
func (e *Engine) SyncReady(ring RingID) bool {
	return e.syncing && ring == e.syncRing && len(e.syncOut) == 0
}

// send broadcasts m, named by this engine's next message id.
func (e *Engine) send(m *wmsg) {
	e.lastNum++
	m.Inc, m.Num = e.cfg.Incarnation, e.lastNum
	e.normOut = append(e.normOut, encode(m))
}

// DeliverRepeats (service.RepeatDeliverer): the engine wants the messages
// the membership marks as repeats. A repeat is a message this node
// delivered in an earlier view and its sender re-sent because its own
// partition lost it; whether this replica applied it depends on where the
// replica comes from, not on this node: a merge may have replaced a group
// with another partition's copy, which never saw the message. So the
// engine decides itself, by message id, per group (see apply).
func (e *Engine) DeliverRepeats() bool { return true }

// Deliver applies one message of the total order (service.Service).
// Messages that arrive between Nodelist and Installed are held until the
// view's groups are reconciled, so that every replica applies them to the
// same state. Repeats come too (DeliverRepeats): every member of the view
// sees the same sequence, and apply skips what the replica already holds.
func (e *Engine) Deliver(now time.Time, ring RingID, from NodeID, payload []byte, sync bool) {
	e.now = now
	if sync {
		e.deliverSync(ring, from, payload)
		return
	}
	if e.syncing {
		e.buffered = append(e.buffered, delivery{ring, from, payload})
		return
	}
	e.apply(from, payload)
}

// apply applies one delivery of the installed view. A message names the
// groups it acts on; each group records the last message id of every
// sender it applied (group.Seen), and a message a group already applied
// (a repeat, or a re-send after a view change) is skipped for that group.
// A sender's messages reach any lineage of a replica in the order it sent
// them (the membership layer re-sends in order what its sender's view lost),
// so the last id per sender is enough.
func (e *Engine) apply(from NodeID, payload []byte) {
	e.pos++
	m, err := decode(payload)
	if err != nil {
		return // not ours or corrupt: every replica drops it alike
	}
	var touched []string
	if m.Num != 0 {
		if touched = e.unseen(from, m); touched == nil {
			return
		}
		defer e.markSeen(from, m, touched)
	}
	switch m.K {
	case kJoin:
		e.applyJoin(m)
	case kLeave, kExpel, kState, kMessage, kAttrs:
		e.applyProposal(m)
	case kVote:
		e.applyVote(m)
	case kTimeout:
		e.applyTimeout(m)
	case kFail:
		e.applyFail(m.Fails)
	case kDeact:
		e.applyDeact(m)
	case kResp:
		e.applyResp(m)
	case kAdapter:
		e.applyAdapter(from, m)
	}
}

// Tick lets time pass: the representative broadcasts the time-outs of
// phases whose limit has passed. Only the representative sends, so one
// time-out per phase is the common case; a duplicate (after a view change)
// is ignored by every replica because it names a closed phase.
func (e *Engine) Tick(now time.Time) {
	e.now = now
	if !e.isRep() {
		return
	}
	for _, name := range sortedKeys(e.timers) {
		t := e.timers[name]
		if t.deadline.After(now) || e.timeoutSent[t.key] {
			continue
		}
		e.timeoutSent[t.key] = true
		e.send(&wmsg{K: kTimeout, G: t.key.group, Seq: t.key.seq, Phase: t.key.phase})
	}
}

// NextTick is the earliest phase deadline this node must act on.
func (e *Engine) NextTick() time.Time {
	if !e.isRep() {
		return time.Time{}
	}
	var next time.Time
	for _, t := range e.timers {
		if e.timeoutSent[t.key] {
			continue
		}
		if next.IsZero() || t.deadline.Before(next) {
			next = t.deadline
		}
	}
	return next
}

func (e *Engine) isRep() bool { return e.installed && !e.syncing && e.ring.Rep == e.node }

// ---- local requests ----

func (e *Engine) newToken(ti *tokenInfo) Token {
	e.nextTok++
	e.tokens[e.nextTok] = ti
	if e.byClient[ti.client] == nil {
		e.byClient[ti.client] = map[Token]struct{}{}
	}
	e.byClient[ti.client][e.nextTok] = struct{}{}
	return e.nextTok
}

func (e *Engine) dropToken(tok Token) {
	ti := e.tokens[tok]
	if ti == nil {
		return
	}
	delete(e.tokens, tok)
	delete(e.voted, tok)
	if m := e.byClient[ti.client]; m != nil {
		delete(m, tok)
		if len(m) == 0 {
			delete(e.byClient, ti.client)
		}
	}
	if ti.sub {
		s := e.subs[ti.group]
		for i, t := range s {
			if t == tok {
				e.subs[ti.group] = append(s[:i:i], s[i+1:]...)
				break
			}
		}
		if len(e.subs[ti.group]) == 0 {
			delete(e.subs, ti.group)
		}
		return
	}
	k := provKey{ti.group, ti.inst}
	if e.byProv[k] == tok {
		delete(e.byProv, k)
	}
}

// provider returns the provider token of client, or the synchronous error
// of spec §3: unknown token, or a subscriber token (U-23).
func (e *Engine) provider(client ClientID, tok Token) (*tokenInfo, error) {
	ti := e.tokens[tok]
	if ti == nil || ti.client != client {
		return nil, ErrBadMemberToken
	}
	if ti.sub {
		return nil, ErrNotAMember
	}
	return ti, nil
}

// member is provider for calls that need an approved membership.
func (e *Engine) member(client ClientID, tok Token) (*tokenInfo, *group, error) {
	ti, err := e.provider(client, tok)
	if err != nil {
		return nil, nil, err
	}
	if !ti.member {
		return nil, nil, ErrBadMemberToken
	}
	g := e.groups[ti.group]
	if g == nil {
		return nil, nil, ErrBadMemberToken
	}
	return ti, g, nil
}

func (e *Engine) pid(ti *tokenInfo) ProviderID { return ProviderID{e.node, ti.inst} }

// Join is ha_gs_join: validate, then broadcast the join; the approved or
// rejected notification (or a delayed error) follows through Ready. Joins
// never collide: they queue behind the running protocol (spec §1.3).
func (e *Engine) Join(now time.Time, client ClientID, a JoinArgs) (Token, error) {
	e.now = now
	at := a.Attributes
	if err := at.validate(); err != nil {
		return 0, err
	}
	if reservedName(at.GroupName) {
		return 0, ErrInvalidGroup
	}
	if len(a.LocalName) > MaxLocalName {
		return 0, ErrNameTooLong
	}
	if a.Instance < 0 {
		return 0, ErrBadParameter
	}
	for tok := range e.byClient[client] {
		if ti := e.tokens[tok]; !ti.sub && ti.group == at.GroupName {
			return 0, ErrAlreadyAMember
		}
	}
	if _, ok := e.byProv[provKey{at.GroupName, a.Instance}]; ok {
		return 0, ErrDuplicateInstance
	}
	if g := e.groups[at.GroupName]; g != nil {
		if !at.sameAs(g.Attrs) {
			return 0, ErrBadGroupAttributes
		}
		if g.hasProvider(ProviderID{e.node, a.Instance}) {
			return 0, ErrDuplicateInstance
		}
	} else if err := e.checkSource(at, e.node); err != nil {
		return 0, err
	}
	ti := &tokenInfo{client: client, group: at.GroupName, inst: a.Instance, script: a.DeactivateScript, localName: a.LocalName}
	tok := e.newToken(ti)
	e.byProv[provKey{at.GroupName, a.Instance}] = tok
	at = at.norm()
	e.send(&wmsg{K: kJoin, G: at.GroupName, P: ProviderID{e.node, a.Instance}, Attrs: &at, LocalName: a.LocalName})
	ti.joinNum = e.lastNum
	return tok, nil
}

// checkSource is U-11 for a target group being created with a provider on
// node: the source exists, is not in a cycle, and has a provider there.
func (e *Engine) checkSource(a Attributes, node NodeID) error {
	if a.SourceGroupName == "" {
		return nil
	}
	seen := map[string]bool{a.GroupName: true}
	for name := a.SourceGroupName; name != ""; {
		if seen[name] {
			return ErrInvalidSourceGroup
		}
		seen[name] = true
		s := e.groups[name]
		if s == nil {
			return ErrInvalidSourceGroup
		}
		name = s.Attrs.SourceGroupName
	}
	if !e.groups[a.SourceGroupName].hasNode(node) {
		return ErrNoSourceGroupProvider
	}
	return nil
}

// busy is U-16: a provider proposal runs only in an idle group with nothing
// queued.
func (g *group) busy() bool {
	return g.Proto != nil || len(g.Fails) > 0 || len(g.CastOuts) > 0 || len(g.Joins) > 0 || len(g.Reflections) > 0
}

func validPhases(n NumPhases, limit uint32) error {
	if !n.valid() || limit > MaxTimeLimit {
		return ErrBadParameter
	}
	return nil
}

// Leave is ha_gs_leave.
func (e *Engine) Leave(now time.Time, client ClientID, tok Token, a LeaveArgs) error {
	e.now = now
	ti, g, err := e.member(client, tok)
	if err != nil {
		return err
	}
	if err := validPhases(a.NumPhases, a.TimeLimit); err != nil {
		return err
	}
	if g.busy() {
		return ErrCollide
	}
	e.send(&wmsg{K: kLeave, G: g.Name, P: e.pid(ti), Phases: a.NumPhases.norm(), Limit: a.TimeLimit, Code: a.LeaveCode})
	return nil
}

// Expel is ha_gs_expel.
func (e *Engine) Expel(now time.Time, client ClientID, tok Token, a ExpelArgs) error {
	e.now = now
	ti, g, err := e.member(client, tok)
	if err != nil {
		return err
	}
	if err := validPhases(a.NumPhases, a.TimeLimit); err != nil {
		return err
	}
	if len(a.List) == 0 || a.DeactivateTimeLimit > MaxTimeLimit {
		return ErrBadParameter
	}
	if a.DeactivatePhase < 0 || (a.NumPhases.norm() == OnePhase && a.DeactivatePhase > 1) {
		return ErrInvalidDeactivatePhase
	}
	seen := map[ProviderID]bool{}
	for _, p := range a.List {
		if seen[p] {
			return ErrBadParameter
		}
		seen[p] = true
		if !g.hasProvider(p) {
			return ErrUnknownProvider
		}
	}
	if g.busy() {
		return ErrCollide
	}
	e.send(&wmsg{K: kExpel, G: g.Name, P: e.pid(ti), Phases: a.NumPhases.norm(), Limit: a.TimeLimit,
		List: append([]ProviderID(nil), a.List...), Code: a.ExpelCode, DPhase: a.DeactivatePhase,
		DLimit: a.DeactivateTimeLimit, DArg: a.DeactivateArgument})
	return nil
}

// ChangeState is ha_gs_change_state_value.
func (e *Engine) ChangeState(now time.Time, client ClientID, tok Token, a StateChangeArgs) error {
	e.now = now
	ti, g, err := e.member(client, tok)
	if err != nil {
		return err
	}
	if err := validPhases(a.NumPhases, a.TimeLimit); err != nil {
		return err
	}
	if a.NewState == nil || len(a.NewState) > e.cfg.MaxState {
		return ErrBadParameter
	}
	if g.busy() {
		return ErrCollide
	}
	e.send(&wmsg{K: kState, G: g.Name, P: e.pid(ti), Phases: a.NumPhases.norm(), Limit: a.TimeLimit,
		Value: a.NewState, HasValue: true})
	return nil
}

// SendMessage is ha_gs_send_message.
func (e *Engine) SendMessage(now time.Time, client ClientID, tok Token, a MessageArgs) error {
	e.now = now
	ti, g, err := e.member(client, tok)
	if err != nil {
		return err
	}
	if err := validPhases(a.NumPhases, a.TimeLimit); err != nil {
		return err
	}
	if a.Message == nil || len(a.Message) > e.cfg.MaxMessage {
		return ErrBadParameter
	}
	if g.busy() {
		return ErrCollide
	}
	e.send(&wmsg{K: kMessage, G: g.Name, P: e.pid(ti), Phases: a.NumPhases.norm(), Limit: a.TimeLimit,
		Msg: a.Message, HasMsg: true})
	return nil
}

// ChangeAttributes is ha_gs_change_attributes. The group and source names
// are immutable (§2.3).
func (e *Engine) ChangeAttributes(now time.Time, client ClientID, tok Token, a AttributesArgs) error {
	e.now = now
	ti, g, err := e.member(client, tok)
	if err != nil {
		return err
	}
	if err := validPhases(a.NumPhases, a.TimeLimit); err != nil {
		return err
	}
	at := a.Attributes
	if at.GroupName == "" {
		at.GroupName = g.Name
	}
	if at.GroupName != g.Name || at.SourceGroupName != g.Attrs.SourceGroupName {
		return ErrBadGroupAttributes
	}
	if err := at.validate(); err != nil {
		return ErrBadGroupAttributes
	}
	if g.busy() {
		return ErrCollide
	}
	at = at.norm()
	e.send(&wmsg{K: kAttrs, G: g.Name, P: e.pid(ti), Phases: a.NumPhases.norm(), Limit: a.TimeLimit, Attrs: &at})
	return nil
}

// Vote is ha_gs_vote. A vote is checked against what this node knows (the
// phase its n-phase notification came from); a vote that the replicas find
// stale when it is delivered is dropped by all of them alike.
func (e *Engine) Vote(now time.Time, client ClientID, tok Token, a VoteArgs) error {
	e.now = now
	ti, err := e.provider(client, tok)
	if err != nil {
		return err
	}
	if a.Value != VoteApprove && a.Value != VoteContinue && a.Value != VoteReject {
		return ErrBadParameter
	}
	if a.Default != NullVote && a.Default != VoteApprove && a.Default != VoteReject {
		return ErrBadParameter
	}
	if (a.HasState && len(a.State) > e.cfg.MaxState) || (a.HasMessage && len(a.Message) > e.cfg.MaxMessage) {
		return ErrBadParameter
	}
	g := e.groups[ti.group]
	if g == nil || g.Proto == nil || g.Proto.Phases != NPhase {
		return ErrVoteNotExpected
	}
	p := g.Proto
	b := p.ballot(e.pid(ti))
	key := phaseKey{g.Name, p.Seq, p.Phase}
	if b == nil || b.Failed || b.NoVote || b.Voted || e.voted[tok] == key {
		return ErrVoteNotExpected
	}
	e.voted[tok] = key
	m := &wmsg{K: kVote, G: g.Name, P: e.pid(ti), Seq: p.Seq, Phase: p.Phase, Vote: a.Value, Default: a.Default}
	if a.HasState {
		m.Value, m.HasValue = nonNil(a.State), true
	}
	if a.HasMessage {
		m.Msg, m.HasMsg = nonNil(a.Message), true
	}
	e.send(m)
	return nil
}

// Goodbye is ha_gs_goodbye: the provider leaves at once, as if it had
// failed, and the group sees a failure leave with reason
// PROVIDER_SAID_GOODBYE. The token is dead when Goodbye returns.
func (e *Engine) Goodbye(now time.Time, client ClientID, tok Token) error {
	e.now = now
	ti, err := e.provider(client, tok)
	if err != nil {
		return err
	}
	if g := e.groups[ti.group]; g != nil {
		if bl := g.backlevel(); len(bl) > 0 {
			return ErrBacklevelProviders
		}
	}
	e.dropToken(tok)
	e.send(&wmsg{K: kFail, Fails: []failNote{{G: ti.group, P: e.pid(ti), Info: LeaveInfo{Reason: ProviderSaidGoodbye}}}})
	return nil
}

// ClientGone: the client's connection closed (quit=true: ha_gs_quit or a
// clean exit). Each of its providers fails — one failure event, so the
// failure leaves of one group are batched — and its subscriptions end
// silently (spec §3.3).
func (e *Engine) ClientGone(now time.Time, client ClientID, quit bool) {
	e.now = now
	reason := ProviderFailedLeave
	if quit {
		reason = ProviderQuit
	}
	var fails []failNote
	for _, tok := range e.clientTokens(client) {
		ti := e.tokens[tok]
		if !ti.sub {
			fails = append(fails, failNote{G: ti.group, P: e.pid(ti), Info: LeaveInfo{Reason: reason}})
		}
		e.dropToken(tok)
	}
	if len(fails) > 0 {
		e.send(&wmsg{K: kFail, Fails: fails})
	}
}

// Responsiveness reports that a client stopped (or resumed) answering its
// responsiveness checks (U-15). The agent detects it; every provider of the
// client's groups gets an announcement. Nobody is removed.
func (e *Engine) Responsiveness(now time.Time, client ClientID, responding bool) {
	e.now = now
	var fails []failNote
	for _, tok := range e.clientTokens(client) {
		ti := e.tokens[tok]
		if !ti.sub && ti.member {
			fails = append(fails, failNote{G: ti.group, P: e.pid(ti)})
		}
	}
	if len(fails) > 0 {
		e.send(&wmsg{K: kResp, Fails: fails, Responding: responding})
	}
}

// DeactivateDone reports the outcome of a Deactivation.
func (e *Engine) DeactivateDone(now time.Time, id DeactivationID, status DeactivateStatus) error {
	e.now = now
	if status != DeactivateOK && status != DeactivateFailed && status != DeactivateTimedOut {
		return ErrBadParameter
	}
	if id.Provider.Node != e.node {
		return ErrBadParameter
	}
	e.send(&wmsg{K: kDeact, G: id.Group, P: id.Provider, Seq: id.Seq, Deact: status})
	return nil
}

// Subscribe is ha_gs_subscribe. Subscribers are known only to their own
// node (spec §1.1: invisible to providers), so a subscription is local: the
// first notification is a snapshot of the local replica, then one per
// approved change, in the replicated order. An unknown group is reported as
// a delayed error, as the spec has it.
func (e *Engine) Subscribe(now time.Time, client ClientID, a SubscribeArgs) (Token, error) {
	e.now = now
	if err := validName(a.Group); err != nil {
		return 0, err
	}
	if a.Control&(SubscribeState|SubscribeMembership) == 0 || a.Control&^(SubscribeAll|SubscribeDeltasOnly) != 0 {
		return 0, ErrBadParameter
	}
	tok := e.newToken(&tokenInfo{client: client, group: a.Group, sub: true, control: a.Control})
	if a.Group == HostGroupName {
		if !e.installed {
			e.unknownGroup(tok, a)
			return tok, nil
		}
	} else if link, ok := adapterLink(a.Group); ok {
		if !e.installed || len(adapterNodes(e.adapters, link)) == 0 {
			e.unknownGroup(tok, a)
			return tok, nil
		}
	} else if e.groups[a.Group] == nil || len(e.groups[a.Group].Providers) == 0 {
		e.unknownGroup(tok, a)
		return tok, nil
	}
	e.subs[a.Group] = append(e.subs[a.Group], tok)
	st, full := e.snapshot(a.Group)
	ti := e.tokens[tok]
	n := Notification{Type: NotifySubscription, SubscriptionType: SubscriptionInitial}
	if a.Control&SubscribeState != 0 {
		n.SubscriptionType |= SubscriptionState
		n.State = clone(st)
	}
	if a.Control&SubscribeMembership != 0 {
		n.FullMembership = full
	}
	e.emit(tok, ti, a.Group, n)
	return tok, nil
}

func (e *Engine) unknownGroup(tok Token, a SubscribeArgs) {
	ti := e.tokens[tok]
	e.emit(tok, ti, a.Group, Notification{Type: NotifyDelayedError, Protocol: ProtoSubscription,
		Err: ErrUnknownGroup, FailingRequest: &Request{Protocol: ProtoSubscription, Subscribe: &a}})
	e.dropToken(tok)
}

// Unsubscribe is ha_gs_unsubscribe.
func (e *Engine) Unsubscribe(now time.Time, client ClientID, tok Token) error {
	e.now = now
	ti := e.tokens[tok]
	if ti == nil || ti.client != client || !ti.sub {
		return ErrBadMemberToken
	}
	e.dropToken(tok)
	return nil
}

func (e *Engine) snapshot(name string) ([]byte, []ProviderID) {
	if name == HostGroupName {
		ids := make([]ProviderID, len(e.host))
		for i, n := range e.host {
			ids[i] = ProviderID{Node: n}
		}
		return []byte(e.ring.String()), ids
	}
	if link, ok := adapterLink(name); ok {
		return nil, e.adapterMembers(link)
	}
	g := e.groups[name]
	return g.State, g.ids()
}

// ---- notifications ----

// emit addresses n to a local token.
func (e *Engine) emit(tok Token, ti *tokenInfo, group string, n Notification) {
	n.Client, n.Token, n.Group, n.Ring = ti.client, tok, group, e.ring
	e.ready.Notifications = append(e.ready.Notifications, n)
}

// tell sends n to provider id if it is one of this node's providers.
func (e *Engine) tell(group string, id ProviderID, n Notification) {
	if e.traced[group] {
		t := n
		t.Group, t.Ring = group, e.ring
		e.trace(TraceEvent{Kind: TraceNotify, Group: group, Provider: id, Notification: &t})
	}
	if id.Node != e.node {
		return
	}
	tok, ok := e.byProv[provKey{group, id.Instance}]
	if !ok {
		return
	}
	e.emit(tok, e.tokens[tok], group, n)
}

// Trace turns the trace of one group on or off: while on, every
// notification of the group (to any provider, on any node), every vote,
// phase time-out and deactivate result applied to it is also reported in
// Ready.Trace. A group that does not exist yet may be traced.
func (e *Engine) Trace(group string, on bool) {
	if !on {
		delete(e.traced, group)
		return
	}
	if e.traced == nil {
		e.traced = map[string]bool{}
	}
	e.traced[group] = true
}

func (e *Engine) trace(ev TraceEvent) {
	ev.Ring = e.ring
	e.ready.Trace = append(e.ready.Trace, ev)
}

// ---- queries ----

// GroupInfo describes one group for status commands.
type GroupInfo struct {
	Name        string
	Attributes  Attributes
	Providers   []ProviderInfo // join order
	State       []byte
	Protocol    *ProtocolInfo // nil when idle
	Queued      int           // queued joins, failure leaves, cast-outs, reflections
	Subscribers int           // on this node
}

// ProviderInfo is one provider of GroupInfo.
type ProviderInfo struct {
	ID        ProviderID
	LocalName string
}

// ProtocolInfo is the protocol in progress.
type ProtocolInfo struct {
	Type      ProtocolType
	Seq       uint64
	Phase     int
	NumPhases NumPhases
	Changing  []ProviderID
	Voters    []ProviderID
	Voted     []ProviderID
}

// Groups lists every group of the local replica, sorted by name.
func (e *Engine) Groups() []GroupInfo {
	var out []GroupInfo
	for _, name := range sortedKeys(e.groups) {
		out = append(out, e.info(e.groups[name]))
	}
	return out
}

// Group describes one group.
func (e *Engine) Group(name string) (GroupInfo, bool) {
	g := e.groups[name]
	if g == nil {
		return GroupInfo{}, false
	}
	return e.info(g), true
}

func (e *Engine) info(g *group) GroupInfo {
	gi := GroupInfo{Name: g.Name, Attributes: g.Attrs, State: clone(g.State),
		Queued:      len(g.Joins) + len(g.Fails) + len(g.CastOuts) + len(g.Reflections),
		Subscribers: len(e.subs[g.Name])}
	for _, m := range g.Providers {
		gi.Providers = append(gi.Providers, ProviderInfo{m.ID, m.LocalName})
	}
	if p := g.Proto; p != nil {
		pi := &ProtocolInfo{Type: p.Type, Seq: p.Seq, Phase: p.Phase, NumPhases: p.Phases, Changing: p.Changing}
		for _, b := range p.Ballots {
			if b.Failed || b.NoVote {
				continue
			}
			pi.Voters = append(pi.Voters, b.P)
			if b.Voted {
				pi.Voted = append(pi.Voted, b.P)
			}
		}
		gi.Protocol = pi
	}
	return gi
}

// ---- small helpers ----

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// clientTokens lists a client's tokens in creation order.
func (e *Engine) clientTokens(c ClientID) []Token {
	m := e.byClient[c]
	ts := make([]Token, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}
