package gs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/cs"
	"github.com/conclave/conclave/internal/ipc"
)

// DomainEnv names the domain a client joins when WithDomain is not given
// (HA_DOMAIN_NAME). A Conclave domain is one cluster: when set, it must be
// the cluster name of the agent, or Init fails with ErrNotOK.
const DomainEnv = "HA_DOMAIN_NAME"

// MaxQueued and MaxQueuedBytes bound the notifications waiting for
// Dispatch (their number, and their size on the wire). A client that lets
// more pile up has stopped dispatching: the library drops its connection,
// so that its providers fail and leave their groups rather than hold them
// (and the agent) back. Dispatch then returns ErrNotOK once the queue is
// drained.
const (
	MaxQueued      = 1 << 16
	MaxQueuedBytes = 64 << 20
)

// DispatchFlags are the dispatch modes, shared with the other client
// packages (cs.DispatchOne, cs.DispatchAll, cs.DispatchBlocking,
// cs.DispatchOneNonblocking). Blocking and NonBlocking are the GSAPI's
// names.
type DispatchFlags = cs.DispatchFlags

// The GSAPI's dispatch modes (ha_gs_dispatch_flag_t).
const (
	// Blocking (HA_GS_BLOCKING) runs callbacks as notifications arrive and
	// returns only on an error: ErrNotOK when the agent is lost, ErrNoInit
	// after Quit.
	Blocking = cs.DispatchBlocking
	// NonBlocking (HA_GS_NON_BLOCKING) runs the callbacks of every queued
	// notification and returns.
	NonBlocking = cs.DispatchAll
)

// Callbacks are the callbacks of Init.
type Callbacks struct {
	// Responsiveness answers the agent's checks (required with
	// PingResponsiveness). Returning CallbackNotOK counts as a miss.
	Responsiveness func(c *Client, n *ResponsivenessNotification) CallbackRC
	// DelayedError receives errors found after a request was accepted
	// (required).
	DelayedError func(c *Client, n *DelayedErrorNotification)
}

// Option adjusts Init.
type Option func(*options)

type options struct {
	socket      string
	ctx         context.Context
	resp        Responsiveness
	script      string
	domain      *string
	adapterInfo bool
}

// WithSocket connects to the agent at path rather than $CONCLAVE_SOCKET or
// the default socket.
func WithSocket(path string) Option { return func(o *options) { o.socket = path } }

// WithContext bounds connecting (Init) by ctx.
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// WithResponsiveness asks the agent to check that this client keeps
// dispatching (ha_gs_init's responsiveness_control).
func WithResponsiveness(r Responsiveness) Option { return func(o *options) { o.resp = r } }

// WithDeactivateScript registers the script the agent runs when one of
// this client's providers is expelled (ha_gs_init's deactivate_script):
// an absolute path of an executable file. It runs on this node, as this
// process's uid and gid, with argv
//
//	script <group> <provider instance> <client pid> <expel code> [<deactivate argument>]
//
// cwd "/", and the environment HA_DOMAIN_NAME, HA_GS_GROUP_NAME,
// HA_GS_PROVIDER_INSTANCE, HA_GS_PROVIDER_PID, HA_GS_EXPEL_CODE and a
// default PATH. Exit status 0 is success; another status sets
// DeactivateUnsuccessful; a script still running at the expel's
// deactivate time limit is killed (SIGTERM to its process group, SIGKILL
// 5 s later) and sets DeactivateTimeLimitExceeded.
func WithDeactivateScript(path string) Option { return func(o *options) { o.script = path } }

// WithDomain names the domain (the cluster) to join instead of
// $HA_DOMAIN_NAME; "" accepts whatever cluster the agent serves.
func WithDomain(name string) Option { return func(o *options) { o.domain = &name } }

// WithAdapterInfo enables AdapterInfo (HA_GS_ENABLE_ADAPTER_INFO in
// ha_gs_init's socket options).
func WithAdapterInfo() Option { return func(o *options) { o.adapterInfo = true } }

// Client is one GS client: one connection to the local agent, as one
// ha_gs_init is in C. Its methods may be called from several goroutines,
// and from inside callbacks; callbacks run only inside Dispatch (or Run).
// A process may hold several clients; each is a separate client to Group
// Services (its providers are separate providers).
type Client struct {
	cb     Callbacks
	o      options
	conn   *grpc.ClientConn
	stream clientpb.GroupServices_SessionClient
	cancel context.CancelFunc
	node   uint32

	callMu  sync.Mutex // one request at a time, as the C library
	sendMu  sync.Mutex // the stream's send side
	nextID  uint64
	replies chan *clientpb.GSReply

	mu        sync.Mutex
	queue     []item
	queued    int             // bytes in queue
	busy      map[string]bool // groups whose callback runs now
	changed   chan struct{}   // closed (and replaced) on every change of the queue
	quit      bool
	err       error // why the stream ended
	onReply   func(*clientpb.GSReply)
	replyID   uint64
	providers map[Token]*provider
	subs      map[Token]func(*Client, *SubscriptionNotification)
	counter   uint64 // the last sample of a responsiveness counter
	pr, pw    *os.File
	readable  bool // a byte waits in the pipe: Fd is readable
}

type provider struct {
	id ProviderID
	cb ProviderCallbacks
}

// item is one thing waiting for Dispatch: a notification, or a
// responsiveness check (group "").
type item struct {
	group string
	n     *clientpb.GSNotification
	ping  *clientpb.GSPing
	size  int
}

// Init connects to the local agent and registers this client
// (ha_gs_init). With no agent, or one serving another domain, it fails
// with ErrNotOK; a missing DelayedError callback, a PING check without a
// Responsiveness callback, a COUNTER check without a counter, or a
// deactivate script that is not an absolute executable path is
// ErrBadParameter.
func Init(cb Callbacks, opts ...Option) (*Client, error) {
	o := options{ctx: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	if o.domain == nil {
		d := os.Getenv(DomainEnv)
		o.domain = &d
	}
	if cb.DelayedError == nil {
		return nil, fmt.Errorf("%w: a delayed-error callback is required", ErrBadParameter)
	}
	switch o.resp.Type {
	case NoResponsiveness:
	case PingResponsiveness:
		if cb.Responsiveness == nil {
			return nil, fmt.Errorf("%w: ping responsiveness needs a responsiveness callback", ErrBadParameter)
		}
	case CounterResponsiveness:
		if o.resp.Counter == nil {
			return nil, fmt.Errorf("%w: counter responsiveness needs a counter", ErrBadParameter)
		}
	default:
		return nil, fmt.Errorf("%w: responsiveness type %d", ErrBadParameter, o.resp.Type)
	}
	if o.resp.Type != NoResponsiveness && o.resp.Interval <= 0 {
		return nil, fmt.Errorf("%w: responsiveness needs an interval", ErrBadParameter)
	}
	conn, err := ipc.Dial(o.ctx, ipc.SocketPath(o.socket))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotOK, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := clientpb.NewGroupServicesClient(conn).Session(ctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrNotOK, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoMemory, err)
	}
	c := &Client{cb: cb, o: o, conn: conn, stream: stream, cancel: cancel, replies: make(chan *clientpb.GSReply, 1),
		busy: map[string]bool{}, changed: make(chan struct{}), providers: map[Token]*provider{},
		subs: map[Token]func(*Client, *SubscriptionNotification){}, pr: pr, pw: pw}
	if o.resp.Counter != nil {
		c.counter = o.resp.Counter.Load()
	}
	go c.receive()
	var sockOpts uint32 = 1 // HA_GS_SOCKET_NO_SIGNAL
	if o.adapterInfo {
		sockOpts |= 2 // HA_GS_ENABLE_ADAPTER_INFO
	}
	r, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Init{Init: &clientpb.GSInit{
		SocketOptions: sockOpts, Responsiveness: responsivenessToPB(o.resp), DeactivateScript: o.script, Domain: *o.domain}}}, nil)
	if err != nil {
		c.close()
		return nil, err
	}
	c.node = r.NodeNumber
	return c, nil
}

// receive reads the stream: replies go to the waiting caller,
// notifications and checks to the dispatch queue.
func (c *Client) receive() {
	for {
		m, err := c.stream.Recv()
		if err != nil {
			c.mu.Lock()
			if c.err == nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the agent closed the connection")
				}
				c.err = err
			}
			c.notify()
			c.mu.Unlock()
			close(c.replies)
			return
		}
		switch b := m.Body.(type) {
		case *clientpb.GSMessage_Reply:
			c.mu.Lock()
			if c.onReply != nil && c.replyID == b.Reply.Id && b.Reply.Error == 0 {
				// Register the new token before any notification for it
				// can be dispatched.
				c.onReply(b.Reply)
			}
			c.onReply = nil
			c.mu.Unlock()
			c.replies <- b.Reply
		case *clientpb.GSMessage_Notification:
			c.enqueue(item{group: b.Notification.Group, n: b.Notification})
		case *clientpb.GSMessage_Ping:
			if c.o.resp.Type == CounterResponsiveness {
				v := c.o.resp.Counter.Load()
				c.mu.Lock()
				moved := v != c.counter
				c.counter = v
				c.mu.Unlock()
				c.answer(b.Ping.Seq, moved)
			} else {
				c.enqueue(item{ping: b.Ping})
			}
		}
	}
}

func (c *Client) enqueue(it item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit || c.err != nil {
		return
	}
	if it.n != nil {
		it.size = proto.Size(it.n)
	}
	if len(c.queue) >= MaxQueued || c.queued+it.size > MaxQueuedBytes {
		c.err = fmt.Errorf("%d notifications (%d bytes) queued: the client stopped dispatching and was disconnected", len(c.queue), c.queued)
		c.cancel()
		c.notify()
		return
	}
	c.queue = append(c.queue, it)
	c.queued += it.size
	c.notify()
}

// notify wakes every waiting dispatcher and keeps Fd readable exactly while
// something is queued. Called with mu held.
func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
	if c.quit {
		return
	}
	var b [1]byte
	switch {
	case len(c.queue) > 0 && !c.readable:
		c.pw.Write(b[:])
		c.readable = true
	case len(c.queue) == 0 && c.readable:
		c.pr.Read(b[:])
		c.readable = false
	}
}

// answer replies to a responsiveness check.
func (c *Client) answer(seq uint64, ok bool) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.stream.Send(&clientpb.GSRequest{Body: &clientpb.GSRequest_PingReply{PingReply: &clientpb.GSPingReply{Seq: seq, Ok: ok}}})
}

// call sends one request and waits for its reply. onReply, if set, runs
// on the receiving goroutine, under mu, when the request succeeded.
func (c *Client) call(req *clientpb.GSRequest, onReply func(*clientpb.GSReply)) (*clientpb.GSReply, error) {
	if c == nil {
		return nil, ErrNoInit
	}
	c.callMu.Lock()
	defer c.callMu.Unlock()
	c.mu.Lock()
	if c.quit {
		c.mu.Unlock()
		return nil, ErrNoInit
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrNotOK, err)
	}
	c.nextID++
	req.Id = c.nextID
	c.replyID, c.onReply = req.Id, onReply
	c.mu.Unlock()
	c.sendMu.Lock()
	err := c.stream.Send(req)
	c.sendMu.Unlock()
	if err != nil {
		return nil, c.brokenErr(err)
	}
	for {
		r, ok := <-c.replies
		if !ok {
			return nil, c.brokenErr(nil)
		}
		if r.Id == req.Id {
			return r, fromCode(r.Error)
		}
	}
}

func (c *Client) brokenErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit {
		return ErrNoInit
	}
	if c.err != nil {
		err = c.err
	}
	return fmt.Errorf("%w: %v", ErrNotOK, err)
}

// Quit ends the client (ha_gs_quit): each of its providers fails, with
// leave reason ProviderQuit, and its subscriptions end silently. Later calls
// return ErrNoInit, as does a Dispatch running on another goroutine. Quit
// is safe to call twice and from a callback.
func (c *Client) Quit() {
	if c == nil {
		return
	}
	c.mu.Lock()
	done := c.quit
	c.mu.Unlock()
	if done {
		return
	}
	c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Quit{Quit: &clientpb.GSQuit{}}}, nil)
	c.close()
}

func (c *Client) close() {
	c.mu.Lock()
	if c.quit {
		c.mu.Unlock()
		return
	}
	c.quit = true
	c.queue, c.queued = nil, 0
	c.notify()
	c.mu.Unlock()
	c.sendMu.Lock()
	c.stream.CloseSend()
	c.sendMu.Unlock()
	c.cancel()
	c.conn.Close()
	c.pw.Close()
	c.pr.Close()
}

// Fd returns a file descriptor that is readable while notifications are
// queued for Dispatch (the descriptor of ha_gs_init): poll it, then
// Dispatch. Never read or write it.
func (c *Client) Fd() (int, error) {
	if c == nil {
		return -1, ErrNoInit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit {
		return -1, ErrNoInit
	}
	return int(c.pr.Fd()), nil
}

// Dispatch runs the callbacks of queued notifications (ha_gs_dispatch).
// NonBlocking runs what is queued and returns; Blocking runs callbacks as
// notifications arrive and returns only on an error; cs.DispatchOne waits
// for one notification and runs it; cs.DispatchOneNonblocking runs at most
// one and returns cs.ErrTryAgain if none was queued. Several goroutines may
// dispatch at once: notifications of one group are still delivered one at
// a time, in order. A lost agent is ErrNotOK (after what was queued has
// been dispatched); Quit makes it ErrNoInit; other flags are
// ErrBadParameter.
func (c *Client) Dispatch(flags DispatchFlags) error {
	if c == nil {
		return ErrNoInit
	}
	if flags < cs.DispatchOne || flags > cs.DispatchOneNonblocking {
		return ErrBadParameter
	}
	block := flags == cs.DispatchOne || flags == cs.DispatchBlocking
	for {
		it, err := c.next(block, nil)
		if err != nil {
			return err
		}
		if it == nil {
			if flags == cs.DispatchOneNonblocking {
				return cs.ErrTryAgain
			}
			return nil
		}
		c.run(it)
		if flags == cs.DispatchOne || flags == cs.DispatchOneNonblocking {
			return nil
		}
	}
}

// Run dispatches on the calling goroutine until ctx ends (then it returns
// nil) or the client fails or quits (then it returns the error); it is the
// idiomatic alternative to polling Fd.
func (c *Client) Run(ctx context.Context) error {
	if c == nil {
		return ErrNoInit
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		it, err := c.next(true, ctx.Done())
		if err != nil {
			return err
		}
		if it != nil {
			c.run(it)
		}
	}
}

// next takes the oldest queued item whose group has no callback running,
// waiting for one if block (until stop).
func (c *Client) next(block bool, stop <-chan struct{}) (*item, error) {
	for {
		c.mu.Lock()
		if c.quit {
			c.mu.Unlock()
			return nil, ErrNoInit
		}
		for i, it := range c.queue {
			if !c.busy[it.group] {
				c.queue = slices.Delete(c.queue, i, i+1)
				c.queued -= it.size
				c.busy[it.group] = true
				c.notify()
				c.mu.Unlock()
				return &it, nil
			}
		}
		if len(c.queue) == 0 && c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", ErrNotOK, err)
		}
		ch := c.changed
		c.mu.Unlock()
		if !block {
			return nil, nil
		}
		select {
		case <-ch:
		case <-stop:
			return nil, nil
		}
	}
}

// run delivers one item to its callback.
func (c *Client) run(it *item) {
	defer func() {
		c.mu.Lock()
		delete(c.busy, it.group)
		c.notify()
		c.mu.Unlock()
	}()
	if it.ping != nil {
		rc := CallbackNotOK
		if c.cb.Responsiveness != nil {
			rc = c.cb.Responsiveness(c, &ResponsivenessNotification{Type: ResponsivenessNotificationType, Information: c.o.resp})
		}
		c.answer(it.ping.Seq, rc == CallbackOK)
		return
	}
	switch n := notificationFromPB(it.n).(type) {
	case *ProtocolNotification:
		p := c.provider(n.Token)
		if p == nil {
			return
		}
		switch n.Type {
		case NPhaseNotificationType:
			p.cb.NPhase(c, n)
		case ApprovedNotificationType:
			p.cb.Approved(c, n)
		case RejectedNotificationType:
			p.cb.Rejected(c, n)
		}
		if n.Type != NPhaseNotificationType && n.Proposal != nil && slices.Contains(n.Proposal.ChangingMembership, p.id) {
			approved := n.Type == ApprovedNotificationType
			switch n.Protocol {
			case ProtoJoin:
				if !approved {
					c.dropProvider(n.Token) // a rejected joiner's token is dead
				}
			case ProtoLeave, ProtoExpel:
				if approved {
					c.dropProvider(n.Token)
				}
			case ProtoFailureLeave, ProtoCastOut:
				c.dropProvider(n.Token) // cannot be vetoed
			}
		}
	case *AnnouncementNotification:
		if p := c.provider(n.Token); p != nil && p.cb.Announcement != nil {
			p.cb.Announcement(c, n)
		}
	case *MergeNotification:
		if p := c.provider(n.Token); p != nil {
			if p.cb.Merge != nil {
				p.cb.Merge(c, n)
			}
			if n.Summary&GroupDissolved != 0 {
				c.dropProvider(n.Token)
			}
		}
	case *DelayedErrorNotification:
		c.cb.DelayedError(c, n)
		switch n.Protocol {
		case ProtoJoin:
			c.dropProvider(n.RequestToken)
		case ProtoSubscription:
			c.dropSub(n.RequestToken)
		}
	case *SubscriptionNotification:
		c.mu.Lock()
		cb := c.subs[n.Token]
		c.mu.Unlock()
		if cb != nil {
			cb(c, n)
		}
		if n.SubscriptionType&SubscriptionDissolved != 0 {
			c.dropSub(n.Token)
		}
	}
}

func (c *Client) provider(t Token) *provider {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.providers[t]
}

func (c *Client) dropProvider(t Token) {
	c.mu.Lock()
	delete(c.providers, t)
	c.mu.Unlock()
}

func (c *Client) dropSub(t Token) {
	c.mu.Lock()
	delete(c.subs, t)
	c.mu.Unlock()
}

// NodeNumber is this node's number (ha_gs_get_node_number): the node
// number of every provider this client creates.
func (c *Client) NodeNumber() (uint32, error) {
	if c == nil {
		return 0, ErrNoInit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit {
		return 0, ErrNoInit
	}
	return c.node, nil
}

// Join joins a group as a provider, creating the group if it does not
// exist (ha_gs_join). The returned token names the provider from now on;
// it becomes a member when its approved notification (ProtoJoin, itself in
// ChangingMembership) is dispatched — after an n-phase join that everyone,
// the joiner included, voted on. A rejected join kills the token. Joins
// never collide: they queue behind the running protocol.
//
// Sync errors: ErrBadParameter (missing callbacks, negative instance),
// ErrBadGroupAttributes, ErrNameTooLong, ErrInvalidGroup (reserved or
// malformed name), ErrAlreadyAMember, ErrDuplicateInstance,
// ErrNoSourceGroupProvider, ErrInvalidSourceGroup. The same but the first
// may come as delayed errors when another node's request was ordered
// first.
func (c *Client) Join(req JoinRequest) (Token, error) {
	cb := req.Callbacks
	if cb.NPhase == nil || cb.Approved == nil || cb.Rejected == nil {
		return 0, fmt.Errorf("%w: the n-phase, approved and rejected callbacks are required", ErrBadParameter)
	}
	r, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Join{Join: &clientpb.GSJoin{
		Attributes: attrsToPB(req.Attributes), Instance: int32(req.Instance), LocalName: req.LocalName}}},
		func(r *clientpb.GSReply) {
			c.providers[Token(r.Token)] = &provider{id: idFromPB(r.Provider), cb: cb}
		})
	if err != nil {
		return 0, err
	}
	return Token(r.Token), nil
}

// Subscribe follows a group's approved changes (ha_gs_subscribe): first a
// SubscriptionInitial snapshot, then one notification per approved change
// of what Control selects. Subscribers are invisible to the group. An
// unknown group is reported to the delayed-error callback
// (ErrUnknownGroup), which ends the subscription. Sync errors:
// ErrBadParameter (no callback, bad control flags), ErrInvalidGroup,
// ErrNameTooLong.
func (c *Client) Subscribe(req SubscribeRequest) (Token, error) {
	if req.Callback == nil {
		return 0, fmt.Errorf("%w: a subscription callback is required", ErrBadParameter)
	}
	r, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Subscribe{Subscribe: &clientpb.GSSubscribe{
		Control: uint32(req.Control), Group: req.Group}}},
		func(r *clientpb.GSReply) { c.subs[Token(r.Token)] = req.Callback })
	if err != nil {
		return 0, err
	}
	return Token(r.Token), nil
}

// Unsubscribe ends a subscription (ha_gs_unsubscribe); notifications of it
// still queued are dropped. ErrBadMemberToken if tok is not a live
// subscription of this client.
func (c *Client) Unsubscribe(tok Token) error {
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Unsubscribe{Unsubscribe: &clientpb.GSToken{Token: uint64(tok)}}}, nil)
	if err == nil {
		c.dropSub(tok)
	}
	return err
}

// Vote votes in the current phase of the group's n-phase protocol
// (ha_gs_vote), from a callback or any goroutine. vote is VoteApprove,
// VoteContinue or VoteReject; proposedState and message, when not nil
// (an empty non-nil slice is an empty value), propose a new state value
// and attach a message delivered with the next notification;
// defaultVote (NullVote, VoteApprove or VoteReject) replaces the default
// vote for the rest of the protocol unless NullVote.
//
// Sync errors: ErrBadMemberToken, ErrNotAMember (a subscriber's token),
// ErrBadParameter (a bad vote or default value, an oversized value),
// ErrVoteNotExpected (no n-phase protocol waits for this provider's vote:
// none runs, it already voted in this phase, or it is not a voter).
func (c *Client) Vote(tok Token, vote VoteValue, proposedState, message []byte, defaultVote VoteValue) error {
	if len(proposedState) > MaxStateValue || len(message) > MaxMessageLength {
		return ErrBadParameter
	}
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Vote{Vote: &clientpb.GSVote{Token: uint64(tok),
		Value: int32(vote), State: proposedState, HasState: proposedState != nil, Message: message,
		HasMessage: message != nil, DefaultVote: int32(defaultVote)}}}, nil)
	return err
}

// ChangeStateValue proposes a new state value for the group
// (ha_gs_change_state_value), as a one-phase or n-phase protocol. Sync
// errors: ErrBadMemberToken, ErrNotAMember, ErrBadParameter (nil or
// oversized value, bad phases or time limit), ErrCollide (the group runs
// or has queued another protocol); ErrCollide may also come as a delayed
// error when a racing proposal was ordered first.
func (c *Client) ChangeStateValue(tok Token, req StateChangeRequest) error {
	if req.NewState == nil || len(req.NewState) > MaxStateValue {
		return ErrBadParameter
	}
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_ChangeStateValue{ChangeStateValue: &clientpb.GSStateChange{
		Token: uint64(tok), NumPhases: int32(req.NumPhases), TimeLimit: req.TimeLimit, NewState: req.NewState}}}, nil)
	return err
}

// SendMessage broadcasts a message to every provider of the group
// (ha_gs_send_message) as a PROVIDER_MESSAGE protocol. Errors as
// ChangeStateValue.
func (c *Client) SendMessage(tok Token, req MessageRequest) error {
	if req.Message == nil || len(req.Message) > MaxMessageLength {
		return ErrBadParameter
	}
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_SendMessage{SendMessage: &clientpb.GSSendMessage{
		Token: uint64(tok), NumPhases: int32(req.NumPhases), TimeLimit: req.TimeLimit, Message: req.Message}}}, nil)
	return err
}

// Leave proposes this provider's own departure (ha_gs_leave). It stays a
// member, and votes, until the leave is approved; then its token is dead.
// Errors as ChangeStateValue.
func (c *Client) Leave(tok Token, req LeaveRequest) error {
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Leave{Leave: &clientpb.GSLeave{
		Token: uint64(tok), NumPhases: int32(req.NumPhases), TimeLimit: req.TimeLimit, LeaveCode: req.LeaveCode}}}, nil)
	return err
}

// Goodbye leaves the group at once, as if the provider had failed
// (ha_gs_goodbye): the others see a failure leave with reason
// ProviderSaidGoodbye. The token is dead when Goodbye returns nil.
// ErrBacklevelProviders when the group has back-level providers.
func (c *Client) Goodbye(tok Token) error {
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Goodbye{Goodbye: &clientpb.GSToken{Token: uint64(tok)}}}, nil)
	if err == nil {
		c.dropProvider(tok)
	}
	return err
}

// Expel proposes removing providers of the group, this one included if
// listed (ha_gs_expel). The agents of the expelled providers run their
// deactivate scripts (WithDeactivateScript) at the start of
// DeactivatePhase. Sync errors as ChangeStateValue, plus
// ErrUnknownProvider (a listed provider is not a member),
// ErrInvalidDeactivatePhase and ErrBadParameter (empty list, duplicates).
func (c *Client) Expel(tok Token, req ExpelRequest) error {
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_Expel{Expel: &clientpb.GSExpel{
		Token: uint64(tok), NumPhases: int32(req.NumPhases), TimeLimit: req.TimeLimit, List: idsToPB(req.ExpelList),
		ExpelCode: req.ExpelCode, DeactivatePhase: int32(req.DeactivatePhase), DeactivateTimeLimit: req.DeactivateTimeLimit,
		DeactivateArgument: req.DeactivateArgument}}}, nil)
	return err
}

// ChangeAttributes proposes new group attributes
// (ha_gs_change_attributes). GroupName and SourceGroupName cannot change
// (ErrBadGroupAttributes). Errors as ChangeStateValue; a group with
// back-level providers fails with a delayed ErrBacklevelProviders listing
// them.
func (c *Client) ChangeAttributes(tok Token, req ChangeAttributesRequest) error {
	_, err := c.call(&clientpb.GSRequest{Body: &clientpb.GSRequest_ChangeAttributes{ChangeAttributes: &clientpb.GSChangeAttributes{
		Token: uint64(tok), NumPhases: int32(req.NumPhases), TimeLimit: req.TimeLimit, Attributes: attrsToPB(req.Attributes)}}}, nil)
	return err
}

// AdapterInfo finds the node and interface of an IP address
// (ha_gs_get_adapter_info): the address is matched against the configured
// links of every node of the cluster (IPv4 and IPv6). It needs
// WithAdapterInfo at Init (else ErrNotSupported); an invalid address or one
// no node uses is ErrBadParameter.
func (c *Client) AdapterInfo(ip netip.Addr) (Adapter, error) {
	if c == nil {
		return Adapter{}, ErrNoInit
	}
	c.mu.Lock()
	quit, broken := c.quit, c.err
	c.mu.Unlock()
	switch {
	case quit:
		return Adapter{}, ErrNoInit
	case broken != nil:
		return Adapter{}, fmt.Errorf("%w: %v", ErrNotOK, broken)
	case !c.o.adapterInfo:
		return Adapter{}, ErrNotSupported
	case !ip.IsValid():
		return Adapter{}, ErrBadParameter
	}
	st, err := clientpb.NewAgentClient(c.conn).Status(context.Background(), &clientpb.StatusRequest{})
	if err != nil {
		return Adapter{}, fmt.Errorf("%w: %v", ErrNotOK, err)
	}
	return adapterFor(st, ip.Unmap(), localInterface)
}

// adapterFor looks ip up in a status reply; local names the interface
// holding an address on this host.
func adapterFor(st *clientpb.StatusReply, ip netip.Addr, local func(netip.Addr) string) (Adapter, error) {
	for _, n := range st.Nodes {
		for l, s := range n.Addrs {
			ap, err := netip.ParseAddrPort(s)
			if err != nil || ap.Addr().Unmap() != ip {
				continue
			}
			a := Adapter{NodeNumber: n.NodeId, Link: l, InterfaceName: fmt.Sprintf("link%d", l)}
			if n.NodeId == st.NodeId {
				a.Up = true
				if name := local(ip); name != "" {
					a.InterfaceName = name
				}
			}
			for _, lk := range st.Links {
				if lk.Node == n.NodeId && int(lk.Link) == l {
					a.Up = lk.Up
				}
			}
			return a, nil
		}
	}
	return Adapter{}, ErrBadParameter
}

// localInterface names the interface of this host that holds ip, or "".
func localInterface(ip netip.Addr) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().Unmap() == ip {
				return ifc.Name
			}
		}
	}
	return ""
}
