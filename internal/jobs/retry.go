package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
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

// Verdict is what a failed attempt means for its job.
type Verdict struct {
	// Permanent is true when another attempt would fail the same way.
	Permanent bool
	// Reason is what the job's error tells a person: what failed and, when
	// they can, what to do about it.
	Reason string
}

// Classify decides, for every failed attempt in one place, whether retrying
// could help and what to tell the person who asked for the export:
//
//   - a domain error about the request or the tenant (invalid, missing, not
//     allowed, precondition), or an error marked Permanent, fails the job
//     at once with its own message;
//   - a defect of exportd itself (a statement the database refuses, bind
//     arguments that do not fit a statement, a report that cannot be
//     encoded) fails it at once too, saying so and naming the job for the
//     operator: no attempt can succeed until exportd is fixed;
//   - anything else (the database or blob store unreachable, busy, timed
//     out) is transient and retried.
func Classify(err error, jobID string) Verdict {
	if d := defect(err); d != "" {
		return Verdict{Permanent: true, Reason: fmt.Sprintf(
			"the report could not be generated because of a defect in exportd (%s); retrying will not help: report it to your operator with job id %s",
			d, jobID)}
	}
	if errors.As(err, new(permanentError)) {
		return Verdict{Permanent: true, Reason: Reason(err)}
	}
	if r := storageFault(err); r != "" {
		return Verdict{Permanent: true, Reason: r}
	}
	if _, ok := fault.As(err); ok {
		switch fault.KindOf(err) {
		case fault.InvalidArgument, fault.NotFound, fault.FailedPrecondition, fault.PermissionDenied:
			return Verdict{Permanent: true, Reason: Reason(err)}
		}
	}
	return Verdict{Reason: Reason(err)}
}

// IsPermanent reports whether retrying err is pointless (see Classify).
func IsPermanent(err error) bool { return Classify(err, "").Permanent }

// defect describes err when it is a defect of exportd rather than a
// passing failure of what it depends on, and is "" otherwise.
func defect(err error) string {
	// PostgreSQL says which class of error a statement met: these classes
	// are the statement's own fault, never the server's state.
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code.Class() {
		case "0A", // feature not supported
			"21", // cardinality violation
			"22", // data exception
			"42": // syntax error or access rule violation (undefined column, table, parameter …)
			return fmt.Sprintf("PostgreSQL refused a statement: SQLSTATE %s: %s", pe.Code, pe.Message)
		}
		return ""
	}
	// SQLite reports a statement it cannot prepare (syntax, unknown table or
	// column) as SQLITE_ERROR, "SQL logic error"; busy, locked, I/O and full
	// have codes of their own and stay transient.
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_RANGE, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
			return "SQLite refused a statement: " + se.Error()
		}
		return ""
	}
	// Arguments that do not fit a statement come back as plain errors from
	// database/sql and the drivers, before the database sees anything.
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		for _, p := range argumentErrors {
			if strings.HasPrefix(msg, p) {
				return "the arguments of a statement do not fit it: " + msg
			}
		}
	}
	var (
		unsupportedType  *json.UnsupportedTypeError
		unsupportedValue *json.UnsupportedValueError
		marshaler        *json.MarshalerError
		syntax           *json.SyntaxError
		unmarshalType    *json.UnmarshalTypeError
	)
	if errors.Is(err, reports.ErrUnsupported) || errors.As(err, &unsupportedType) || errors.As(err, &unsupportedValue) ||
		errors.As(err, &marshaler) || errors.As(err, &syntax) || errors.As(err, &unmarshalType) {
		return "the report could not be encoded: " + rootCause(err).Error()
	}
	return ""
}

// storageFault describes an artifact write that no retry fixes without an
// operator: a full volume, a rename across file systems, a read-only or
// forbidden folder. "" otherwise.
func storageFault(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the artifact store is full (" + rootCause(err).Error() + "); retrying will not help until the operator frees space or grows the volume behind --blob-url"
	case errors.Is(err, syscall.EXDEV):
		return "the artifact store renames across file systems (" + rootCause(err).Error() + "); the operator must keep temporary files in the artifact folder (--blob-url file:///…?no_tmp_dir=true)"
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "exportd may not write to the artifact store (" + rootCause(err).Error() + "); retrying will not help until the operator fixes the folder behind --blob-url"
	}
	return ""
}

// argumentErrors begin the messages of database/sql, lib/pq and
// modernc.org/sqlite for bind arguments that do not match a statement.
var argumentErrors = []string{
	"missing argument with index", // modernc.org/sqlite: a ? without its argument
	"missing named argument",      // modernc.org/sqlite: a ?NNN or :name without its argument
	"sql: expected ",              // database/sql: "expected N arguments, got M"
	"sql: converting argument",    // database/sql: a value no driver type holds
	"sql: Scan error on column",   // database/sql: a column of another type than its destination
	"pq: got ",                    // lib/pq: "got N parameters but the statement requires M"
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
