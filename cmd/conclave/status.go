package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/conclave/conclave/api/clientpb"
	"github.com/conclave/conclave/internal/ipc"
)

// statusJSON is the stable JSON shape of `conclave status --json`. Fields
// may be added; none may change.
type statusJSON struct {
	NodeID      uint32       `json:"node_id"`
	ClusterName string       `json:"cluster_name"`
	RingID      ringJSON     `json:"ring_id"`
	Members     []uint32     `json:"members"`
	State       string       `json:"state"`
	Links       []linkJSON   `json:"links"`
	Installed   bool         `json:"installed"`
	Incarnation uint64       `json:"incarnation"`
	Nodes       []nodeJSON   `json:"nodes"`
	Encrypted   bool         `json:"encrypted"`
	Counters    countersJSON `json:"counters"`
	// Quorate is the quorum service's answer; absent when quorum is not
	// configured.
	Quorate *bool `json:"quorate,omitempty"`
}

type ringJSON struct {
	Rep uint32 `json:"rep"`
	Seq uint64 `json:"seq"`
}

type linkJSON struct {
	Node uint32 `json:"node"`
	Link uint32 `json:"link"`
	Up   bool   `json:"up"`
}

type nodeJSON struct {
	NodeID    uint32   `json:"node_id"`
	Name      string   `json:"name"`
	Member    bool     `json:"member"`
	Reachable bool     `json:"reachable"`
	Addrs     []string `json:"addrs"`
	HeldUntil string   `json:"held_until,omitempty"`
}

type countersJSON struct {
	ViewChanges     uint64 `json:"view_changes"`
	Delivered       uint64 `json:"delivered"`
	Retransmissions uint64 `json:"retransmissions"`
	DropForged      uint64 `json:"drop_forged"`
	DropCorrupt     uint64 `json:"drop_corrupt"`
	DropReplayed    uint64 `json:"drop_replayed"`
	DropForeign     uint64 `json:"drop_foreign"`
	DropStale       uint64 `json:"drop_stale"`
}

func statusCmd() *cobra.Command {
	var socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show this node's view of the cluster",
		Long: `Show the local agent's node id, cluster name, ring id (printed as corosync
does: <rep hex>.<seq hex>), members, state and the link state to every peer.
The socket is --socket, else $` + ipc.SocketEnv + `, else ` + ipc.DefaultSocket + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			conn, err := ipc.Dial(ctx, ipc.SocketPath(socket))
			if err != nil {
				return err
			}
			defer conn.Close()
			r, err := clientpb.NewAgentClient(conn).Status(ctx, &clientpb.StatusRequest{})
			if err != nil {
				return fmt.Errorf("status: %s", rpcMessage(err))
			}
			if asJSON {
				return writeStatusJSON(cmd.OutOrStdout(), r)
			}
			writeStatusText(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "agent socket (default $"+ipc.SocketEnv+", then "+ipc.DefaultSocket+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a stable shape for scripts)")
	return cmd
}

func toStatusJSON(r *clientpb.StatusReply) statusJSON {
	s := statusJSON{
		NodeID: r.NodeId, ClusterName: r.ClusterName, Members: r.Members, State: r.State,
		Installed: r.Installed, Incarnation: r.Incarnation, Encrypted: r.Encrypted,
		Links: []linkJSON{}, Nodes: []nodeJSON{},
	}
	if s.Members == nil {
		s.Members = []uint32{}
	}
	if r.QuorumConfigured {
		q := r.Quorate
		s.Quorate = &q
	}
	if r.RingId != nil {
		s.RingID = ringJSON{Rep: r.RingId.Rep, Seq: r.RingId.Seq}
	}
	for _, l := range r.Links {
		s.Links = append(s.Links, linkJSON{Node: l.Node, Link: l.Link, Up: l.Up})
	}
	for _, n := range r.Nodes {
		nj := nodeJSON{NodeID: n.NodeId, Name: n.Name, Member: n.Member, Reachable: n.Reachable, Addrs: n.Addrs}
		if n.HeldUntilUnixNano != 0 {
			nj.HeldUntil = time.Unix(0, n.HeldUntilUnixNano).UTC().Format(time.RFC3339)
		}
		s.Nodes = append(s.Nodes, nj)
	}
	if e := r.Engine; e != nil {
		s.Counters.ViewChanges, s.Counters.Delivered, s.Counters.Retransmissions = e.ViewChanges, e.Delivered, e.Retransmissions
	}
	if t := r.Transport; t != nil {
		s.Counters.DropForged, s.Counters.DropCorrupt, s.Counters.DropReplayed = t.DropForged, t.DropCorrupt, t.DropReplayed
		s.Counters.DropForeign, s.Counters.DropStale = t.DropForeign, t.DropStale
	}
	return s
}

func writeStatusJSON(w io.Writer, r *clientpb.StatusReply) error {
	b, err := json.Marshal(toStatusJSON(r))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// rpcMessage is what an agent's error says, without gRPC's wrapping.
func rpcMessage(err error) string {
	if st, ok := grpcstatus.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

func writeStatusText(w io.Writer, r *clientpb.StatusReply) {
	state := r.State
	if r.State == "operational" && !r.Installed {
		state += " (sync)"
	}
	enc := "yes"
	if !r.Encrypted {
		enc = "NO (cleartext)"
	}
	fmt.Fprintf(w, "Cluster name:     %s\n", r.ClusterName)
	fmt.Fprintf(w, "Node ID:          %d\n", r.NodeId)
	fmt.Fprintf(w, "Ring ID:          %s\n", r.RingId.Text())
	fmt.Fprintf(w, "State:            %s\n", state)
	fmt.Fprintf(w, "Members:          %d of %d\n", len(r.Members), len(r.Nodes))
	fmt.Fprintf(w, "Encrypted:        %s\n", enc)
	fmt.Fprintf(w, "\nNodes\n-----\n")
	links := map[uint32][]string{}
	for _, l := range r.Links {
		st := "down"
		if l.Up {
			st = "up"
		}
		links[l.Node] = append(links[l.Node], fmt.Sprintf("%d:%s", l.Link, st))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "Nodeid\tName\tMember\tLinks\t\n")
	for _, n := range r.Nodes {
		member := "no"
		if n.Member {
			member = "yes"
		}
		l := strings.Join(links[n.NodeId], " ")
		if n.NodeId == r.NodeId {
			l = "(local)"
		}
		if n.HeldUntilUnixNano != 0 {
			l += " held out (flapping)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", n.NodeId, n.Name, member, l)
	}
	tw.Flush()
}
