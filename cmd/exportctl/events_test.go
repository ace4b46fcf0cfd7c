package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// ingest writes n data events through AuditLogService with an ingester key
// and returns their sequences.
func ingest(t *testing.T, w auditv1connect.AuditLogServiceClient, first, n int) []int64 {
	t.Helper()
	var evs []*auditv1.AuditEventInput
	for i := first; i < first+n; i++ {
		evs = append(evs, &auditv1.AuditEventInput{
			ClientEventId: fmt.Sprintf("ev-%d", i), OccurredAt: timestamppb.Now(),
			ActorId: fmt.Sprintf("user%d@example.com", i), ActorType: "user", Action: "record.read",
			ResourceType: "record", ResourceId: fmt.Sprintf("rec-%d", i), Outcome: "success", Category: "data",
		})
	}
	res, err := w.WriteEvents(context.Background(), connect.NewRequest(&auditv1.WriteEventsRequest{Events: evs}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetSequences()
}

// writer is an AuditLogService client with an ingester key.
func writer(t *testing.T, env *servertest.Env, tenant string) auditv1connect.AuditLogServiceClient {
	key := env.Key(t, tenant, "ingester", "ingest-svc")
	return auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, connect.WithInterceptors(connect.UnaryInterceptorFunc(
		func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("X-API-Key", key)
				return next(ctx, req)
			}
		})))
}

type tailLine struct {
	Sequence  string `json:"sequence"`
	Action    string `json:"action"`
	Category  string `json:"category"`
	ActorID   string `json:"actor_id"`
	RequestID string `json:"request_id"`
}

// TestEventsTail shows written events as a table and as JSON lines, streams
// all of them, and follows new ones until interrupted.
func TestEventsTail(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			w := writer(t, env, tenant)
			seqs := ingest(t, w, 0, 10)
			c := newCLI(t, env, env.Key(t, tenant, "viewer", "vic@example.com"))

			stdout, _ := c.ok("events", "tail", "--category", "data", "--limit", "5")
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if len(lines) != 6 || !strings.HasPrefix(lines[0], "SEQ") {
				t.Fatalf("tail --limit 5: want a header and 5 rows:\n%s", stdout)
			}
			for i, l := range lines[1:] {
				f := strings.Fields(l)
				if f[0] != strconv.FormatInt(seqs[5+i], 10) || f[2] != "data" || f[3] != "success" ||
					f[4] != fmt.Sprintf("user%d@example.com", 5+i) || f[5] != "record.read" || f[6] != fmt.Sprintf("record/rec-%d", 5+i) {
					t.Errorf("row %d: %q, want event %d (sequence %d)", i, l, 5+i, seqs[5+i])
				}
			}

			stdout, _ = c.ok("events", "tail", "--all", "--action", "record.read", "--output", "json")
			var got []int64
			for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
				var e tailLine
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("not a JSON line: %q: %v", l, err)
				}
				n, _ := strconv.ParseInt(e.Sequence, 10, 64)
				got = append(got, n)
			}
			if !slices.Equal(got, seqs) {
				t.Errorf("tail --all: sequences %v, want %v", got, seqs)
			}
			stdout, _ = c.ok("events", "tail", "--action", "no.such.action")
			if strings.TrimSpace(stdout) != lines[0] {
				t.Errorf("an empty tail prints just the header: %q", stdout)
			}
			_, stderr, code := c.run("events", "tail", "--category", "nonsense")
			if code != 2 || !strings.Contains(stderr, "filter.category") {
				t.Errorf("bad category: exit %d, %s", code, stderr)
			}

			// --follow, unfiltered: new events appear; the tail's own reads,
			// which are audit events too, do not.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exportctl, "events", "tail", "--follow", "--interval", "100ms", "--limit", "3", "--output", "json")
			cmd.Dir, cmd.Env, cmd.Stderr = c.dir, c.env, os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			events := make(chan tailLine)
			go func() {
				defer close(events)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					var e tailLine
					if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
						t.Errorf("not a JSON line: %q", sc.Text())
						return
					}
					events <- e
				}
			}()
			var printed []tailLine
			next := func() tailLine {
				t.Helper()
				e, ok := <-events
				if !ok {
					t.Fatal("exportctl events tail --follow ended early")
				}
				printed = append(printed, e)
				return e
			}
			var last int64
			for range 3 {
				n, _ := strconv.ParseInt(next().Sequence, 10, 64)
				last = max(last, n)
			}
			more := ingest(t, w, 10, 2)
			seen := map[int64]bool{}
			for !seen[more[0]] || !seen[more[1]] {
				e := next()
				n, _ := strconv.ParseInt(e.Sequence, 10, 64)
				if n <= last {
					t.Fatalf("sequence %d after %d", n, last)
				}
				last, seen[n] = n, true
				if e.Category == "data" && e.ActorID != "user10@example.com" && e.ActorID != "user11@example.com" {
					t.Errorf("unexpected event %+v", e)
				}
			}
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			for e := range events { // what arrived before the signal
				printed = append(printed, e)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("interrupted follow should exit 0: %v", err)
			}
			// The follower's reads are in the log under one request id
			// prefix, the one with many reads; none of them was printed.
			stdout, _ = c.ok("events", "tail", "--all", "--category", "api", "--output", "json")
			reads := map[string]int{}
			for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
				var e tailLine
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("not a JSON line: %q: %v", l, err)
				}
				if i := strings.LastIndex(e.RequestID, "-"); strings.HasPrefix(e.RequestID, "exportctl-tail-") {
					reads[e.RequestID[:i+1]]++
				}
			}
			follower, most := "", 0
			for session, n := range reads {
				if n > most {
					follower, most = session, n
				}
			}
			if most < 2 {
				t.Fatalf("the follower's reads are not in the log: %v", reads)
			}
			for _, e := range printed {
				if strings.HasPrefix(e.RequestID, follower) {
					t.Errorf("the tail printed its own read: %+v", e)
				}
			}
		})
	}
}

// TestEventsVerify checks the chain, then finds an event edited in the
// database at its sequence and exits 7.
func TestEventsVerify(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			seqs := ingest(t, writer(t, env, tenant), 0, 20)
			c := newCLI(t, env, env.Key(t, tenant, "viewer", "vic@example.com"))

			for _, protocol := range []string{"connect", "grpc"} {
				stdout, _ := c.ok("--protocol", protocol, "events", "verify")
				for _, want := range []string{"chain:", "ok", "checked:", "chain_hash:"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("verify of an intact chain over %s lacks %q:\n%s", protocol, want, stdout)
					}
				}
			}

			broken := seqs[7]
			if _, err := env.Store.RawDB().ExecContext(context.Background(), fmt.Sprintf(
				"UPDATE audit_events SET action = 'x' WHERE tenant_id = '%s' AND sequence = %d", tenant, broken)); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := c.run("events", "verify")
			if code != 7 || !strings.Contains(stderr, fmt.Sprintf("audit chain broken at sequence %d: ", broken)) ||
				!strings.Contains(stdout, "BROKEN") || !strings.Contains(stdout, fmt.Sprintf("broken_sequence:  %d", broken)) {
				t.Errorf("tampered chain: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			stdout, _, code = c.run("events", "verify", "--output", "json")
			var v struct {
				OK     bool   `json:"ok"`
				Broken string `json:"broken_sequence"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 7 || v.OK || v.Broken != strconv.FormatInt(broken, 10) || v.Reason == "" {
				t.Errorf("tampered chain as JSON: exit %d, %+v, %v", code, v, err)
			}
			// The range before the edit still holds.
			stdout, _ = c.ok("events", "verify", "--from", "1", "--to", strconv.FormatInt(broken-1, 10))
			if !strings.Contains(stdout, fmt.Sprintf("1 .. %d", broken-1)) {
				t.Errorf("verify of the intact prefix:\n%s", stdout)
			}
			_, stderr, code = c.run("events", "verify", "--from", "9", "--to", "3")
			if code != 2 || !strings.Contains(stderr, "--to 3 is before --from 9") {
				t.Errorf("reversed range: exit %d, %s", code, stderr)
			}
		})
	}
}
