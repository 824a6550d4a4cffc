package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/gs"
	"github.com/conclave/conclave/internal/ipc"
)

// groupsCmd is `conclave groups`: what the group services hold, as this
// node's replica sees it.
func groupsCmd() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List, show or watch the group services' groups",
		Long: `Show the groups of the group services (the GSAPI, package gs) as the local
agent's replica holds them: every agent holds every group, so any node answers
for the whole cluster (subscriber counts are per node).

The socket is --socket, else $` + ipc.SocketEnv + `, else ` + ipc.DefaultSocket + `.`,
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "agent socket (default $"+ipc.SocketEnv+", then "+ipc.DefaultSocket+")")
	dial := func(ctx context.Context) (clientpb.GroupServicesClient, func(), error) {
		conn, err := ipc.Dial(ctx, ipc.SocketPath(socket))
		if err != nil {
			return nil, nil, err
		}
		return clientpb.NewGroupServicesClient(conn), func() { conn.Close() }, nil
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the groups: providers, subscribers, state size, protocol in progress",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
			defer cancel()
			cl, done, err := dial(ctx)
			if err != nil {
				return err
			}
			defer done()
			r, err := cl.ListGroups(ctx, &clientpb.GSListRequest{})
			if err != nil {
				return fmt.Errorf("groups list: %s", rpcMessage(err))
			}
			if listJSON {
				return writeJSON(c.OutOrStdout(), toGroupListJSON(r))
			}
			writeGroupList(c.OutOrStdout(), r)
			return nil
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON (a stable shape for scripts)")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one group: attributes, providers in join order, state value, protocol in progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
			defer cancel()
			cl, done, err := dial(ctx)
			if err != nil {
				return err
			}
			defer done()
			g, err := cl.ShowGroup(ctx, &clientpb.GSShowRequest{Name: args[0]})
			if err != nil {
				if grpcstatus.Code(err) == codes.NotFound {
					return &exitError{2, fmt.Errorf("groups show: %s", rpcMessage(err))}
				}
				return fmt.Errorf("groups show: %s", rpcMessage(err))
			}
			if showJSON {
				return writeJSON(c.OutOrStdout(), toGroupJSON(g, true))
			}
			writeGroup(c.OutOrStdout(), g)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON (a stable shape for scripts)")
	var watchJSON bool
	watch := &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a group's protocols live: notifications, votes, time-outs (until interrupted)",
		Long: `Print every step of one group's protocols as this node's replica applies them:
each notification (n-phase, approved, rejected, announcement, merge, delayed
error) with the providers it goes to on any node, each vote, each phase
time-out and each deactivate script's result. The group need not have a local
client, nor exist yet. --json prints one JSON object (a GSTrace) per line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cl, done, err := dial(ctx)
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.WatchGroup(ctx, &clientpb.GSWatchRequest{Name: args[0]})
			if err != nil {
				return fmt.Errorf("groups watch: %s", rpcMessage(err))
			}
			out := c.OutOrStdout()
			for {
				t, err := st.Recv()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("groups watch: %s", rpcMessage(err))
				}
				if watchJSON {
					b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(t)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s\n", b)
					continue
				}
				fmt.Fprintln(out, traceLine(t))
			}
		},
	}
	watch.Flags().BoolVar(&watchJSON, "json", false, "print one JSON object per event")
	cmd.AddCommand(list, show, watch)
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// The stable JSON shapes of `conclave groups list --json` and `show
// --json`. Fields may be added; none may change. Enum values are the
// GSAPI's C names.

type groupListJSON struct {
	NodeID uint32      `json:"node_id"`
	RingID ringJSON    `json:"ring_id"`
	Groups []groupJSON `json:"groups"`
}

type groupJSON struct {
	Name        string         `json:"name"`
	Attributes  attributesJSON `json:"attributes"`
	Providers   []providerJSON `json:"providers"` // join order
	StateBytes  uint32         `json:"state_bytes"`
	State       *valueJSON     `json:"state,omitempty"` // show only
	Protocol    *protocolJSON  `json:"protocol"`        // null when idle
	Queued      uint32         `json:"queued"`
	Subscribers uint32         `json:"subscribers"` // on this node
	RingID      *ringJSON      `json:"ring_id,omitempty"`
}

type attributesJSON struct {
	NumPhases                 string `json:"num_phases"`
	SourceReflectionNumPhases string `json:"source_reflection_num_phases"`
	DefaultVote               string `json:"default_vote"`
	BatchControl              string `json:"batch_control"`
	MergeControl              string `json:"merge_control"`
	TimeLimit                 uint32 `json:"time_limit"`
	SourceProtocolTimeLimit   uint32 `json:"source_protocol_time_limit"`
	SourceGroup               string `json:"source_group"`
	Version                   int32  `json:"version"`
	ClientVersion             int32  `json:"client_version"`
}

type providerJSON struct {
	Node      uint32 `json:"node"`
	Instance  int32  `json:"instance"`
	LocalName string `json:"local_name"`
}

// valueJSON is a state value: always as hex, and as text when printable.
type valueJSON struct {
	Text *string `json:"text,omitempty"`
	Hex  string  `json:"hex"`
}

type protocolJSON struct {
	Type      string   `json:"type"`
	Seq       uint64   `json:"seq"`
	Phase     int32    `json:"phase"`
	NumPhases string   `json:"num_phases"`
	Changing  []string `json:"changing"`
	Voters    []string `json:"voters"`
	Voted     []string `json:"voted"`
	Waiting   []string `json:"waiting"`
}

func toGroupListJSON(r *clientpb.GSListReply) groupListJSON {
	out := groupListJSON{NodeID: r.NodeId, Groups: []groupJSON{}}
	if r.RingId != nil {
		out.RingID = ringJSON{Rep: r.RingId.Rep, Seq: r.RingId.Seq}
	}
	for _, g := range r.Groups {
		out.Groups = append(out.Groups, toGroupJSON(g, false))
	}
	return out
}

func toGroupJSON(g *clientpb.GSGroup, withState bool) groupJSON {
	a := g.Attributes
	if a == nil {
		a = &clientpb.GSAttributes{}
	}
	out := groupJSON{Name: g.Name, Providers: []providerJSON{}, StateBytes: g.StateSize, Queued: g.Queued, Subscribers: g.Subscribers,
		Attributes: attributesJSON{
			NumPhases: gs.NumPhases(a.NumPhases).String(), SourceReflectionNumPhases: gs.NumPhases(a.SourceReflectionNumPhases).String(),
			DefaultVote: gs.VoteValue(a.DefaultVote).String(), BatchControl: gs.BatchControl(a.BatchControl).String(),
			MergeControl: gs.MergeControl(a.MergeControl).String(), TimeLimit: a.TimeLimit,
			SourceProtocolTimeLimit: a.SourceProtocolTimeLimit, SourceGroup: a.SourceGroupName,
			Version: a.Version, ClientVersion: a.ClientVersion,
		}}
	for _, p := range g.Providers {
		out.Providers = append(out.Providers, providerJSON{Node: p.Id.GetNode(), Instance: p.Id.GetInstance(), LocalName: p.LocalName})
	}
	if withState {
		v := valueJSON{Hex: hex.EncodeToString(g.State)}
		if printable(g.State) {
			s := string(g.State)
			v.Text = &s
		}
		out.State = &v
	}
	if p := g.Protocol; p != nil {
		pj := &protocolJSON{Type: gs.ProtocolType(p.Type).String(), Seq: p.Seq, Phase: p.Phase, NumPhases: gs.NumPhases(p.NumPhases).String(),
			Changing: idStrings(p.Changing), Voters: idStrings(p.Voters), Voted: idStrings(p.Voted), Waiting: waiting(p)}
		out.Protocol = pj
	}
	if g.RingId != nil {
		out.RingID = &ringJSON{Rep: g.RingId.Rep, Seq: g.RingId.Seq}
	}
	return out
}

func idString(id *clientpb.GSProviderID) string {
	return strconv.FormatUint(uint64(id.GetNode()), 10) + "/" + strconv.Itoa(int(id.GetInstance()))
}

func idStrings(ids []*clientpb.GSProviderID) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, idString(id))
	}
	return out
}

// waiting lists the voters that have not voted in this phase.
func waiting(p *clientpb.GSProtocolInfo) []string {
	voted := map[string]bool{}
	for _, id := range p.Voted {
		voted[idString(id)] = true
	}
	out := []string{}
	for _, id := range p.Voters {
		if s := idString(id); !voted[s] {
			out = append(out, s)
		}
	}
	return out
}

// printable: valid UTF-8 of printable characters and spaces, so that it
// can be shown as text.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != ' ' && r != '\t' && r != '\n' {
			return false
		}
	}
	return true
}

// valueText shows a state value or message: quoted text when printable,
// else hex; long values are cut at limit bytes.
func valueText(b []byte, limit int) string {
	cut := ""
	if len(b) > limit {
		b, cut = b[:limit], fmt.Sprintf("… (%d bytes shown)", limit)
	}
	if printable(b) {
		return strconv.Quote(string(b)) + cut
	}
	return "hex " + hex.EncodeToString(b) + cut
}

func writeGroupList(w io.Writer, r *clientpb.GSListReply) {
	fmt.Fprintf(w, "Groups on node %d (ring %s): %d\n", r.NodeId, r.RingId.Text(), len(r.Groups))
	if len(r.Groups) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name\tProviders\tSubscribers\tState\tProtocol\n")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d B\t%s\n", g.Name, len(g.Providers), g.Subscribers, g.StateSize, protocolSummary(g.Protocol, g.Queued))
	}
	tw.Flush()
}

func protocolSummary(p *clientpb.GSProtocolInfo, queued uint32) string {
	s := "idle"
	if p != nil {
		s = fmt.Sprintf("%s #%d phase %d, %d/%d votes", gs.ProtocolType(p.Type), p.Seq, p.Phase, len(p.Voted), len(p.Voters))
		if gs.NumPhases(p.NumPhases) != gs.NPhase {
			s = fmt.Sprintf("%s #%d (one phase)", gs.ProtocolType(p.Type), p.Seq)
		}
	}
	if queued > 0 {
		s += fmt.Sprintf(", %d queued", queued)
	}
	return s
}

func writeGroup(w io.Writer, g *clientpb.GSGroup) {
	a := g.Attributes
	if a == nil {
		a = &clientpb.GSAttributes{}
	}
	limit := func(s uint32) string {
		if s == 0 {
			return "no time limit"
		}
		return fmt.Sprintf("time limit %d s", s)
	}
	src := a.SourceGroupName
	if src == "" {
		src = "-"
	}
	state := valueText(g.State, 512)
	fmt.Fprintf(w, "Group:            %s\n", g.Name)
	fmt.Fprintf(w, "Ring ID:          %s\n", g.RingId.Text())
	fmt.Fprintf(w, "Joins, failures:  %s, %s\n", gs.NumPhases(a.NumPhases), limit(a.TimeLimit))
	fmt.Fprintf(w, "Default vote:     %s\n", gs.VoteValue(a.DefaultVote))
	fmt.Fprintf(w, "Batch control:    %s\n", gs.BatchControl(a.BatchControl))
	fmt.Fprintf(w, "Merge control:    %s\n", gs.MergeControl(a.MergeControl))
	fmt.Fprintf(w, "Source group:     %s\n", src)
	if a.SourceGroupName != "" {
		fmt.Fprintf(w, "Source protocols: %s, %s\n", gs.NumPhases(a.SourceReflectionNumPhases), limit(a.SourceProtocolTimeLimit))
	}
	fmt.Fprintf(w, "State value:      %s (%d bytes)\n", state, len(g.State))
	fmt.Fprintf(w, "Subscribers:      %d on this node\n", g.Subscribers)
	fmt.Fprintf(w, "Queued:           %d\n", g.Queued)
	if p := g.Protocol; p != nil {
		fmt.Fprintf(w, "Protocol:         %s #%d, phase %d, %s\n", gs.ProtocolType(p.Type), p.Seq, p.Phase, gs.NumPhases(p.NumPhases))
		if len(p.Changing) > 0 {
			fmt.Fprintf(w, "Changing:         %s\n", strings.Join(idStrings(p.Changing), " "))
		}
		if gs.NumPhases(p.NumPhases) == gs.NPhase {
			fmt.Fprintf(w, "Votes received:   %d of %d (%s)", len(p.Voted), len(p.Voters), strings.Join(idStrings(p.Voted), " "))
			if wt := waiting(p); len(wt) > 0 {
				fmt.Fprintf(w, "; waiting for %s", strings.Join(wt, " "))
			}
			fmt.Fprintln(w)
		}
	} else {
		fmt.Fprintf(w, "Protocol:         idle\n")
	}
	fmt.Fprintf(w, "\nProviders (join order)\n----------------------\n")
	fmt.Fprintf(w, "%6s  %8s  %s\n", "Node", "Instance", "Local name")
	for _, p := range g.Providers {
		fmt.Fprintf(w, "%6d  %8d  %s\n", p.Id.GetNode(), p.Id.GetInstance(), p.LocalName)
	}
}

// traceLine is one line of `conclave groups watch`.
func traceLine(t *clientpb.GSTrace) string {
	ts := time.Unix(0, t.UnixNano).Format("15:04:05.000")
	head := fmt.Sprintf("%s %s %s:", ts, t.RingId.Text(), t.GroupName)
	to := strings.Join(idStrings(t.Providers), " ")
	switch t.Kind {
	case clientpb.GSTrace_SNAPSHOT:
		g := t.Group
		if g == nil {
			return head + " no such group (yet)"
		}
		return fmt.Sprintf("%s %d providers [%s], state %s, %s", head, len(g.Providers), strings.Join(providerIDs(g), " "),
			valueText(g.State, 64), protocolSummary(g.Protocol, g.Queued))
	case clientpb.GSTrace_VOTE:
		s := fmt.Sprintf("%s vote %s %s phase %d of #%d", head, to, gs.VoteValue(t.Vote), t.Phase, t.Seq)
		if t.DefaultVote != 0 {
			s += " default " + gs.VoteValue(t.DefaultVote).String()
		}
		if t.HasState {
			s += " +state"
		}
		if t.HasMessage {
			s += " +message"
		}
		return s
	case clientpb.GSTrace_TIMEOUT:
		return fmt.Sprintf("%s time limit closed phase %d of #%d", head, t.Phase, t.Seq)
	case clientpb.GSTrace_DEACTIVATE:
		st := map[int32]string{1: "succeeded", 2: "failed", 3: "exceeded its time limit"}[t.DeactivateStatus]
		return fmt.Sprintf("%s deactivate script of %s %s", head, to, st)
	case clientpb.GSTrace_NOTIFY:
		return head + " " + notificationText(t.Notification) + " → " + to
	}
	return head + " " + t.Kind.String()
}

func providerIDs(g *clientpb.GSGroup) []string {
	var out []string
	for _, p := range g.Providers {
		out = append(out, idString(p.Id))
	}
	return out
}

func notificationText(n *clientpb.GSNotification) string {
	if n == nil {
		return "?"
	}
	typ := strings.TrimSuffix(strings.TrimPrefix(gs.NotificationType(n.Type).String(), "HA_GS_"), "_NOTIFICATION")
	parts := []string{typ}
	if p := gs.ProtocolType(n.Protocol); n.Protocol != 0 {
		parts = append(parts, p.String())
	}
	if pr := n.Proposal; pr != nil {
		if pr.Phase != nil && n.Type == int32(gs.NPhaseNotificationType) {
			parts = append(parts, fmt.Sprintf("phase %d", pr.Phase.Number))
		} else if pr.Phase != nil {
			parts = append(parts, fmt.Sprintf("phases %d", pr.Phase.Number))
		}
		if len(pr.ChangingMembership) > 0 {
			parts = append(parts, "changing ["+strings.Join(idStrings(pr.ChangingMembership), " ")+"]")
		}
		if pr.HasProposedState {
			parts = append(parts, "state "+valueText(pr.ProposedState, 64))
		}
		if pr.HasMessage {
			parts = append(parts, "message "+valueText(pr.Message, 64))
		}
		if n.Type != int32(gs.NPhaseNotificationType) {
			parts = append(parts, "membership ["+strings.Join(idStrings(pr.ProposedMembership), " ")+"]")
		}
	}
	if n.Summary != 0 {
		parts = append(parts, "summary "+gs.SummaryCode(n.Summary).String())
	}
	if len(n.Announcement) > 0 {
		parts = append(parts, "providers ["+strings.Join(idStrings(n.Announcement), " ")+"]")
	}
	if len(n.Merging) > 0 {
		parts = append(parts, "merging ["+strings.Join(idStrings(n.Merging), " ")+"]")
	}
	if n.Error != 0 {
		parts = append(parts, gs.Error(n.Error).Error())
	}
	return strings.Join(parts, " ")
}
