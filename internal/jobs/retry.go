package jobs

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/exportd/exportd/internal/fault"
)

// permanentError marks a failure that another attempt cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as a failure that retrying cannot fix, so the job is
// FAILED at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether retrying err is pointless: it was marked
// Permanent, or it is a domain error about the request or the tenant
// (missing, invalid, not allowed, precondition) rather than about the
// database or the blob store, which are transient.
func IsPermanent(err error) bool {
	if errors.As(err, new(permanentError)) {
		return true
	}
	if _, ok := fault.As(err); !ok {
		return false
	}
	switch fault.KindOf(err) {
	case fault.InvalidArgument, fault.NotFound, fault.FailedPrecondition, fault.PermissionDenied:
		return true
	}
	return false
}

// Reason is the part of a job's error that says what failed: a domain
// error's message as is; for anything else the innermost cause (the
// database's or blob store's own words), without the wrapping that names
// internal keys and steps, which goes to the log instead.
func Reason(err error) string {
	if fe, ok := fault.As(err); ok {
		return fe.Message
	}
	return "report generation failed: " + rootCause(err).Error()
}

// Backoff is the delay before retrying after attempt (1-based) failed:
// base doubled per attempt, capped at limit, with "equal jitter" (half fixed,
// half random) so that jobs failing together do not retry in lockstep, yet
// never retry at once.
func Backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1) //nolint:gosec // jitter needs no cryptographic randomness
}

// rootCause follows the wrapped errors down to the first one, through
// single and multiple (gocloud's) Unwrap.
func rootCause(err error) error {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				next = errs[0] // gocloud puts the cause first, its code second
			}
		}
		if next == nil {
			return err
		}
		err = next
	}
}
