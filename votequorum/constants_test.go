package votequorum

import (
	"testing"

	"github.com/conclave/conclave/internal/quorum"
)

// TestConstantsMatchEngine: the client's constants are the C values, and so
// are the engine's; the two lists must never drift apart.
func TestConstantsMatchEngine(t *testing.T) {
	for _, c := range []struct {
		name         string
		client, core int
	}{
		{"InfoTwoNode", InfoTwoNode, quorum.InfoTwoNode},
		{"InfoQuorate", InfoQuorate, quorum.InfoQuorate},
		{"InfoWaitForAll", InfoWaitForAll, quorum.InfoWaitForAll},
		{"InfoLastManStanding", InfoLastManStanding, quorum.InfoLastManStanding},
		{"InfoAutoTieBreaker", InfoAutoTieBreaker, quorum.InfoAutoTieBreaker},
		{"InfoAllowDownscale", InfoAllowDownscale, quorum.InfoAllowDownscale},
		{"InfoQdeviceRegistered", InfoQdeviceRegistered, quorum.InfoQdeviceRegistered},
		{"InfoQdeviceAlive", InfoQdeviceAlive, quorum.InfoQdeviceAlive},
		{"InfoQdeviceCastVote", InfoQdeviceCastVote, quorum.InfoQdeviceCastVote},
		{"InfoQdeviceMasterWins", InfoQdeviceMasterWins, quorum.InfoQdeviceMasterWins},
		{"NodestateMember", NodestateMember, quorum.NodestateMember},
		{"NodestateDead", NodestateDead, quorum.NodestateDead},
		{"NodestateLeaving", NodestateLeaving, quorum.NodestateLeaving},
		{"QdeviceNodeID", QdeviceNodeID, quorum.QdeviceNodeID},
		{"QdeviceMaxNameLen", QdeviceMaxNameLen, quorum.QdeviceMaxNameLen},
		{"QdeviceDefaultTimeout", QdeviceDefaultTimeout, int(quorum.DefaultQdeviceTimeout.Milliseconds())},
		{"QdeviceDefaultSyncTimeout", QdeviceDefaultSyncTimeout, int(quorum.DefaultQdeviceSyncTimeout.Milliseconds())},
	} {
		if c.client != c.core {
			t.Errorf("%s: client %d, engine %d", c.name, c.client, c.core)
		}
	}
}
