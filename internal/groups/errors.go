package groups

import (
	"errors"
	"strconv"
)

// Error is an ha_gs_rc_t. Local requests return one of these synchronously
// (nil for HA_GS_OK), and delayed-error notifications carry one, so callers
// match them with errors.Is(err, groups.ErrCollide) and a C shim can return
// int(err). The numeric values are ours: only HA_GS_OK = 0 is published
// (spec §5.10, U-1); the order is the spec's table order, published codes
// first.
//
// The values live in the engine package for now; the client package gs will
// re-export them so the client and the engine agree on one table.
type Error int

// The ha_gs_rc_t values.
const (
	OK                        Error = 0  // HA_GS_OK
	ErrNotOK                  Error = 1  // connection to the daemon lost
	ErrNoInit                 Error = 2  // ha_gs_init not called
	ErrBadMemberToken         Error = 3  // token is not a valid provider/subscriber of this client
	ErrBadParameter           Error = 4  // invalid parameter (vote value, size, phases, …)
	ErrBadGroupAttributes     Error = 5  // attributes invalid or not matching the group's
	ErrBacklevelProviders     Error = 6  // back-level providers cannot run this protocol
	ErrCollide                Error = 7  // another protocol is active or queued
	ErrVoteNotExpected        Error = 8  // no protocol phase is waiting for this vote
	ErrUnknownGroup           Error = 9  // subscribe to a group that does not exist
	ErrExists                 Error = 10 // ha_gs_init twice
	ErrNameTooLong            Error = 11 // group or local name too long
	ErrNoMemory               Error = 12 // allocation failed
	ErrNotAMember             Error = 13 // subscriber token where a provider token is required
	ErrInvalidGroup           Error = 14 // reserved or malformed group name
	ErrAlreadyAMember         Error = 15 // this client already has a provider in the group
	ErrDuplicateInstance      Error = 16 // (node, instance) already in use in the group
	ErrNoSourceGroupProvider  Error = 17 // target join on a node without a source provider
	ErrInvalidSourceGroup     Error = 18 // source group missing, self or a cycle
	ErrUnknownProvider        Error = 19 // expel names a provider that is not a member
	ErrInvalidDeactivatePhase Error = 20 // bad deactivate phase in an expel request
	ErrNotSupported           Error = 21 // feature not supported
	ErrGroupDissolved         Error = 22 // pending join/subscribe overtaken by a merge dissolution
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

// Error returns the C name (HA_GS_COLLIDE), which is what operators grep for.
func (e Error) Error() string {
	if n, ok := errorNames[e]; ok {
		return n
	}
	return "groups.Error(" + strconv.Itoa(int(e)) + ")"
}

// GoString shows the C name in test failures.
func (e Error) GoString() string { return e.Error() }

// Code is the C value of err: OK for nil, ErrNotOK for an error that is not
// an Error (the caller lost its daemon, as far as the C API can tell).
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

// FromCode turns a C value back into a Go error: nil for HA_GS_OK.
func FromCode(c int32) error {
	if Error(c) == OK {
		return nil
	}
	return Error(c)
}
