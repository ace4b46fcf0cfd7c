package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/server/servertest"
)

// TestVerifyChainAPI: an export's manifest carries the chain hash at its
// last sequence, which VerifyChain reproduces; after a row is edited in the
// database, VerifyChain (Connect and REST) names that sequence.
func TestVerifyChainAPI(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, d, servertest.Options{})
			ctx := context.Background()
			tn := env.Tenant(t, "Acme", true)
			env.Seed(t, tn, 300, periodFrom, periodTo)
			key := env.Key(t, tn, "admin", "root@example.com")
			logs := auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(key))
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))

			job, err := exports.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2",
				StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo.Add(-time.Second))}))
			if err != nil {
				t.Fatal(err)
			}
			stream, err := exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: job.Msg.GetJobId()}))
			if err != nil {
				t.Fatal(err)
			}
			for stream.Receive() {
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			j, err := env.Store.Job(ctx, tn, job.Msg.GetJobId())
			if err != nil {
				t.Fatal(err)
			}
			var m reports.Manifest
			if err := json.Unmarshal(j.Manifest, &m); err != nil {
				t.Fatalf("manifest of %s job: %v", j.Status, err)
			}
			if m.LastSequence != 300 || len(m.ChainHash) != 64 {
				t.Fatalf("manifest last_sequence %d chain_hash %q", m.LastSequence, m.ChainHash)
			}
			v, err := logs.VerifyChain(ctx, connect.NewRequest(&auditv1.VerifyChainRequest{ToSequence: m.LastSequence}))
			if err != nil || !v.Msg.GetOk() || v.Msg.GetChainHash() != m.ChainHash || v.Msg.GetChecked() != 300 {
				t.Fatalf("verify to %d = %v, %v; manifest says %s", m.LastSequence, v.Msg, err, m.ChainHash)
			}

			if _, err := env.Store.RawDB().ExecContext(ctx, fmt.Sprintf("UPDATE audit_events SET outcome = 'success', actor_id = 'someone-else' WHERE tenant_id = '%s' AND sequence = 123", tn)); err != nil {
				t.Fatal(err)
			}
			v, err = logs.VerifyChain(ctx, connect.NewRequest(&auditv1.VerifyChainRequest{}))
			if err != nil || v.Msg.GetOk() || v.Msg.GetBrokenSequence() != 123 {
				t.Fatalf("verify after tampering = %v, %v", v.Msg, err)
			}
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/audit/events:verify-chain", strings.NewReader(`{"from_sequence":100,"to_sequence":200}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", key)
			resp, err := env.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var rv struct {
				OK     bool   `json:"ok"`
				Broken string `json:"broken_sequence"`
			}
			if err := json.Unmarshal(body, &rv); err != nil || resp.StatusCode != http.StatusOK || rv.OK || rv.Broken != "123" {
				t.Fatalf("REST verify: %d %s", resp.StatusCode, body)
			}
			if _, err := logs.VerifyChain(ctx, connect.NewRequest(&auditv1.VerifyChainRequest{FromSequence: 9, ToSequence: 3})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("reversed range: %v", err)
			}
		})
	}
}

// TestStreamEvents streams more events than one chunk holds.
func TestStreamEvents(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, d, servertest.Options{NoWorkers: true})
			tn := env.Tenant(t, "Acme", true)
			env.Seed(t, tn, 2500, periodFrom, periodTo)
			logs := auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "viewer", "vera@example.com")), connect.WithGRPC())
			for _, order := range []string{"asc", "desc"} {
				s, err := logs.StreamEvents(context.Background(), connect.NewRequest(&auditv1.StreamEventsRequest{Filter: &auditv1.EventFilter{EndTime: timestamppb.New(periodTo), Order: order}}))
				if err != nil {
					t.Fatal(err)
				}
				var n, msgs int
				var last int64
				for s.Receive() {
					msgs++
					for _, e := range s.Msg().GetEvents() {
						n++
						if last != 0 && (order == "asc") != (e.GetSequence() > last) {
							t.Fatalf("%s: sequence %d after %d", order, e.GetSequence(), last)
						}
						last = e.GetSequence()
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				if n != 2500 || msgs < 5 {
					t.Fatalf("%s: streamed %d events in %d messages", order, n, msgs)
				}
			}
		})
	}
}
