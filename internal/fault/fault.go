// Package fault holds the domain errors of exportd: each says what kind of
// failure it is, and the server maps that kind to a Connect code in one place.
package fault

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kind classifies a domain error. The zero value is an unexpected failure.
type Kind int

// The kinds of domain error. Each maps to exactly one Connect code.
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	ResourceExhausted
	AlreadyExists
	Unavailable
)

// Violation is one field that failed a rule.
type Violation struct {
	Field   string // proto field name, e.g. "end_date"
	Number  int32  // proto field number
	Rule    string // rule id, e.g. "end_date.after_start"
	Message string
}

// Error is a domain error a client may see.
type Error struct {
	Kind       Kind
	Message    string
	Violations []Violation
	// RetryAfter, when set, tells the client how long to wait before trying
	// again (resource_exhausted).
	RetryAfter time.Duration
	err        error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.err }

// New returns an error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an InvalidArgument error listing field violations.
func Invalid(vs ...Violation) *Error {
	msg := "invalid request"
	if len(vs) > 0 {
		msg = vs[0].Field + ": " + vs[0].Message
		if len(vs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(vs)-1)
		}
	}
	return &Error{Kind: InvalidArgument, Message: msg, Violations: vs}
}

// Wrap keeps cause behind a client-safe error of kind k.
func Wrap(k Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), err: cause}
}

// KindOf returns the kind of err, Internal when it is no domain error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns err's domain error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// echoLimit is how much of a client's value a message repeats.
const echoLimit = 64

// Echo quotes a value the client sent for a message back to it: at most 64
// characters (an ellipsis says it was cut), with NUL bytes, control
// characters and invalid UTF-8 escaped, so that an answer never carries
// what a hostile caller put in a path or field, nor grows with it.
func Echo(v string) string {
	cut := false
	n := 0
	for i := range v { // rune starts; an invalid byte counts as one
		if n == echoLimit {
			v, cut = v[:i], true
			break
		}
		n++
	}
	q := strconv.Quote(v)
	if cut {
		q += "…"
	}
	return q
}
