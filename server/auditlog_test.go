package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

var evBase = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// input is a valid event i: actors, actions, categories, outcomes and phi
// vary with i so every filter has something to keep and something to drop.
func input(i int) *auditv1.AuditEventInput {
	cats := []string{"api", "access", "data"}
	outs := []string{"success", "failure", "denied", "success"}
	return &auditv1.AuditEventInput{
		ClientEventId: fmt.Sprintf("ev-%d", i),
		OccurredAt:    timestamppb.New(evBase.Add(time.Duration(i) * time.Minute)),
		ActorId:       fmt.Sprintf("user%d@example.com", i%4),
		ActorType:     "user",
		Action:        fmt.Sprintf("test.action%d", i%5),
		ResourceType:  "record",
		ResourceId:    fmt.Sprintf("rec_%d", i),
		Outcome:       outs[i%4],
		Category:      cats[i%3],
		Phi:           i%2 == 0,
		Ip:            "2001:db8::" + strconv.Itoa(i%100),
		UserAgent:     "ingester/1.0",
		RequestId:     fmt.Sprintf("req_%d", i),
	}
}

func inputs(from, n int) []*auditv1.AuditEventInput {
	out := make([]*auditv1.AuditEventInput, n)
	for i := range out {
		out[i] = input(from + i)
	}
	return out
}

// violationPaths renders each violation's field path as `events[3].ip`.
func violationPaths(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
		t.Fatalf("error = %v, want invalid_argument", err)
	}
	var out []string
	for _, d := range ce.Details() {
		m, err := d.Value()
		if err != nil {
			t.Fatal(err)
		}
		vs, ok := m.(*validatepb.Violations)
		if !ok {
			continue
		}
		for _, v := range vs.GetViolations() {
			var sb strings.Builder
			for i, el := range v.GetField().GetElements() {
				if i > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(el.GetFieldName())
				if s, ok := el.GetSubscript().(*validatepb.FieldPathElement_Index); ok {
					fmt.Fprintf(&sb, "[%d]", s.Index)
				}
			}
			out = append(out, sb.String())
		}
	}
	slices.Sort(out)
	return out
}

type auditEnv struct {
	env          *servertest.Env
	tenant       string
	writer, read auditv1connect.AuditLogServiceClient
}

func startAudit(t *testing.T, dialect string) auditEnv {
	env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
	tn := env.Tenant(t, "Acme", true)
	return auditEnv{
		env:    env,
		tenant: tn,
		writer: auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "ingester", "ingest-svc"))),
		read:   auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "viewer", "vera@example.com"))),
	}
}

// count returns how many events of the test's actions the log holds.
func (a auditEnv) count(t *testing.T) int {
	t.Helper()
	n := 0
	for i := range 5 {
		var tok string
		for {
			r, err := a.read.QueryEvents(context.Background(), connect.NewRequest(&auditv1.QueryEventsRequest{
				Filter: &auditv1.EventFilter{Action: fmt.Sprintf("test.action%d", i)}, PageSize: 1000, PageToken: tok}))
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			n += len(r.Msg.GetEvents())
			if tok = r.Msg.GetNextPageToken(); tok == "" {
				break
			}
		}
	}
	return n
}

// TestWriteEventsValidation: each kind of bad batch is refused with a
// violation at the right field path, and nothing of it is stored.
func TestWriteEventsValidation(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			a := startAudit(t, d)
			cases := []struct {
				name  string
				batch func() []*auditv1.AuditEventInput
				want  []string
			}{
				{"oversized", func() []*auditv1.AuditEventInput { return inputs(0, 1001) }, []string{"events"}},
				{"future", func() []*auditv1.AuditEventInput {
					b := inputs(0, 5)
					b[3].OccurredAt = timestamppb.New(time.Now().Add(time.Hour))
					return b
				}, []string{"events[3].occurred_at"}},
				{"unknown category", func() []*auditv1.AuditEventInput {
					b := inputs(0, 5)
					b[2].Category = "billing"
					return b
				}, []string{"events[2].category"}},
				{"invalid ip", func() []*auditv1.AuditEventInput {
					b := inputs(0, 5)
					b[3].Ip = "300.1.2.3"
					b[4].Ip = "not-an-ip"
					return b
				}, []string{"events[3].ip", "events[4].ip"}},
				{"unknown outcome and empty action", func() []*auditv1.AuditEventInput {
					b := inputs(0, 2)
					b[0].Outcome = "maybe"
					b[1].Action = ""
					return b
				}, []string{"events[0].outcome", "events[1].action"}},
				{"empty", func() []*auditv1.AuditEventInput { return nil }, []string{"events"}},
				{"before 2000 and metadata over 64 KiB", func() []*auditv1.AuditEventInput {
					b := inputs(0, 3)
					b[0].OccurredAt = timestamppb.New(time.Unix(0, 0))
					b[2].Metadata, _ = structpb.NewStruct(map[string]any{"blob": strings.Repeat("x", 70_000)})
					return b
				}, []string{"events[0].occurred_at", "events[2].metadata"}},
				{"nul", func() []*auditv1.AuditEventInput {
					b := inputs(0, 3)
					b[1].ResourceId = "a\x00b"
					b[2].Metadata, _ = structpb.NewStruct(map[string]any{"k": "x\x00"})
					return b
				}, []string{"events[1].resource_id", "events[2].metadata"}},
			}
			for _, c := range cases {
				_, err := a.writer.WriteEvents(context.Background(), connect.NewRequest(&auditv1.WriteEventsRequest{Events: c.batch()}))
				if got := violationPaths(t, err); !slices.Equal(got, c.want) {
					t.Errorf("%s: violations at %v, want %v", c.name, got, c.want)
				}
			}
			if n := a.count(t); n != 0 {
				t.Fatalf("%d events stored from refused batches", n)
			}
			// A viewer may read but not write; an ingester may write but not read.
			if _, err := a.read.WriteEvents(context.Background(), connect.NewRequest(&auditv1.WriteEventsRequest{Events: inputs(0, 1)})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("viewer write: %v, want permission_denied", err)
			}
			if _, err := a.writer.QueryEvents(context.Background(), connect.NewRequest(&auditv1.QueryEventsRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("ingester query: %v, want permission_denied", err)
			}
		})
	}
}

// TestWriteEventsIdempotent: the same batch sent twice is stored once, over
// Connect and over REST.
func TestWriteEventsIdempotent(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			a := startAudit(t, d)
			ctx := context.Background()
			b := inputs(0, 1000)
			b[7].Metadata, _ = structpb.NewStruct(map[string]any{"ticket": "SEC-1", "n": 3})
			first, err := a.writer.WriteEvents(ctx, connect.NewRequest(&auditv1.WriteEventsRequest{Events: b}))
			if err != nil {
				t.Fatal(err)
			}
			again, err := a.writer.WriteEvents(ctx, connect.NewRequest(&auditv1.WriteEventsRequest{Events: b}))
			if err != nil {
				t.Fatal(err)
			}
			if again.Msg.GetDuplicates() != 1000 || again.Msg.GetFirstSequence() != 0 || !slices.Equal(again.Msg.GetSequences(), first.Msg.GetSequences()) {
				t.Fatalf("retry = %v", again.Msg)
			}
			// REST, snake_case, one event already stored and one new.
			body := `{"events":[{"client_event_id":"ev-5","occurred_at":"2026-02-01T00:05:00Z","actor_id":"a","actor_type":"user","action":"test.action0","outcome":"success","category":"data"},` +
				`{"client_event_id":"rest-1","occurred_at":"2026-02-01T12:00:00.123456Z","actor_id":"a","actor_type":"service","action":"test.action0","outcome":"success","category":"data","ip":"198.51.100.7","metadata":{"k":"v"}}]}`
			req, _ := http.NewRequest(http.MethodPost, a.env.URL+"/v1/audit/events", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", a.env.Key(t, a.tenant, "admin", "root@example.com"))
			resp, err := a.env.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Sequences  []string `json:"sequences"`
				Duplicates int      `json:"duplicates"`
				ChainHash  string   `json:"chain_hash"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("REST write: %d %v", resp.StatusCode, err)
			}
			resp.Body.Close()
			if out.Duplicates != 1 || out.Sequences[0] != strconv.FormatInt(first.Msg.GetSequences()[5], 10) || len(out.ChainHash) != 64 {
				t.Fatalf("REST write = %+v", out)
			}
			if n := a.count(t); n != 1001 {
				t.Fatalf("%d events stored, want 1001", n)
			}
			v, err := a.read.VerifyChain(ctx, connect.NewRequest(&auditv1.VerifyChainRequest{}))
			if err != nil || !v.Msg.GetOk() {
				t.Fatalf("verify = %v, %v", v.Msg, err)
			}
		})
	}
}

// TestQueryEvents checks every filter and both orders against the events
// written, then pages through while other writers keep appending.
func TestQueryEvents(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			a := startAudit(t, d)
			ctx := context.Background()
			const n = 120
			all := inputs(0, n)
			written, err := a.writer.WriteEvents(ctx, connect.NewRequest(&auditv1.WriteEventsRequest{Events: all}))
			if err != nil {
				t.Fatal(err)
			}
			query := func(f *auditv1.EventFilter, size int32) []*auditv1.AuditEvent {
				t.Helper()
				var out []*auditv1.AuditEvent
				tok := ""
				for {
					r, err := a.read.QueryEvents(ctx, connect.NewRequest(&auditv1.QueryEventsRequest{Filter: f, PageSize: size, PageToken: tok}))
					if err != nil {
						t.Fatalf("query %v: %v", f, err)
					}
					out = append(out, r.Msg.GetEvents()...)
					if tok = r.Msg.GetNextPageToken(); tok == "" {
						return out
					}
				}
			}
			want := func(keep func(*auditv1.AuditEventInput) bool) []string {
				var ids []string
				for _, e := range all {
					if keep(e) {
						ids = append(ids, e.GetClientEventId())
					}
				}
				return ids
			}
			ids := func(evs []*auditv1.AuditEvent) []string {
				var out []string
				for _, e := range evs {
					if strings.HasPrefix(e.GetAction(), "test.") {
						out = append(out, e.GetClientEventId())
					}
				}
				return out
			}
			seqOf := map[string]int64{}
			for i, e := range all {
				seqOf[e.GetClientEventId()] = written.Msg.GetSequences()[i]
			}
			mid := written.Msg.GetSequences()[n/2]
			yes, no := true, false
			from, to := evBase.Add(30*time.Minute), evBase.Add(45*time.Minute)
			cases := []struct {
				name string
				f    *auditv1.EventFilter
				keep func(*auditv1.AuditEventInput) bool
			}{
				{"time range", &auditv1.EventFilter{StartTime: timestamppb.New(from), EndTime: timestamppb.New(to)},
					func(e *auditv1.AuditEventInput) bool {
						at := e.GetOccurredAt().AsTime()
						return !at.Before(from) && at.Before(to)
					}},
				{"actor", &auditv1.EventFilter{ActorId: "user1@example.com"}, func(e *auditv1.AuditEventInput) bool { return e.GetActorId() == "user1@example.com" }},
				{"action", &auditv1.EventFilter{Action: "test.action3"}, func(e *auditv1.AuditEventInput) bool { return e.GetAction() == "test.action3" }},
				{"category", &auditv1.EventFilter{Category: "access"}, func(e *auditv1.AuditEventInput) bool { return e.GetCategory() == "access" }},
				{"outcome", &auditv1.EventFilter{Outcome: "denied"}, func(e *auditv1.AuditEventInput) bool { return e.GetOutcome() == "denied" }},
				{"phi", &auditv1.EventFilter{Phi: &yes}, func(e *auditv1.AuditEventInput) bool { return e.GetPhi() }},
				{"not phi", &auditv1.EventFilter{Phi: &no}, func(e *auditv1.AuditEventInput) bool { return !e.GetPhi() }},
				{"combined", &auditv1.EventFilter{Category: "data", Outcome: "success", Phi: &yes, EndTime: timestamppb.New(to)},
					func(e *auditv1.AuditEventInput) bool {
						return e.GetCategory() == "data" && e.GetOutcome() == "success" && e.GetPhi() && e.GetOccurredAt().AsTime().Before(to)
					}},
			}
			for _, c := range cases {
				w := want(c.keep)
				if len(w) == 0 || len(w) == n {
					t.Fatalf("%s: the data does not exercise the filter (%d of %d)", c.name, len(w), n)
				}
				if got := ids(query(c.f, 7)); !slices.Equal(got, w) {
					t.Errorf("%s: got %v, want %v", c.name, got, w)
				}
				desc := proto.Clone(c.f).(*auditv1.EventFilter)
				desc.Order = "desc"
				got := ids(query(desc, 5))
				slices.Reverse(got)
				if !slices.Equal(got, w) {
					t.Errorf("%s desc: got %v, want reversed %v", c.name, got, w)
				}
			}
			// after_sequence (what a follower asks for) in both orders, on a
			// key of its own so the table above leaves it rate limit to spare.
			follower := auditv1connect.NewAuditLogServiceClient(a.env.Client, a.env.URL, withKey(a.env.Key(t, a.tenant, "viewer", "fay@example.com")))
			wantAfter := want(func(e *auditv1.AuditEventInput) bool { return seqOf[e.GetClientEventId()] > mid })
			for _, order := range []string{"asc", "desc"} {
				r, err := follower.QueryEvents(ctx, connect.NewRequest(&auditv1.QueryEventsRequest{
					Filter: &auditv1.EventFilter{AfterSequence: mid, Order: order}, PageSize: 1000}))
				if err != nil {
					t.Fatal(err)
				}
				got := ids(r.Msg.GetEvents())
				if order == "desc" {
					slices.Reverse(got)
				}
				if len(wantAfter) == 0 || len(wantAfter) == n || !slices.Equal(got, wantAfter) {
					t.Errorf("after_sequence %d %s: got %v, want %v", mid, order, got, wantAfter)
				}
			}
			// Pagination while writers append: every page continues where the
			// last ended, nothing repeats, and every event that existed when
			// paging began is seen exactly once, in sequence order.
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := a.writer.WriteEvents(ctx, connect.NewRequest(&auditv1.WriteEventsRequest{Events: inputs(n+i*10, 10)})); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for _, order := range []string{"asc", "desc"} {
				f := &auditv1.EventFilter{Action: "test.action2", Order: order}
				seqs := map[int64]bool{}
				var last int64
				tok := ""
				for {
					r, err := a.read.QueryEvents(ctx, connect.NewRequest(&auditv1.QueryEventsRequest{Filter: f, PageSize: 3, PageToken: tok}))
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range r.Msg.GetEvents() {
						q := e.GetSequence()
						if seqs[q] || (last != 0 && (order == "asc") != (q > last)) {
							t.Fatalf("%s: sequence %d after %d", order, q, last)
						}
						seqs[q], last = true, q
					}
					// Ascending pages chase the writers; stop once well past
					// the events written before paging began.
					if tok = r.Msg.GetNextPageToken(); tok == "" || (order == "asc" && len(seqs) > 60) {
						break
					}
				}
				for i, e := range all {
					if q := written.Msg.GetSequences()[i]; e.GetAction() == "test.action2" && !seqs[q] {
						t.Fatalf("%s paging missed event %d, written before paging began", order, q)
					}
				}
			}
			close(stop)
			wg.Wait()
			v, err := a.read.VerifyChain(ctx, connect.NewRequest(&auditv1.VerifyChainRequest{}))
			if err != nil || !v.Msg.GetOk() {
				t.Fatalf("verify after concurrent writes = %v, %v", v.Msg, err)
			}
			// REST: GET with the filter in the query string.
			req, _ := http.NewRequest(http.MethodGet, a.env.URL+"/v1/audit/events?filter.category=access&filter.phi=true&filter.start_time=2026-02-01T00:30:00Z&filter.end_time=2026-02-01T00:45:00Z&filter.order=desc&page_size=2", nil)
			req.Header.Set("X-API-Key", a.env.Key(t, a.tenant, "auditor", "audrey@example.com"))
			resp, err := a.env.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Events []struct {
					ClientEventID string `json:"client_event_id"`
					OccurredAt    string `json:"occurred_at"`
				} `json:"events"`
				NextPageToken string `json:"next_page_token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("REST query: %d %v", resp.StatusCode, err)
			}
			resp.Body.Close()
			// access: i%3 == 1; phi: i even; minutes 30..44 → 34, 40 (desc: 40 first).
			if len(page.Events) != 2 || page.Events[0].ClientEventID != "ev-40" || page.Events[1].ClientEventID != "ev-34" || page.Events[0].OccurredAt != "2026-02-01T00:40:00Z" {
				t.Fatalf("REST query = %+v", page)
			}
			// A token from one order is refused in the other.
			r, err := a.read.QueryEvents(ctx, connect.NewRequest(&auditv1.QueryEventsRequest{PageSize: 1}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.read.QueryEvents(ctx, connect.NewRequest(&auditv1.QueryEventsRequest{PageSize: 1, PageToken: r.Msg.GetNextPageToken(), Filter: &auditv1.EventFilter{Order: "desc"}}))
			if got := violationPaths(t, err); !slices.Equal(got, []string{"page_token"}) {
				t.Fatalf("cross-order token: %v", got)
			}
		})
	}
}
