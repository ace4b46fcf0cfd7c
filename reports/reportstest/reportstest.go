// Package reportstest provides in-memory reports.Source implementations for
// tests: a fake over fixed slices, a small fixed dataset that exercises every
// section and control, and a synthetic source of any size for benchmarks.
package reportstest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/exportd/exportd/reports"
)

// Source is a reports.Source over events and attestations held in memory.
// It applies filters the way a database source must, so tests of code that
// uses a Source check the same semantics.
type Source struct {
	events       []reports.Event
	attestations []reports.Attestation
}

// NewSource returns a Source over copies of events and attestations, sorted
// as a database source would return them.
func NewSource(events []reports.Event, attestations []reports.Attestation) *Source {
	s := &Source{
		events:       slices.Clone(events),
		attestations: slices.Clone(attestations),
	}
	slices.SortFunc(s.events, func(a, b reports.Event) int {
		return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.Sequence, b.Sequence))
	})
	slices.SortFunc(s.attestations, func(a, b reports.Attestation) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return s
}

// Match reports whether e passes f.
func Match(f reports.EventFilter, e *reports.Event) bool {
	return !e.OccurredAt.Before(f.From) && e.OccurredAt.Before(f.To) &&
		e.Sequence <= f.MaxSequence &&
		(f.Category == "" || e.Category == f.Category) &&
		(!f.PHIOnly || e.PHI)
}

// Events implements reports.Source. Like a database source it hands fn one
// reused Event, so code that keeps the pointer is caught by tests.
func (s *Source) Events(ctx context.Context, f reports.EventFilter, fn func(*reports.Event) error) error {
	var e reports.Event
	for i := range s.events {
		if !Match(f, &s.events[i]) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e = s.events[i]
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// CountEvents implements reports.Source.
func (s *Source) CountEvents(ctx context.Context, f reports.EventFilter) (int64, error) {
	var n int64
	for i := range s.events {
		if Match(f, &s.events[i]) {
			n++
		}
	}
	return n, ctx.Err()
}

// Attestations implements reports.Source.
func (s *Source) Attestations(ctx context.Context, from, to time.Time, fn func(*reports.Attestation) error) error {
	in := func(t *time.Time) bool { return t != nil && !t.Before(from) && t.Before(to) }
	var a reports.Attestation
	for i := range s.attestations {
		r := &s.attestations[i]
		if !in(&r.CreatedAt) && !in(r.RevokedAt) && !in(r.SupersededAt) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		a = *r
		if err := fn(&a); err != nil {
			return err
		}
	}
	return nil
}

// Synthetic is a reports.Source of N generated events, one per second from
// Start with sequences 1…N, cycling through realistic actions; it holds no
// rows, so benchmarks measure the generator and not the fake.
type Synthetic struct {
	N     int64
	Start time.Time
}

var syntheticActions = []struct {
	category, action, outcome string
	phi                       bool
}{
	{"access", "auth.login", "success", false},
	{"data", "record.read", "success", false},
	{"data", "patient.read", "success", true},
	{"api", "export.create", "success", false},
	{"access", "auth.login_failed", "failure", false},
	{"data", "record.write", "success", false},
	{"data", "patient.update", "success", true},
	{"access", "apikey.auth_failed", "failure", false},
	{"access", "export.denied", "denied", false},
	{"access", "role.change", "success", false},
}

// head fills the fields filters look at; the rest is filled only for
// events that pass, so counting costs next to nothing.
func (s Synthetic) head(i int64, e *reports.Event) {
	a := syntheticActions[i%int64(len(syntheticActions))]
	*e = reports.Event{
		Sequence:   i + 1,
		OccurredAt: s.Start.Add(time.Duration(i) * time.Second),
		Action:     a.action,
		Outcome:    a.outcome,
		Category:   a.category,
		PHI:        a.phi,
	}
}

func (s Synthetic) tail(i int64, e *reports.Event) {
	e.ActorID = actorIDs[i%int64(len(actorIDs))]
	e.ActorType = "user"
	e.ResourceType = "record"
	e.ResourceID = "rec-" + strconv.FormatInt(i%1009, 10)
	e.IP = "203.0.113.7"
	e.UserAgent = "exportctl/1.0"
	e.RequestID = "req-" + strconv.FormatInt(i, 10)
}

var actorIDs = func() []string {
	ids := make([]string, 97)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%d", i)
	}
	return ids
}()

// Events implements reports.Source.
func (s Synthetic) Events(ctx context.Context, f reports.EventFilter, fn func(*reports.Event) error) error {
	var e reports.Event
	for i := range s.N {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.head(i, &e)
		if !Match(f, &e) {
			continue
		}
		s.tail(i, &e)
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// CountEvents implements reports.Source.
func (s Synthetic) CountEvents(ctx context.Context, f reports.EventFilter) (int64, error) {
	var n int64
	var e reports.Event
	for i := range s.N {
		s.head(i, &e)
		if Match(f, &e) {
			n++
		}
	}
	return n, ctx.Err()
}

// Attestations implements reports.Source; a synthetic source has none.
func (Synthetic) Attestations(context.Context, time.Time, time.Time, func(*reports.Attestation) error) error {
	return nil
}
