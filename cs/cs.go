// Package cs holds what Corosync's corotypes.h shares between its client
// libraries: the cs_error_t codes, the dispatch flags and the tracking
// flags. The values are the C values, so a C library can sit on the Go
// packages (votequorum, and later others) without a translation table.
package cs

import (
	"errors"
	"strconv"
)

// Error is a cs_error_t. Every client call of the votequorum package
// returns one of these values (or nil for CS_OK), so callers match them
// with errors.Is(err, cs.ErrTryAgain) and a C shim returns int(err).
type Error int

// The cs_error_t values. There is no 29, as in corotypes.h.
const (
	OK                   Error = 1
	ErrLibrary           Error = 2
	ErrVersion           Error = 3
	ErrInit              Error = 4
	ErrTimeout           Error = 5
	ErrTryAgain          Error = 6
	ErrInvalidParam      Error = 7
	ErrNoMemory          Error = 8
	ErrBadHandle         Error = 9
	ErrBusy              Error = 10
	ErrAccess            Error = 11
	ErrNotExist          Error = 12
	ErrNameTooLong       Error = 13
	ErrExist             Error = 14
	ErrNoSpace           Error = 15
	ErrInterrupt         Error = 16
	ErrNameNotFound      Error = 17
	ErrNoResources       Error = 18
	ErrNotSupported      Error = 19
	ErrBadOperation      Error = 20
	ErrFailedOperation   Error = 21
	ErrMessageError      Error = 22
	ErrQueueFull         Error = 23
	ErrQueueNotAvailable Error = 24
	ErrBadFlags          Error = 25
	ErrTooBig            Error = 26
	ErrNoSections        Error = 27
	ErrContextNotFound   Error = 28
	ErrTooManyGroups     Error = 30
	ErrSecurity          Error = 100
)

var names = map[Error]string{
	ErrLibrary: "CS_ERR_LIBRARY", ErrVersion: "CS_ERR_VERSION", ErrInit: "CS_ERR_INIT",
	ErrTimeout: "CS_ERR_TIMEOUT", ErrTryAgain: "CS_ERR_TRY_AGAIN", ErrInvalidParam: "CS_ERR_INVALID_PARAM",
	ErrNoMemory: "CS_ERR_NO_MEMORY", ErrBadHandle: "CS_ERR_BAD_HANDLE", ErrBusy: "CS_ERR_BUSY",
	ErrAccess: "CS_ERR_ACCESS", ErrNotExist: "CS_ERR_NOT_EXIST", ErrNameTooLong: "CS_ERR_NAME_TOO_LONG",
	ErrExist: "CS_ERR_EXIST", ErrNoSpace: "CS_ERR_NO_SPACE", ErrInterrupt: "CS_ERR_INTERRUPT",
	ErrNameNotFound: "CS_ERR_NAME_NOT_FOUND", ErrNoResources: "CS_ERR_NO_RESOURCES",
	ErrNotSupported: "CS_ERR_NOT_SUPPORTED", ErrBadOperation: "CS_ERR_BAD_OPERATION",
	ErrFailedOperation: "CS_ERR_FAILED_OPERATION", ErrMessageError: "CS_ERR_MESSAGE_ERROR",
	ErrQueueFull: "CS_ERR_QUEUE_FULL", ErrQueueNotAvailable: "CS_ERR_QUEUE_NOT_AVAILABLE",
	ErrBadFlags: "CS_ERR_BAD_FLAGS", ErrTooBig: "CS_ERR_TOO_BIG", ErrNoSections: "CS_ERR_NO_SECTIONS",
	ErrContextNotFound: "CS_ERR_CONTEXT_NOT_FOUND", ErrTooManyGroups: "CS_ERR_TOO_MANY_GROUPS",
	ErrSecurity: "CS_ERR_SECURITY",
}

// Error returns cs_strerror's text: "success" for OK, the enum name for
// every error, "unknown error" otherwise.
func (e Error) Error() string {
	if e == OK {
		return "success"
	}
	if n, ok := names[e]; ok {
		return n
	}
	return "unknown error"
}

// Code is the C value; OK for a nil error, ErrLibrary for an error that is
// not a cs.Error (a broken connection, say).
func Code(err error) Error {
	if err == nil {
		return OK
	}
	var e Error
	if errors.As(err, &e) {
		return e
	}
	return ErrLibrary
}

// FromCode turns a C value back into a Go error: nil for OK.
func FromCode(c int32) error {
	if Error(c) == OK {
		return nil
	}
	return Error(c)
}

// GoString shows the enum name, for test failures.
func (e Error) GoString() string {
	if e == OK {
		return "CS_OK"
	}
	if n, ok := names[e]; ok {
		return n
	}
	return "cs.Error(" + strconv.Itoa(int(e)) + ")"
}

// DispatchFlags is cs_dispatch_flags_t.
type DispatchFlags int

// The dispatch modes.
const (
	DispatchOne            DispatchFlags = 1 // block until one event, run it
	DispatchAll            DispatchFlags = 2 // run every queued event, do not block
	DispatchBlocking       DispatchFlags = 3 // run events until finalized or an error
	DispatchOneNonblocking DispatchFlags = 4 // run at most one queued event; ErrTryAgain if none
)

// Track flags for TrackStart.
const (
	TrackCurrent     = 0x01 // send the current state once
	TrackChanges     = 0x02 // send the current state, then every change
	TrackChangesOnly = 0x04 // send every change, not the current state
)
