package groups

import "encoding/json"

// kind says what a broadcast message asks every replica to do.
type kind uint8

const (
	kJoin kind = iota + 1
	kLeave
	kExpel
	kState
	kMessage
	kAttrs
	kVote
	kTimeout
	kFail
	kDeact
	kResp
	kSyncHeader
	kSyncGroup
	kAdapter
)

// failNote names one provider that failed (or said goodbye, or whose client
// quit), as part of one failure event.
type failNote struct {
	G    string     `json:"g"`
	P    ProviderID `json:"p"`
	Info LeaveInfo  `json:"li"`
}

// wmsg is the one envelope every replicated message travels in. JSON keeps
// the format readable in traces and lets fields be added without a version
// dance; the engine never depends on the encoding being canonical, only on
// every replica decoding the same bytes. (A binary codec can replace it
// behind encode/decode if the benchmark says so.)
type wmsg struct {
	K kind       `json:"k"`
	G string     `json:"g,omitempty"`
	P ProviderID `json:"p"`

	// The message id of a normal message: the sender's engine incarnation
	// (Config.Incarnation) and its message counter. The sender's node is
	// the delivery's. Sync messages have none (Num 0).
	Inc uint64 `json:"in,omitempty"`
	Num uint64 `json:"mn,omitempty"`

	Attrs     *Attributes `json:"a,omitempty"`
	LocalName string      `json:"ln,omitempty"`
	Phases    NumPhases   `json:"np,omitempty"`
	Limit     uint32      `json:"tl,omitempty"`
	Code      uint32      `json:"c,omitempty"`
	Value     []byte      `json:"v,omitempty"`
	HasValue  bool        `json:"hv,omitempty"`
	Msg       []byte      `json:"m,omitempty"`
	HasMsg    bool        `json:"hm,omitempty"`

	List   []ProviderID `json:"l,omitempty"`
	DPhase int          `json:"dp,omitempty"`
	DLimit uint32       `json:"dl,omitempty"`
	DArg   string       `json:"da,omitempty"`

	Seq     uint64    `json:"s,omitempty"`
	Phase   int       `json:"ph,omitempty"`
	Vote    VoteValue `json:"vv,omitempty"`
	Default VoteValue `json:"dv,omitempty"`

	Fails      []failNote       `json:"f,omitempty"`
	Deact      DeactivateStatus `json:"ds,omitempty"`
	Responding bool             `json:"rs,omitempty"`

	// PrevRing and Pos name a sync copy's lineage: the ring its replica
	// was last installed in and how many of that ring's deliveries it
	// applied.
	PrevRing RingID `json:"pr"`
	Pos      uint64 `json:"po,omitempty"`
	Group    *group `json:"gr,omitempty"`

	// Ad is the sender's own adapters: in an adapter announcement and in
	// its sync header.
	Ad *adState `json:"ad,omitempty"`
}

func encode(m *wmsg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Every field is a plain value; failing here is a programming error.
		panic("groups: encode: " + err.Error())
	}
	return b
}

func decode(b []byte) (*wmsg, error) {
	var m wmsg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
