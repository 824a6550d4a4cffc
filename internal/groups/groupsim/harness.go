// Package groupsim runs the group services on the simulator: the groups
// engine of every node hosted on its simulated membership engine exactly as
// the agent hosts it (re-created when the node restarts), with simulated
// clients — one groups.ClientID per node-local client — that join, vote,
// propose, subscribe, run deactivate scripts, die and stop dispatching. The
// group-services properties are checked after every simulator step (see
// checker.go). It backs the datadriven scenario scripts in testdata/ (spec
// §8 and the failure cases) and the random-fault test.
package groupsim

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/service"
	"github.com/conclave/conclave/internal/sim"
)

// NodeID is a node number.
type NodeID = sim.NodeID

// Harness hosts one groups engine per simulated node and its clients.
type Harness struct {
	S *sim.Sim

	// Trace, if set, receives every notification as it is handed out.
	Trace io.Writer
	// TraceWire, if set, receives every view event and every delivery of
	// the engines' ordered stream.
	TraceWire io.Writer

	// Auto, if set, answers the n-phase notifications of every dispatching
	// client after a think time (the random test's clients).
	Auto *AutoVoter

	engines map[NodeID]*hosted
	clients map[string]*Client // the latest client of each name
	order   []*Client          // every client ever, in creation order
	tokens  map[tokKey]tokenOwner
	nextID  groups.ClientID
	deacts  []*deact
	// inbox: what each client name dispatched since the last
	// notifications command, one rendered line each.
	inbox map[string][]string
	check *checker
	err   error
}

// hosted is the service the simulator hosts on a node: the node's engine,
// with its replica marked dirty whenever the ordered stream or a view
// changes it, so the per-step checks look only at nodes that moved.
type hosted struct {
	*groups.Engine
	h     *Harness
	node  NodeID
	inc   uint64
	dirty bool
}

func (e *hosted) Deliver(now time.Time, ring groups.RingID, from groups.NodeID, payload []byte, sync bool) {
	if e.h.TraceWire != nil {
		fmt.Fprintf(e.h.TraceWire, "%v node %d deliver ring %s from %d sync=%v %s\n", e.h.S.Elapsed(), e.node, ring, from, sync, payload)
	}
	e.Engine.Deliver(now, ring, from, payload, sync)
	e.dirty = true
}

func (e *hosted) Nodelist(now time.Time, ring groups.RingID, members []groups.NodeID) {
	if e.h.TraceWire != nil {
		fmt.Fprintf(e.h.TraceWire, "%v node %d nodelist ring %s %v\n", e.h.S.Elapsed(), e.node, ring, members)
	}
	e.Engine.Nodelist(now, ring, members)
}

func (e *hosted) Installed(now time.Time, ring groups.RingID, members []groups.NodeID) {
	if e.h.TraceWire != nil {
		fmt.Fprintf(e.h.TraceWire, "%v node %d installed ring %s %v\n", e.h.S.Elapsed(), e.node, ring, members)
	}
	e.Engine.Installed(now, ring, members)
	e.dirty = true
}

type tokKey struct {
	node NodeID
	inc  uint64
	tok  groups.Token
}

type tokenOwner struct {
	p *Provider
	s *Subscriber
}

// Client is one simulated GS client process: it lives on one node
// incarnation (a restarted node has new clients).
type Client struct {
	Name string // "NODE/TAG" as the scripts name it
	Node NodeID
	ID   groups.ClientID
	inc  uint64
	h    *Harness

	killed bool
	// Deaf: the client does not dispatch; what it is sent waits in
	// queued. Ping, if set, is its responsiveness limit: the agent
	// reports it unresponsive once it has been deaf that long.
	Deaf         bool
	Ping         time.Duration
	deafSince    time.Time
	unresponsive bool
	queued       []string

	// Script is the deactivate-script behaviour: "ok", "fail", "hang" or
	// "" (none registered).
	Script string

	provs map[string]*Provider // by group: the latest provider token
	subs  map[string]*Subscriber
}

// Alive: the client's process runs (its node incarnation is up).
func (c *Client) Alive() bool {
	n := c.h.S.Node(c.Node)
	return !c.killed && n.Up && n.Incarnation == c.inc
}

// Provider is one provider token's lifetime: from ha_gs_join until the
// token dies (rejected join, departure, dissolution, goodbye, death).
type Provider struct {
	C     *Client
	Group string
	ID    groups.ProviderID
	Tok   groups.Token

	Member bool // its join was approved
	Dead   bool // its token is dead

	// latest is the n-phase notification the client would answer now
	// (nil when none is open); voted says it answered it.
	latest *groups.Notification
	voted  bool
	voteAt time.Time // the auto voter's plan

	// Property state (checker.go).
	last    *rec
	cur     *protoTrack
	pending *pendingFinal
	filt    map[groups.ProviderID][]*rec
	nrecs   int
}

func (p *Provider) alive() bool { return !p.Dead && p.C.Alive() }

// Subscriber is one subscription token.
type Subscriber struct {
	C     *Client
	Group string
	Tok   groups.Token
	Dead  bool
}

// deact is a deactivate script the agent runs on an expelled provider's
// node.
type deact struct {
	node   NodeID
	inc    uint64
	d      groups.Deactivation
	c      *Client
	status groups.DeactivateStatus
	due    time.Time
	never  bool // hangs and has no time limit
}

// New sets o up to host the group services: the caller sets nodes, seed
// and timing; New fills in the services and the invariant. Set h.S to the
// simulator built from o.
func New(o *sim.Options) *Harness {
	h := &Harness{engines: map[NodeID]*hosted{}, clients: map[string]*Client{},
		tokens: map[tokKey]tokenOwner{}, inbox: map[string][]string{}}
	h.check = newChecker(h)
	o.Services = h.services
	o.Invariant = h.invariant
	return h
}

func (h *Harness) services(n *sim.Node) []service.Service {
	e := &hosted{Engine: groups.New(groups.Config{Node: n.ID, Incarnation: n.Incarnation}), h: h, node: n.ID, inc: n.Incarnation}
	h.engines[n.ID] = e
	return []service.Service{e}
}

func (h *Harness) fail(format string, args ...any) {
	if h.err == nil {
		h.err = fmt.Errorf(format, args...)
	}
}

// Err returns the first property violation found.
func (h *Harness) Err() error { return h.err }

// Engine returns node id's running engine (nil when down).
func (h *Harness) Engine(id NodeID) *groups.Engine {
	n := h.S.Node(id)
	e := h.engines[id]
	if !n.Up || e == nil || e.inc != n.Incarnation {
		return nil
	}
	return e.Engine
}

func (h *Harness) hostedOn(id NodeID) *hosted {
	if h.Engine(id) == nil {
		return nil
	}
	return h.engines[id]
}

// invariant runs after every simulator step: it hands each engine's
// output to the clients and the agent's script runner, checks the
// properties, and lets the scripted clients act.
func (h *Harness) invariant(s *sim.Sim) error {
	h.collect()
	now := s.Now()
	h.runDeactivations(now)
	h.runResponsiveness(now)
	if h.Auto != nil {
		h.Auto.act(h, now)
	}
	return h.err
}

// collect drains every up node's engine.
func (h *Harness) collect() {
	for _, n := range h.S.Nodes() {
		e := h.hostedOn(n.ID)
		if e == nil {
			continue
		}
		r := e.Ready()
		for _, x := range r.Notifications {
			h.deliver(n.ID, e.inc, x)
		}
		h.check.endBatch()
		for _, d := range r.Deactivations {
			h.startDeactivation(n.ID, e.inc, d)
		}
		if e.dirty {
			e.dirty = false
			h.check.local(n.ID, e.Engine)
		}
	}
}

// deliver hands one notification to its client.
func (h *Harness) deliver(node NodeID, inc uint64, n groups.Notification) {
	o, ok := h.tokens[tokKey{node, inc, n.Token}]
	if !ok {
		h.fail("node %d: notification for unknown token %d: %s", node, n.Token, Render(n))
		return
	}
	var c *Client
	switch {
	case o.p != nil:
		c = o.p.C
		if c.ID != n.Client {
			h.fail("node %d: notification for token %d addressed to client %d, owner is %d", node, n.Token, n.Client, c.ID)
		}
		h.check.provider(o.p, n)
	default:
		c = o.s.C
		if n.Type == groups.NotifySubscription && n.SubscriptionType&groups.SubscriptionDissolved != 0 ||
			n.Type == groups.NotifyDelayedError {
			o.s.Dead = true
		}
	}
	line := n.Group + ": " + Render(n)
	if h.Trace != nil {
		fmt.Fprintf(h.Trace, "%v node %d %s: %s\n", h.S.Elapsed(), node, c.Name, line)
	}
	if c.Deaf {
		c.queued = append(c.queued, line)
		return
	}
	h.inbox[c.Name] = append(h.inbox[c.Name], line)
}

// ---- clients ----

// Client returns the live client called name ("NODE/TAG"), starting one on
// that node if there is none (the old one died with its node, say).
func (h *Harness) Client(name string) (*Client, error) {
	if c := h.clients[name]; c != nil && c.Alive() {
		return c, nil
	}
	nodeS, tag, ok := strings.Cut(name, "/")
	v, err := strconv.Atoi(nodeS)
	if !ok || err != nil || tag == "" || v < 1 || v > len(h.S.Nodes()) {
		return nil, fmt.Errorf("bad client %q: want NODE/TAG", name)
	}
	n := h.S.Node(NodeID(v))
	if !n.Up {
		return nil, fmt.Errorf("node %d is down", v)
	}
	h.nextID++
	c := &Client{Name: name, Node: n.ID, ID: h.nextID, inc: n.Incarnation, h: h,
		provs: map[string]*Provider{}, subs: map[string]*Subscriber{}}
	h.clients[name] = c
	h.order = append(h.order, c)
	return c, nil
}

// Clients lists every client ever started, in creation order.
func (h *Harness) Clients() []*Client { return h.order }

func (h *Harness) engineOf(c *Client) (*groups.Engine, error) {
	if !c.Alive() {
		return nil, fmt.Errorf("client %s is dead", c.Name)
	}
	if h.S.Node(c.Node).Paused {
		return nil, fmt.Errorf("node %d is paused", c.Node)
	}
	return h.Engine(c.Node), nil
}

// Join is ha_gs_join by client c.
func (h *Harness) Join(c *Client, a groups.JoinArgs) (*Provider, error) {
	e, err := h.engineOf(c)
	if err != nil {
		return nil, err
	}
	if c.Script != "" {
		a.DeactivateScript = "/usr/local/bin/deact-" + c.Script + ".sh"
	}
	tok, err := e.Join(h.S.Now(), c.ID, a)
	if err != nil {
		return nil, err
	}
	p := &Provider{C: c, Group: a.Attributes.GroupName, ID: groups.ProviderID{Node: c.Node, Instance: a.Instance}, Tok: tok}
	c.provs[p.Group] = p
	h.tokens[tokKey{c.Node, c.inc, tok}] = tokenOwner{p: p}
	h.check.joined(p)
	h.poke(c.Node)
	return p, nil
}

// Subscribe is ha_gs_subscribe by client c.
func (h *Harness) Subscribe(c *Client, a groups.SubscribeArgs) (*Subscriber, error) {
	e, err := h.engineOf(c)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{C: c, Group: a.Group}
	// The initial snapshot (or the delayed error) comes from Subscribe
	// itself: register the token before collecting it.
	tok, err := e.Subscribe(h.S.Now(), c.ID, a)
	if err != nil {
		return nil, err
	}
	s.Tok = tok
	c.subs[a.Group] = s
	h.tokens[tokKey{c.Node, c.inc, tok}] = tokenOwner{s: s}
	h.collect()
	return s, nil
}

// Unsubscribe is ha_gs_unsubscribe.
func (h *Harness) Unsubscribe(s *Subscriber) error {
	e, err := h.engineOf(s.C)
	if err != nil {
		return err
	}
	if err := e.Unsubscribe(h.S.Now(), s.C.ID, s.Tok); err != nil {
		return err
	}
	s.Dead = true
	return nil
}

// Provider returns c's provider token in group (or its only one).
func (c *Client) Provider(group string) (*Provider, error) {
	if group != "" {
		if p := c.provs[group]; p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("client %s has no provider in %s", c.Name, group)
	}
	var only *Provider
	for _, g := range sortedKeys(c.provs) {
		p := c.provs[g]
		if p.Dead && len(c.provs) > 1 {
			continue
		}
		if only != nil {
			return nil, fmt.Errorf("client %s is a provider of several groups: name one with group=", c.Name)
		}
		only = p
	}
	if only == nil {
		return nil, fmt.Errorf("client %s is no provider", c.Name)
	}
	return only, nil
}

// Vote is ha_gs_vote on p's token. The checker learns which phase the vote
// answers: the one of the client's latest n-phase notification.
func (h *Harness) Vote(p *Provider, a groups.VoteArgs) error {
	e, err := h.engineOf(p.C)
	if err != nil {
		return err
	}
	if err := e.Vote(h.S.Now(), p.C.ID, p.Tok, a); err != nil {
		return err
	}
	h.check.voted(p, a)
	p.voted = true
	h.poke(p.C.Node)
	return nil
}

// Request runs one of p's proposals (state, message, leave, expel,
// attributes) and sends it.
func (h *Harness) Request(p *Provider, f func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error) error {
	e, err := h.engineOf(p.C)
	if err != nil {
		return err
	}
	if err := f(e, h.S.Now(), p.C.ID, p.Tok); err != nil {
		return err
	}
	h.poke(p.C.Node)
	return nil
}

// Goodbye is ha_gs_goodbye: the token is dead when it returns.
func (h *Harness) Goodbye(p *Provider) error {
	e, err := h.engineOf(p.C)
	if err != nil {
		return err
	}
	if err := e.Goodbye(h.S.Now(), p.C.ID, p.Tok); err != nil {
		return err
	}
	h.check.gone(p)
	h.poke(p.C.Node)
	return nil
}

// Kill ends client c's process (quit: ha_gs_quit, a clean exit).
func (h *Harness) Kill(c *Client, quit bool) error {
	e, err := h.engineOf(c)
	if err != nil {
		return err
	}
	e.ClientGone(h.S.Now(), c.ID, quit)
	c.killed = true
	for _, p := range c.provs {
		h.check.gone(p)
	}
	h.poke(c.Node)
	return nil
}

// SetDeaf stops (or resumes) c's dispatching. Resuming hands it what
// queued up meanwhile and reports it responsive again if it was reported.
func (h *Harness) SetDeaf(c *Client, deaf bool, ping time.Duration) error {
	if !c.Alive() {
		return fmt.Errorf("client %s is dead", c.Name)
	}
	if deaf {
		if !c.Deaf {
			c.deafSince = h.S.Now()
		}
		c.Deaf, c.Ping = true, ping
		return nil
	}
	if !c.Deaf {
		return nil
	}
	c.Deaf = false
	h.inbox[c.Name] = append(h.inbox[c.Name], c.queued...)
	c.queued = nil
	if c.unresponsive {
		c.unresponsive = false
		if e := h.Engine(c.Node); e != nil && !h.S.Node(c.Node).Paused {
			e.Responsiveness(h.S.Now(), c.ID, true)
			h.poke(c.Node)
		}
	}
	return nil
}

// runResponsiveness is the agent's responsiveness check: a deaf client
// with a ping limit is reported once it has not answered for that long.
func (h *Harness) runResponsiveness(now time.Time) {
	for _, c := range h.order {
		if !c.Deaf || c.Ping == 0 || c.unresponsive || !c.Alive() || now.Sub(c.deafSince) < c.Ping {
			continue
		}
		if h.S.Node(c.Node).Paused {
			continue
		}
		c.unresponsive = true
		h.Engine(c.Node).Responsiveness(now, c.ID, false)
		h.poke(c.Node)
	}
}

// ---- deactivate scripts ----

const scriptRunTime = 10 * time.Millisecond

func (h *Harness) startDeactivation(node NodeID, inc uint64, d groups.Deactivation) {
	var c *Client
	for _, x := range h.order {
		if x.Node == node && x.inc == inc && x.ID == d.Client {
			c = x
		}
	}
	if c == nil {
		h.fail("node %d: deactivation for unknown client %d", node, d.Client)
		return
	}
	x := &deact{node: node, inc: inc, d: d, c: c, due: h.S.Now().Add(scriptRunTime)}
	switch c.Script {
	case "ok":
		x.status = groups.DeactivateOK
	case "fail":
		x.status = groups.DeactivateFailed
	case "hang":
		x.status = groups.DeactivateTimedOut
		x.due = h.S.Now().Add(d.TimeLimit)
		x.never = d.TimeLimit == 0
	default:
		h.fail("node %d: deactivation asked for client %s, which registered no script", node, c.Name)
		return
	}
	h.deacts = append(h.deacts, x)
}

func (h *Harness) runDeactivations(now time.Time) {
	// Finishing a script may start others (collect runs in poke).
	list := h.deacts
	h.deacts = nil
	var kept []*deact
	for _, x := range list {
		n := h.S.Node(x.node)
		if !n.Up || n.Incarnation != x.inc {
			continue // died with its agent
		}
		if x.never || now.Before(x.due) || n.Paused {
			kept = append(kept, x)
			continue
		}
		outcome := map[groups.DeactivateStatus]string{groups.DeactivateOK: "exit 0",
			groups.DeactivateFailed: "exit 3", groups.DeactivateTimedOut: "killed at its time limit"}[x.status]
		line := fmt.Sprintf("%s: deactivate script %s %s %d pid code=%d", x.d.ID.Group, x.d.Script, x.d.ID.Group,
			x.d.ID.Provider.Instance, x.d.ExpelCode)
		if x.d.Argument != "" {
			line += " arg=" + x.d.Argument
		}
		line += fmt.Sprintf(" limit=%v: %s", x.d.TimeLimit, outcome)
		h.inbox[x.c.Name] = append(h.inbox[x.c.Name], line)
		if err := h.Engine(x.node).DeactivateDone(now, x.d.ID, x.status); err != nil {
			h.fail("node %d: DeactivateDone: %v", x.node, err)
		}
		h.poke(x.node)
	}
	h.deacts = append(kept, h.deacts...)
}

// PendingDeactivations counts scripts still running.
func (h *Harness) PendingDeactivations() int { return len(h.deacts) }

// ---- output ----

// Notifications renders what the named clients (all if none) dispatched
// since the last call; clients with the same sequence share one block.
func (h *Harness) Notifications(names ...string) string {
	if len(names) == 0 {
		for name := range h.inbox {
			names = append(names, name)
		}
		for _, c := range h.order {
			if c.Deaf && len(c.queued) > 0 && !slices.Contains(names, c.Name) {
				names = append(names, c.Name)
			}
		}
	}
	sortNames(names)
	type block struct {
		names []string
		lines []string
	}
	var blocks []*block
	for _, name := range names {
		lines := h.inbox[name]
		delete(h.inbox, name)
		if c := h.clients[name]; c != nil && c.Deaf && c.Alive() {
			lines = append(lines, fmt.Sprintf("(not dispatching: %d notifications queued)", len(c.queued)))
		}
		if len(lines) == 0 {
			continue
		}
		key := strings.Join(lines, "\n")
		found := false
		for _, b := range blocks {
			if strings.Join(b.lines, "\n") == key {
				b.names = append(b.names, name)
				found = true
				break
			}
		}
		if !found {
			blocks = append(blocks, &block{[]string{name}, lines})
		}
	}
	var b strings.Builder
	for _, bl := range blocks {
		fmt.Fprintf(&b, "%s:\n", strings.Join(bl.names, " "))
		for _, l := range bl.lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// sortNames orders "NODE/TAG" names by node, then numeric tags, then text.
func sortNames(names []string) {
	key := func(s string) (int, int, string) {
		a, b, _ := strings.Cut(s, "/")
		n, _ := strconv.Atoi(a)
		t, err := strconv.Atoi(b)
		if err != nil {
			t = 1 << 30
		}
		return n, t, b
	}
	sort.Slice(names, func(i, j int) bool {
		ni, ti, si := key(names[i])
		nj, tj, sj := key(names[j])
		if ni != nj {
			return ni < nj
		}
		if ti != tj {
			return ti < tj
		}
		return si < sj
	})
}

// Groups renders every up node's replica of every group; nodes whose
// replicas are equal share a line.
func (h *Harness) Groups(only string) string {
	type row struct {
		nodes []string
		line  string
	}
	rows := map[string][]*row{}
	var names []string
	for _, n := range h.S.Nodes() {
		e := h.Engine(n.ID)
		if e == nil {
			continue
		}
		for _, gi := range e.Groups() {
			if only != "" && gi.Name != only {
				continue
			}
			if _, ok := rows[gi.Name]; !ok {
				names = append(names, gi.Name)
			}
			line := renderGroup(gi)
			found := false
			for _, r := range rows[gi.Name] {
				if r.line == line {
					r.nodes = append(r.nodes, strconv.Itoa(int(n.ID)))
					found = true
				}
			}
			if !found {
				rows[gi.Name] = append(rows[gi.Name], &row{[]string{strconv.Itoa(int(n.ID))}, line})
			}
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		for _, r := range rows[name] {
			fmt.Fprintf(&b, "%s on %s: %s\n", name, strings.Join(r.nodes, ","), r.line)
		}
	}
	if b.Len() == 0 {
		return "no groups\n"
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// poke runs node id's driver loop, as the agent does after a local request,
// and hands out what that produced at once: in a one-node view the
// request may be delivered, and decided, right away.
func (h *Harness) poke(id NodeID) {
	h.S.Poke(id)
	h.collect()
}
