package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

// StoredEvent is an event as the log holds it.
type StoredEvent struct {
	reports.Event
	ClientEventID string
	Hash          string
	rawMeta       []byte
}

const storedColumns = "sequence, occurred_at, actor_id, actor_type, action, resource_type, resource_id, outcome, category, phi, ip, user_agent, request_id, metadata, client_event_id, hash"

func scanStored(rows *sql.Rows) (StoredEvent, error) {
	var (
		e   StoredEvent
		cid sql.NullString
	)
	if err := rows.Scan(&e.Sequence, &e.OccurredAt, &e.ActorID, &e.ActorType, &e.Action, &e.ResourceType,
		&e.ResourceID, &e.Outcome, &e.Category, &e.PHI, &e.IP, &e.UserAgent, &e.RequestID, &e.rawMeta, &cid, &e.Hash); err != nil {
		return e, fmt.Errorf("scan event: %w", err)
	}
	e.OccurredAt = e.OccurredAt.UTC()
	e.ClientEventID = cid.String
	return e, nil
}

// EventQuery selects events of one tenant. Zero fields do not filter.
type EventQuery struct {
	From, To  time.Time // occurred_at in [From, To)
	ActorID   string
	Action    string
	Category  string
	Outcome   string
	PHI       *bool
	After     int64 // only sequences above it; 0 does not filter
	Desc      bool  // newest sequence first
	PageSize  int
	PageToken string
}

// EventPage is one page of QueryEvents.
type EventPage struct {
	Events        []StoredEvent
	NextPageToken string
}

// pageToken is opaque to clients: the last sequence served and the order,
// so a token from one order cannot be replayed in the other.
func pageToken(seq int64, desc bool) string {
	o := "a"
	if desc {
		o = "d"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(o + strconv.FormatInt(seq, 10)))
}

func parsePageToken(tok string, desc bool) (int64, error) {
	bad := fault.Invalid(fault.Violation{Field: "page_token", Rule: "page_token.valid", Message: "is not a page token of this query"})
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 {
		return 0, bad
	}
	if (b[0] == 'd') != desc || (b[0] != 'a' && b[0] != 'd') {
		return 0, bad
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || n < 0 {
		return 0, bad
	}
	return n, nil
}

// QueryEvents returns one page of the tenant's events in sequence order.
// Pages follow the sequence (keyset pagination), so events written while a
// client pages never shift, repeat or hide the ones it has not seen yet.
func (s *Store) QueryEvents(ctx context.Context, tenantID string, q EventQuery) (EventPage, error) {
	var page EventPage
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	after := int64(-1)
	if q.PageToken != "" {
		n, err := parsePageToken(q.PageToken, q.Desc)
		if err != nil {
			return page, err
		}
		after = n
	}
	err := s.scanEvents(ctx, tenantID, q, after, size+1, func(e StoredEvent) error {
		page.Events = append(page.Events, e)
		return nil
	})
	if err != nil {
		return page, err
	}
	if len(page.Events) > size {
		page.Events = page.Events[:size]
		page.NextPageToken = pageToken(page.Events[size-1].Sequence, q.Desc)
	}
	return page, nil
}

// StreamEvents visits every event QueryEvents would page through, reading
// a bounded batch at a time so memory stays flat and no long transaction is
// held.
func (s *Store) StreamEvents(ctx context.Context, tenantID string, q EventQuery, fn func(StoredEvent) error) error {
	const batch = 1000
	after := int64(-1)
	for {
		n := 0
		err := s.scanEvents(ctx, tenantID, q, after, batch, func(e StoredEvent) error {
			n++
			after = e.Sequence
			return fn(e)
		})
		if err != nil || n < batch {
			return err
		}
	}
}

// scanEvents runs one keyset query: events matching q past sequence after
// (-1: from the start), at most limit of them.
func (s *Store) scanEvents(ctx context.Context, tenantID string, q EventQuery, after int64, limit int, fn func(StoredEvent) error) error {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", s.ph(len(args))))
	}
	add("tenant_id = ?", tenantID)
	if !q.From.IsZero() {
		add("occurred_at >= ?", micro(q.From))
	}
	if !q.To.IsZero() {
		add("occurred_at < ?", micro(q.To))
	}
	if q.ActorID != "" {
		add("actor_id = ?", q.ActorID)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Category != "" {
		add("category = ?", q.Category)
	}
	if q.Outcome != "" {
		add("outcome = ?", q.Outcome)
	}
	if q.PHI != nil {
		add("phi = ?", *q.PHI)
	}
	if q.After > 0 {
		add("sequence > ?", q.After)
	}
	order := "ASC"
	if q.Desc {
		order = "DESC"
		if after >= 0 {
			add("sequence < ?", after)
		}
	} else if after >= 0 {
		add("sequence > ?", after)
	}
	args = append(args, limit)
	query := "SELECT " + storedColumns + " FROM audit_events WHERE " + strings.Join(where, " AND ") +
		" ORDER BY sequence " + order + " LIMIT " + s.ph(len(args))
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanStored(rows)
		if err != nil {
			return err
		}
		if len(e.rawMeta) > 2 {
			if err := json.Unmarshal(e.rawMeta, &e.Metadata); err != nil {
				return fmt.Errorf("decode event %d metadata: %w", e.Sequence, err)
			}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
