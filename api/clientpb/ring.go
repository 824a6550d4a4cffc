package clientpb

import "fmt"

// Text prints a ring id as Corosync does, "<rep hex>.<seq hex>" (e.g.
// "1.1c"), and "-" for no ring. (String is protobuf's own rendering.)
func (r *RingID) Text() string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%x.%x", r.Rep, r.Seq)
}
