package groupsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/conclave/conclave/internal/groups"
	"github.com/conclave/conclave/internal/sim"
)

// RequestSettle is how long the simulation runs after a request (unless
// it says nowait), so its broadcast is delivered before the next command.
const RequestSettle = 50 * time.Millisecond

// Run executes the group-services commands of a script; handled=false for
// a command it does not know (sim.Script's Extra). CLIENT is NODE/TAG: a
// client process on node NODE; a numeric TAG is also its default provider
// instance. A client whose node restarted is a new process.
//
//	join CLIENT [group=g] [inst=I] [name=LOCAL] [phases=1|n] [limit=S]
//	     [dv=approve|reject] [batch=none|joins|leaves|both] [merge=dissolve|dont]
//	     [source=G] [srcphases=1|n] [srclimit=S] [version=V] [script=ok|fail|hang]
//	vote CLIENT|all [group=G] approve|continue|reject|N [state=V] [msg=M]
//	     [default=approve|reject|null|N]    (all: every dispatching client with an open phase)
//	state CLIENT VALUE [group=G] [phases=1|n] [limit=S]
//	msg CLIENT TEXT [group=G] [phases=1|n] [limit=S]
//	leave CLIENT [group=G] [phases=1|n] [limit=S] [code=C]
//	expel CLIENT TARGET... [group=G] [phases=1|n] [limit=S] [code=C] [dphase=K] [dlimit=S] [darg=A]
//	attrs CLIENT [group=G] [phases=1|n] [limit=S] g.KEY=VALUE...   (the join keys, plus g.group=NAME)
//	goodbye CLIENT [group=G]
//	subscribe CLIENT group=G [state] [joins] [leaves] [deltas-only]
//	unsubscribe CLIENT group=G
//	kill-client CLIENT [quit]      the process exits (quit: calls ha_gs_quit first)
//	deafclient CLIENT [ping=D]     stops dispatching and voting (ping: reported unresponsive after D)
//	dispatch CLIENT                dispatches again
//	form CLIENT... [join keys]     each client joins in turn and every member approves; output discarded
//	notifications [CLIENT...]      what each client dispatched since the last call
//	discard                        forget what the clients dispatched so far
//	groups [G]                     every node's replica, equal replicas on one line
//	check                          the end-of-run properties (after convergence)
//
// Requests print their synchronous error, if any, and then run the
// simulation for RequestSettle unless given nowait.
func (h *Harness) Run(cmd string, args []string) (string, bool, error) {
	pos, kv, flags := splitArgs(args)
	settle := func(out string, err error) (string, bool, error) {
		if err != nil {
			var ge groups.Error
			if !asGroupsError(err, &ge) {
				return "", true, err
			}
			out += fmt.Sprintf("error: %v\n", ge)
		}
		if !flags["nowait"] {
			if rerr := h.S.RunFor(RequestSettle); rerr != nil {
				return out, true, rerr
			}
		}
		return out, true, h.err
	}
	client := func() (*Client, error) {
		if len(pos) == 0 {
			return nil, fmt.Errorf("%s needs a client NODE/TAG", cmd)
		}
		return h.Client(pos[0])
	}
	provider := func() (*Provider, error) {
		c, err := client()
		if err != nil {
			return nil, err
		}
		return c.Provider(kv["group"])
	}
	switch cmd {
	case "join":
		c, err := client()
		if err != nil {
			return "", true, err
		}
		a, err := joinArgs(pos[0], kv)
		if err != nil {
			return "", true, err
		}
		if s, ok := kv["script"]; ok {
			if s != "ok" && s != "fail" && s != "hang" {
				return "", true, fmt.Errorf("script=%q: want ok, fail or hang", s)
			}
			c.Script = s
		}
		_, err = h.Join(c, a)
		return settle("", err)
	case "vote":
		if len(pos) < 2 {
			return "", true, fmt.Errorf("vote CLIENT|all VALUE")
		}
		a, err := voteArgs(pos[1], kv)
		if err != nil {
			return "", true, err
		}
		if pos[0] == "all" {
			for _, c := range h.order {
				if !c.Alive() || c.Deaf {
					continue
				}
				for _, g := range sortedKeys(c.provs) {
					p := c.provs[g]
					if p.Dead || p.latest == nil || p.voted || (kv["group"] != "" && g != kv["group"]) {
						continue
					}
					if err := h.Vote(p, a); err != nil {
						return settle(fmt.Sprintf("%s: ", c.Name), err)
					}
				}
			}
			return settle("", nil)
		}
		p, err := provider()
		if err != nil {
			return "", true, err
		}
		return settle("", h.Vote(p, a))
	case "state", "msg", "leave", "expel", "attrs":
		p, err := provider()
		if err != nil {
			return "", true, err
		}
		np, limit, err := phasesLimit(kv)
		if err != nil {
			return "", true, err
		}
		var f func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error
		switch cmd {
		case "state":
			if len(pos) != 2 {
				return "", true, fmt.Errorf("state CLIENT VALUE")
			}
			v := []byte(pos[1])
			if pos[1] == `""` {
				v = []byte{}
			}
			f = func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.ChangeState(now, c, t, groups.StateChangeArgs{NumPhases: np, TimeLimit: limit, NewState: v})
			}
		case "msg":
			if len(pos) != 2 {
				return "", true, fmt.Errorf("msg CLIENT TEXT")
			}
			f = func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.SendMessage(now, c, t, groups.MessageArgs{NumPhases: np, TimeLimit: limit, Message: []byte(pos[1])})
			}
		case "leave":
			code, err := u32(kv["code"])
			if err != nil {
				return "", true, err
			}
			f = func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.Leave(now, c, t, groups.LeaveArgs{NumPhases: np, TimeLimit: limit, LeaveCode: code})
			}
		case "expel":
			x := groups.ExpelArgs{NumPhases: np, TimeLimit: limit, DeactivateArgument: kv["darg"]}
			for _, t := range pos[1:] {
				id, err := parseID(t)
				if err != nil {
					return "", true, err
				}
				x.List = append(x.List, id)
			}
			var err1, err2, err3 error
			x.ExpelCode, err1 = u32(kv["code"])
			x.DeactivateTimeLimit, err2 = u32(kv["dlimit"])
			var dp uint32
			dp, err3 = u32(kv["dphase"])
			x.DeactivatePhase = int(dp)
			if err := firstErr(err1, err2, err3); err != nil {
				return "", true, err
			}
			f = func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.Expel(now, c, t, x)
			}
		case "attrs":
			e := h.Engine(p.C.Node)
			if e == nil {
				return "", true, fmt.Errorf("node %d is down", p.C.Node)
			}
			gi, ok := e.Group(p.Group)
			if !ok {
				return "", true, fmt.Errorf("group %s unknown on node %d", p.Group, p.C.Node)
			}
			gkv := map[string]string{}
			for k, v := range kv {
				if after, ok := strings.CutPrefix(k, "g."); ok {
					gkv[after] = v
				}
			}
			at, err := applyAttrs(gi.Attributes, gkv)
			if err != nil {
				return "", true, err
			}
			f = func(e *groups.Engine, now time.Time, c groups.ClientID, t groups.Token) error {
				return e.ChangeAttributes(now, c, t, groups.AttributesArgs{NumPhases: np, TimeLimit: limit, Attributes: at})
			}
		}
		return settle("", h.Request(p, f))
	case "goodbye":
		p, err := provider()
		if err != nil {
			return "", true, err
		}
		return settle("", h.Goodbye(p))
	case "subscribe":
		c, err := client()
		if err != nil {
			return "", true, err
		}
		var ctl groups.SubscriptionControl
		for f, v := range map[string]groups.SubscriptionControl{"state": groups.SubscribeState,
			"joins": groups.SubscribeDeltaJoins, "leaves": groups.SubscribeDeltaLeaves, "deltas-only": groups.SubscribeDeltasOnly} {
			if flags[f] {
				ctl |= v
			}
		}
		if ctl == 0 {
			ctl = groups.SubscribeAll
		}
		_, err = h.Subscribe(c, groups.SubscribeArgs{Control: ctl, Group: kv["group"]})
		return settle("", err)
	case "unsubscribe":
		c, err := client()
		if err != nil {
			return "", true, err
		}
		s := c.subs[kv["group"]]
		if s == nil {
			return "", true, fmt.Errorf("%s has no subscription to %q", c.Name, kv["group"])
		}
		return settle("", h.Unsubscribe(s))
	case "kill-client":
		c, err := client()
		if err != nil {
			return "", true, err
		}
		return settle("", h.Kill(c, flags["quit"]))
	case "deafclient", "dispatch":
		c, err := client()
		if err != nil {
			return "", true, err
		}
		var ping time.Duration
		if v := kv["ping"]; v != "" {
			if ping, err = time.ParseDuration(v); err != nil {
				return "", true, err
			}
		}
		return "", true, h.SetDeaf(c, cmd == "deafclient", ping)
	case "form":
		var out strings.Builder
		for _, name := range pos {
			c, err := h.Client(name)
			if err != nil {
				return "", true, err
			}
			a, err := joinArgs(name, kv)
			if err != nil {
				return "", true, err
			}
			if s, ok := kv["script"]; ok {
				c.Script = s
			}
			if _, err := h.Join(c, a); err != nil {
				fmt.Fprintf(&out, "%s: join: %v\n", name, err)
				continue
			}
			if err := h.S.RunFor(RequestSettle); err != nil {
				return out.String(), true, err
			}
			if _, _, err := h.Run("vote", []string{"all", "approve", "group=" + a.Attributes.GroupName}); err != nil {
				return out.String(), true, err
			}
		}
		h.collect()
		h.inbox = map[string][]string{}
		return out.String(), true, h.err
	case "discard":
		h.collect()
		h.inbox = map[string][]string{}
		return "", true, h.err
	case "notifications":
		h.collect()
		return h.Notifications(pos...), true, h.err
	case "groups":
		h.collect()
		return h.Groups(firstOr(pos, "")), true, h.err
	case "check":
		if err := h.Final(); err != nil {
			return fmt.Sprintf("VIOLATION: %v\n", err), true, nil
		}
		return "properties hold\n", true, nil
	}
	return "", false, nil
}

func asGroupsError(err error, ge *groups.Error) bool {
	e, ok := err.(groups.Error)
	if ok {
		*ge = e
	}
	return ok
}

// splitArgs separates positional arguments, key=value pairs and the flags
// (bare words the commands know as flags).
func splitArgs(args []string) (pos []string, kv map[string]string, flags map[string]bool) {
	kv, flags = map[string]string{}, map[string]bool{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
			continue
		}
		switch a {
		case "nowait", "quit", "state", "joins", "leaves", "deltas-only":
			flags[a] = true
			if a != "state" {
				continue
			}
		}
		pos = append(pos, a)
	}
	return pos, kv, flags
}

func firstOr(s []string, d string) string {
	if len(s) > 0 {
		return s[0]
	}
	return d
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func u32(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

func parseID(s string) (groups.ProviderID, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseUint(a, 10, 32)
	i, err2 := strconv.ParseInt(b, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return groups.ProviderID{}, fmt.Errorf("bad provider %q: want NODE/INSTANCE", s)
	}
	return groups.ProviderID{Node: NodeID(n), Instance: int16(i)}, nil
}

func parsePhases(s string) (groups.NumPhases, error) {
	switch s {
	case "", "1":
		return groups.OnePhase, nil
	case "n", "N":
		return groups.NPhase, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("phases=%q: want 1 or n", s)
	}
	return groups.NumPhases(v), nil
}

func phasesLimit(kv map[string]string) (groups.NumPhases, uint32, error) {
	np, err := parsePhases(kv["phases"])
	if err != nil {
		return 0, 0, err
	}
	limit, err := u32(kv["limit"])
	return np, limit, err
}

func parseVote(s string) (groups.VoteValue, error) {
	switch s {
	case "null":
		return groups.NullVote, nil
	case "approve":
		return groups.VoteApprove, nil
	case "continue":
		return groups.VoteContinue, nil
	case "reject":
		return groups.VoteReject, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad vote value %q", s)
	}
	return groups.VoteValue(v), nil
}

func voteArgs(value string, kv map[string]string) (groups.VoteArgs, error) {
	var a groups.VoteArgs
	var err error
	if a.Value, err = parseVote(value); err != nil {
		return a, err
	}
	if d, ok := kv["default"]; ok {
		if a.Default, err = parseVote(d); err != nil {
			return a, err
		}
	}
	if v, ok := kv["state"]; ok {
		a.State, a.HasState = []byte(v), true
	}
	if v, ok := kv["msg"]; ok {
		a.Message, a.HasMessage = []byte(v), true
	}
	return a, nil
}

func joinArgs(client string, kv map[string]string) (groups.JoinArgs, error) {
	a := groups.JoinArgs{LocalName: kv["name"]}
	inst := kv["inst"]
	if inst == "" {
		_, inst, _ = strings.Cut(client, "/")
	}
	v, err := strconv.ParseInt(inst, 10, 16)
	if err != nil {
		return a, fmt.Errorf("client %s: give its instance with inst=", client)
	}
	a.Instance = int16(v)
	name := kv["group"]
	if name == "" {
		name = "g"
	}
	a.Attributes, err = applyAttrs(groups.Attributes{GroupName: name}, kv)
	return a, err
}

// applyAttrs changes the attributes named in kv (the join keys).
func applyAttrs(a groups.Attributes, kv map[string]string) (groups.Attributes, error) {
	var err error
	for k, v := range kv {
		switch k {
		case "group":
			a.GroupName = v
		case "phases":
			a.NumPhases, err = parsePhases(v)
		case "limit":
			a.TimeLimit, err = u32(v)
		case "dv":
			a.DefaultVote, err = parseVote(v)
		case "batch":
			b, ok := map[string]groups.BatchControl{"none": groups.NoBatching, "joins": groups.BatchJoins,
				"leaves": groups.BatchLeaves, "both": groups.BatchBothJoinsAndLeaves}[v]
			if !ok {
				err = fmt.Errorf("batch=%q", v)
			}
			a.BatchControl = b
		case "merge":
			m, ok := map[string]groups.MergeControl{"dissolve": groups.DissolveMerge, "dont": groups.DontMerge}[v]
			if !ok {
				err = fmt.Errorf("merge=%q", v)
			}
			a.MergeControl = m
		case "source":
			a.SourceGroupName = v
		case "srcphases":
			a.SourceReflectionNumPhases, err = parsePhases(v)
		case "srclimit":
			a.SourceProtocolTimeLimit, err = u32(v)
		case "version":
			var x int64
			x, err = strconv.ParseInt(v, 10, 16)
			a.ClientVersion = int16(x)
		}
		if err != nil {
			return a, fmt.Errorf("%s: %w", k, err)
		}
	}
	return a, nil
}

// Script is a sim.Script that also speaks the group-services commands of
// Harness.Run. The simulator's "join A B" (merge two partitions) and the
// provider's "join NODE/TAG ..." share a name: an argument with a slash
// makes it a provider's join.
type Script struct {
	sim.Script
	H *Harness
}

// NewScript returns a script whose cluster command hosts the group
// services.
func NewScript() *Script {
	sc := &Script{}
	sc.Configure = func(o *sim.Options, kv map[string]string) error {
		sc.H = New(o)
		return nil
	}
	sc.Extra = func(cmd string, args []string) (string, bool, error) {
		if sc.H == nil {
			return "", false, nil
		}
		return sc.H.Run(cmd, args)
	}
	return sc
}

// Run executes one command and returns its output.
func (sc *Script) Run(cmd string, args []string) (string, error) {
	if sc.H != nil && sc.H.S == nil {
		sc.H.S = sc.S
	}
	if cmd == "join" && len(args) > 0 && strings.Contains(args[0], "/") && sc.H != nil {
		out, _, err := sc.H.Run(cmd, args)
		return out, err
	}
	out, err := sc.Script.Run(cmd, args)
	if sc.H != nil && sc.H.S == nil {
		sc.H.S = sc.S
	}
	return out, err
}
