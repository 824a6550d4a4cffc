package gs

import (
	"errors"
	"strconv"
)

// Error is an ha_gs_rc_t. Every call returns one of these values (nil for
// HA_GS_OK), possibly wrapped with more context, so callers match them
// with errors.Is(err, gs.ErrCollide); delayed-error notifications carry
// one in ReturnCode. The numbers are the agent's (only HA_GS_OK = 0 is
// published; the others follow the spec's §5.10 table order), so a C shim
// can return int(Code(err)).
type Error int

// The ha_gs_rc_t values. "Sync" errors are returned by the call, "async"
// ones reach the delayed-error callback.
const (
	OK                        Error = 0  // HA_GS_OK
	ErrNotOK                  Error = 1  // HA_GS_NOT_OK: the connection to the agent is lost (sync)
	ErrNoInit                 Error = 2  // HA_GS_NO_INIT: Init not called, or Quit called (sync)
	ErrBadMemberToken         Error = 3  // HA_GS_BAD_MEMBER_TOKEN: not a live token of this client (sync)
	ErrBadParameter           Error = 4  // HA_GS_BAD_PARAMETER: a parameter is invalid (sync or async)
	ErrBadGroupAttributes     Error = 5  // HA_GS_BAD_GROUP_ATTRIBUTES: invalid, or not the group's (sync or async)
	ErrBacklevelProviders     Error = 6  // HA_GS_BACKLEVEL_PROVIDERS: back-level providers cannot run it (sync for Goodbye, async)
	ErrCollide                Error = 7  // HA_GS_COLLIDE: another protocol is running or queued (sync or async)
	ErrVoteNotExpected        Error = 8  // HA_GS_VOTE_NOT_EXPECTED: no phase waits for this vote (sync)
	ErrUnknownGroup           Error = 9  // HA_GS_UNKNOWN_GROUP: subscribe to a group that does not exist (async)
	ErrExists                 Error = 10 // HA_GS_EXISTS: Init twice on one connection (sync)
	ErrNameTooLong            Error = 11 // HA_GS_NAME_TOO_LONG: group or local name too long (sync)
	ErrNoMemory               Error = 12 // HA_GS_NO_MEMORY (sync)
	ErrNotAMember             Error = 13 // HA_GS_NOT_A_MEMBER: a subscriber token where a provider is needed (sync)
	ErrInvalidGroup           Error = 14 // HA_GS_INVALID_GROUP: reserved or malformed group name (sync)
	ErrAlreadyAMember         Error = 15 // HA_GS_ALREADY_A_MEMBER: this client is already a provider of the group (sync)
	ErrDuplicateInstance      Error = 16 // HA_GS_DUPLICATE_INSTANCE_NUMBER: (node, instance) in use (sync or async)
	ErrNoSourceGroupProvider  Error = 17 // HA_GS_NO_SOURCE_GROUP_PROVIDER: target join without a source provider here (sync or async)
	ErrInvalidSourceGroup     Error = 18 // HA_GS_INVALID_SOURCE_GROUP: source missing, itself, or a cycle (sync or async)
	ErrUnknownProvider        Error = 19 // HA_GS_UNKNOWN_PROVIDER: expel names a non-member (sync or async)
	ErrInvalidDeactivatePhase Error = 20 // HA_GS_INVALID_DEACTIVATE_PHASE (sync)
	ErrNotSupported           Error = 21 // HA_GS_NOT_SUPPORTED: e.g. AdapterInfo without WithAdapterInfo (sync)
	ErrGroupDissolved         Error = 22 // HA_GS_GROUP_DISSOLVED: a pending request overtaken by a merge (async)
)

var errorNames = map[Error]string{
	OK:                        "HA_GS_OK",
	ErrNotOK:                  "HA_GS_NOT_OK",
	ErrNoInit:                 "HA_GS_NO_INIT",
	ErrBadMemberToken:         "HA_GS_BAD_MEMBER_TOKEN",
	ErrBadParameter:           "HA_GS_BAD_PARAMETER",
	ErrBadGroupAttributes:     "HA_GS_BAD_GROUP_ATTRIBUTES",
	ErrBacklevelProviders:     "HA_GS_BACKLEVEL_PROVIDERS",
	ErrCollide:                "HA_GS_COLLIDE",
	ErrVoteNotExpected:        "HA_GS_VOTE_NOT_EXPECTED",
	ErrUnknownGroup:           "HA_GS_UNKNOWN_GROUP",
	ErrExists:                 "HA_GS_EXISTS",
	ErrNameTooLong:            "HA_GS_NAME_TOO_LONG",
	ErrNoMemory:               "HA_GS_NO_MEMORY",
	ErrNotAMember:             "HA_GS_NOT_A_MEMBER",
	ErrInvalidGroup:           "HA_GS_INVALID_GROUP",
	ErrAlreadyAMember:         "HA_GS_ALREADY_A_MEMBER",
	ErrDuplicateInstance:      "HA_GS_DUPLICATE_INSTANCE_NUMBER",
	ErrNoSourceGroupProvider:  "HA_GS_NO_SOURCE_GROUP_PROVIDER",
	ErrInvalidSourceGroup:     "HA_GS_INVALID_SOURCE_GROUP",
	ErrUnknownProvider:        "HA_GS_UNKNOWN_PROVIDER",
	ErrInvalidDeactivatePhase: "HA_GS_INVALID_DEACTIVATE_PHASE",
	ErrNotSupported:           "HA_GS_NOT_SUPPORTED",
	ErrGroupDissolved:         "HA_GS_GROUP_DISSOLVED",
}

// Error returns the C name (HA_GS_COLLIDE), which is what operators grep
// for.
func (e Error) Error() string {
	if n, ok := errorNames[e]; ok {
		return n
	}
	return "gs.Error(" + strconv.Itoa(int(e)) + ")"
}

// GoString shows the C name in test failures.
func (e Error) GoString() string { return e.Error() }

// Code is the C value of err: OK for nil, the Error inside err if there is
// one, else ErrNotOK (to the C API, any other failure is a lost agent).
func Code(err error) Error {
	if err == nil {
		return OK
	}
	var e Error
	if errors.As(err, &e) {
		return e
	}
	return ErrNotOK
}

// fromCode turns a C value into a Go error: nil for HA_GS_OK.
func fromCode(c int32) error {
	if Error(c) == OK {
		return nil
	}
	return Error(c)
}
