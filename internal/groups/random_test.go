package groups

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// TestRandom drives random requests, votes, time, partitions, crashes and
// restarts over several seeds. After every step the replicas of each
// partition must be identical (the harness checks it in settle), local
// tokens must agree with the replica, and at the end, with everyone voting
// APPROVE and time passing, every protocol must finish.
func TestRandom(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomRun(t, int64(seed)) })
	}
}

func randomRun(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	// Adapter flips draw from their own source, so that the other steps of
	// a seed stay what they were.
	arng := rand.New(rand.NewSource(-seed))
	all := []NodeID{1, 2, 3, 4}
	h := newHarness(t, all...)
	attrs := map[string]Attributes{}
	for _, g := range []string{"g1", "g2"} {
		attrs[g] = Attributes{GroupName: g, NumPhases: NumPhases(1 + rng.Intn(2)), TimeLimit: uint32(1 + rng.Intn(3)),
			DefaultVote: VoteValue(1 + 2*rng.Intn(2)), BatchControl: BatchControl(rng.Intn(4))}
	}
	attrs["t"] = Attributes{GroupName: "t", SourceGroupName: "g1", SourceReflectionNumPhases: NPhase, SourceProtocolTimeLimit: 2}
	var clients []who
	inst := int16(0)
	live := func() []NodeID {
		var out []NodeID
		for _, n := range all {
			if h.eng[n] != nil {
				out = append(out, n)
			}
		}
		return out
	}
	randomVotes := func(always bool) {
		h.collect()
		for k, ns := range h.notes {
			for _, n := range ns {
				if n.Type != NotifyNPhase || h.eng[k.node] == nil {
					continue
				}
				w := who{node: k.node, client: n.Client, tok: k.tok}
				r := rng.Intn(20)
				a := VoteArgs{Value: VoteApprove}
				switch {
				case always:
				case r < 2:
					continue // never votes
				case r < 5:
					a.Value = VoteReject
				case r < 8:
					a.Value = VoteContinue
				}
				if !always && rng.Intn(4) == 0 {
					a.State, a.HasState = []byte(fmt.Sprint("v", rng.Intn(5))), true
				}
				if !always && rng.Intn(4) == 0 {
					a.Default = VoteValue(1 + 2*rng.Intn(2))
				}
				err := h.eng[k.node].Vote(h.now, w.client, w.tok, a)
				if err != nil {
					if _, ok := err.(Error); !ok {
						t.Fatalf("vote error %v", err)
					}
				}
			}
			delete(h.notes, k)
		}
	}
	for step := 0; step < 120; step++ {
		nodes := live()
		n := nodes[rng.Intn(len(nodes))]
		e := h.eng[n]
		var w who
		if len(clients) > 0 {
			w = clients[rng.Intn(len(clients))]
		}
		wOK := len(clients) > 0 && h.eng[w.node] != nil
		if arng.Intn(3) == 0 {
			h.eng[nodes[arng.Intn(len(nodes))]].AdapterStatus(h.now, arng.Intn(3), arng.Intn(2) == 0)
		}
		switch r := rng.Intn(100); {
		case r < 20:
			names := []string{"g1", "g2", "t"}
			name := names[rng.Intn(3)]
			inst++
			nextClient++
			c := who{node: n, client: nextClient, inst: inst}
			tok, err := e.Join(h.now, c.client, JoinArgs{Attributes: attrs[name], Instance: inst})
			if err == nil {
				c.tok = tok
				clients = append(clients, c)
			}
		case r < 30 && wOK:
			h.eng[w.node].ChangeState(h.now, w.client, w.tok, StateChangeArgs{NumPhases: NumPhases(1 + rng.Intn(2)),
				TimeLimit: uint32(rng.Intn(3)), NewState: []byte(fmt.Sprint("s", step))})
		case r < 35 && wOK:
			h.eng[w.node].SendMessage(h.now, w.client, w.tok, MessageArgs{NumPhases: NPhase, TimeLimit: 2, Message: []byte("m")})
		case r < 40 && wOK:
			h.eng[w.node].Leave(h.now, w.client, w.tok, LeaveArgs{NumPhases: NumPhases(1 + rng.Intn(2)), TimeLimit: 2})
		case r < 43 && wOK:
			h.eng[w.node].Goodbye(h.now, w.client, w.tok)
		case r < 46 && wOK:
			h.eng[w.node].ClientGone(h.now, w.client, rng.Intn(2) == 0)
		case r < 50 && wOK:
			if g := h.eng[w.node].groups[h.eng[w.node].tokens[w.tok].groupOr()]; g != nil && len(g.Providers) > 0 {
				victim := g.Providers[rng.Intn(len(g.Providers))].ID
				h.eng[w.node].Expel(h.now, w.client, w.tok, ExpelArgs{NumPhases: NumPhases(1 + rng.Intn(2)), TimeLimit: 2,
					List: []ProviderID{victim}, DeactivatePhase: rng.Intn(2)})
			}
		case r < 70:
			randomVotes(false)
		case r < 80:
			h.advance(time.Duration(1+rng.Intn(3)) * time.Second)
		case r < 85:
			// Partition the live nodes in two.
			var p1, p2 []NodeID
			for _, m := range nodes {
				if rng.Intn(2) == 0 {
					p1 = append(p1, m)
				} else {
					p2 = append(p2, m)
				}
			}
			var parts [][]NodeID
			for _, p := range [][]NodeID{p1, p2} {
				if len(p) > 0 {
					parts = append(parts, p)
				}
			}
			h.view(parts...)
		case r < 90:
			h.view(nodes)
		case r < 93 && len(nodes) > 1:
			h.kill(n)
			h.view(live())
		case r < 96:
			for _, m := range all {
				if h.eng[m] == nil {
					h.eng[m] = h.restart(m)
					h.view(live())
					break
				}
			}
		}
		h.settle()
		// Deactivate scripts: none registered, so nothing is asked.
		for _, m := range live() {
			if len(h.deacts[m]) > 0 {
				t.Fatalf("unexpected deactivation %+v", h.deacts[m])
			}
		}
		checkTokens(t, h)
	}
	// Heal, then let everyone approve until all is done.
	for _, m := range all {
		if h.eng[m] == nil {
			h.eng[m] = h.restart(m)
		}
	}
	h.view(all)
	for i := 0; i < 50; i++ {
		randomVotes(true)
		// Providers that skipped a phase without a time limit would stall
		// it forever (a limit of 0 means none); they vote now.
		for _, m := range all {
			e := h.eng[m]
			for name, g := range e.groups {
				if g.Proto == nil {
					continue
				}
				for _, b := range g.Proto.Ballots {
					if tok, ok := e.byProv[provKey{name, b.P.Instance}]; ok && b.P.Node == m && !b.Voted && !b.Failed {
						e.Vote(h.now, e.tokens[tok].client, tok, VoteArgs{Value: VoteApprove})
					}
				}
			}
		}
		h.advance(time.Second)
	}
	// Every replica holds every node's adapters as the node reports them.
	for _, m := range all {
		for _, n := range all {
			if got, want := h.eng[m].adapters[n].Links, h.eng[n].localLinks(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("node %d holds links %v for node %d, which reports %v", m, got, n, want)
			}
		}
	}
	for _, m := range all {
		for name, g := range h.eng[m].groups {
			if g.busy() {
				t.Fatalf("node %d: group %s still busy: %s", m, name, encode(&wmsg{Group: g}))
			}
		}
	}
}

func (ti *tokenInfo) groupOr() string {
	if ti == nil {
		return ""
	}
	return ti.group
}

// checkTokens: a member token is a member of the local replica (or being
// removed); a member of the replica on this node has a token unless its
// departure is under way.
func checkTokens(t *testing.T, h *harness) {
	t.Helper()
	for n, e := range h.eng {
		for tok, ti := range e.tokens {
			if ti.sub {
				continue
			}
			g := e.groups[ti.group]
			if ti.member && (g == nil || g.memberIndex(ProviderID{n, ti.inst}) < 0) {
				t.Fatalf("node %d token %d: member of %s but not in the replica", n, tok, ti.group)
			}
		}
		for name, g := range e.groups {
			for _, m := range g.Providers {
				if m.ID.Node != n {
					continue
				}
				if _, ok := e.byProv[provKey{name, m.ID.Instance}]; ok {
					continue
				}
				if !leaving(g, m.ID) {
					t.Fatalf("node %d: provider %v of %s has no token and is not leaving", n, m.ID, name)
				}
			}
		}
	}
}

func leaving(g *group, id ProviderID) bool {
	for _, b := range g.Fails {
		if queuedFail(b.Entries, id) {
			return true
		}
	}
	if p := g.Proto; p != nil && (p.failed(id) || (p.Type == ProtoFailureLeave && p.isChanging(id))) {
		return true
	}
	return false
}
