package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/conclave/conclave/api/clientpb"
)

func sampleStatus() *clientpb.StatusReply {
	return &clientpb.StatusReply{
		NodeId: 1, ClusterName: "c", RingId: &clientpb.RingID{Rep: 1, Seq: 12}, Members: []uint32{1, 2, 3},
		State: "operational", Installed: true, Encrypted: true,
		Links: []*clientpb.Link{{Node: 2, Link: 0, Up: true}, {Node: 3, Link: 0, Up: false}},
		Nodes: []*clientpb.Node{
			{NodeId: 1, Name: "node1", Member: true, Reachable: true, Addrs: []string{"127.0.0.1:5405"}},
			{NodeId: 2, Name: "node2", Member: true, Reachable: true, Addrs: []string{"127.0.0.2:5405"}},
			{NodeId: 3, Name: "node3", Member: true, Reachable: false, Addrs: []string{"127.0.0.3:5405"}},
		},
	}
}

// TestStatusJSONShape: scripts parse this; the fields the issue fixed come
// first, in this order, with these names. Fields may only be added after.
func TestStatusJSONShape(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatusJSON(&b, sampleStatus()); err != nil {
		t.Fatal(err)
	}
	want := `{"node_id":1,"cluster_name":"c","ring_id":{"rep":1,"seq":12},"members":[1,2,3],"state":"operational","links":[{"node":2,"link":0,"up":true},{"node":3,"link":0,"up":false}]`
	if !strings.HasPrefix(b.String(), want) {
		t.Fatalf("JSON shape changed:\n got %s\nwant %s…", b.String(), want)
	}
	// No view yet: ring zero, members [] (never null), links [].
	b.Reset()
	writeStatusJSON(&b, &clientpb.StatusReply{NodeId: 2, ClusterName: "c", State: "gather"})
	if want := `{"node_id":2,"cluster_name":"c","ring_id":{"rep":0,"seq":0},"members":[],"state":"gather","links":[]`; !strings.HasPrefix(b.String(), want) {
		t.Fatalf("empty status:\n got %s\nwant %s…", b.String(), want)
	}
}

func TestStatusText(t *testing.T) {
	var b bytes.Buffer
	writeStatusText(&b, sampleStatus())
	out := b.String()
	for _, want := range []string{
		"Cluster name:     c\n",
		"Node ID:          1\n",
		"Ring ID:          1.c\n", // corosync's <rep hex>.<seq hex>
		"State:            operational\n",
		"Members:          3 of 3\n",
		"node1     yes  (local)",
		"node2     yes     0:up",
		"node3     yes   0:down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
}
