package server_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// TestRawKeysNeverStored creates keys every way there is, uses them (well,
// wrongly, revoked, over REST and RPC), then reads every column of every
// table and the whole server log: no key and no secret appears anywhere.
func TestRawKeysNeverStored(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: 2, RateBurst: 3}})
			tenant := env.Tenant(t, "Acme", true)
			admin := env.Key(t, tenant, "admin", "ada@example.com")
			secrets := []string{admin}
			keys := auditv1connect.NewApiKeyServiceClient(env.Client, env.URL, withKey(admin))
			for _, role := range []string{"auditor", "viewer"} {
				r, err := keys.CreateApiKey(ctx, connect.NewRequest(&auditv1.CreateApiKeyRequest{Role: role, Principal: role + "@example.com",
					ExpireTime: timestamppb.New(periodTo.AddDate(5, 0, 0))}))
				if err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, r.Msg.GetSecret())
			}
			auditor, viewer := secrets[1], secrets[2]
			k, _ := apikey.Parse(viewer)
			if _, err := keys.RevokeApiKey(ctx, connect.NewRequest(&auditv1.RevokeApiKeyRequest{KeyId: k.ID})); err != nil {
				t.Fatal(err)
			}
			wrong := k
			wrong.Secret = strings.Repeat("b", len(k.Secret))
			for _, key := range []string{auditor, viewer, wrong.String(), auditor + "x"} {
				c := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
				_, _ = c.WhoAmI(ctx, connect.NewRequest(&auditv1.WhoAmIRequest{}))
				_, _ = c.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2",
					StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
				req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/whoami", nil)
				req.Header.Set("X-API-Key", key)
				do(t, env, req).Body.Close()
			}
			// Past the rate limit too: the refusal names the key id only.
			c := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(auditor))
			var limited error
			for range 10 {
				if _, err := c.WhoAmI(ctx, connect.NewRequest(&auditv1.WhoAmIRequest{})); err != nil {
					limited = err
					break
				}
			}
			if connect.CodeOf(limited) != connect.CodeResourceExhausted {
				t.Fatalf("the rate limit did not answer resource_exhausted: %v", limited)
			}
			if !hasRetryInfo(limited) {
				t.Fatalf("resource_exhausted without RetryInfo: %v", limited)
			}

			var needles []string
			for _, s := range secrets {
				k, err := apikey.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				needles = append(needles, s, k.Secret)
			}
			needles = append(needles, wrong.String(), wrong.Secret)
			cells := scanTables(t, env.Store.RawDB(), dialect, needles)
			if cells == 0 {
				t.Fatal("scanned no cells")
			}
			logs := env.Log.String()
			for _, n := range needles {
				if strings.Contains(logs, n) {
					t.Fatalf("the log holds a secret")
				}
			}
			if !strings.Contains(logs, "authentication failed") {
				t.Fatal("the log has no authentication failures: nothing was scanned")
			}
			t.Logf("%s: scanned %d cells and %d bytes of log for %d secrets", dialect, cells, len(logs), len(needles))
		})
	}
}

func hasRetryInfo(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				return true
			}
		}
	}
	return false
}

// scanTables reads every column of every table as text and fails when one
// holds a needle; it returns how many cells it read.
func scanTables(t *testing.T, db *sql.DB, dialect string, needles []string) int {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if dialect == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("found only tables %v", tables)
	}
	cells := 0
	for _, table := range tables {
		rows, err := db.Query(fmt.Sprintf(`SELECT * FROM "%s"`, table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				cells++
				var s string
				switch x := v.(type) {
				case []byte:
					s = string(x)
				case nil:
				default:
					s = fmt.Sprint(x)
				}
				for _, n := range needles {
					if strings.Contains(s, n) {
						t.Fatalf("table %s column %s holds a secret", table, cols[i])
					}
				}
			}
		}
		rows.Close()
	}
	return cells
}
