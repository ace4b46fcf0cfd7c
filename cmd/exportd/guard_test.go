package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/store/storetest"
)

// TestWebhookAddRefusesInside: the operator CLI refuses a webhook aimed at
// the metadata service or loopback, saying why, unless the operator allows
// that network with --webhook-allow-cidr.
func TestWebhookAddRefusesInside(t *testing.T) {
	t.Parallel()
	store := storeFlags(t, "sqlite")
	tenant := admin(t, store, "tenant", "create", "--name", "Acme")
	for u, why := range map[string]string{
		"https://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
		"https://localhost:8443/hook":               "localhost resolves to ",
	} {
		out, err := exec.Command(bins.exportd, append([]string{"webhook", "add", "--tenant", tenant, "--url", u}, store...)...).CombinedOutput()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || !strings.Contains(string(out), "--url: "+why) {
			t.Errorf("webhook add %s: %v\n%s", u, err, out)
		}
	}
	out := admin(t, store, "webhook", "add", "--tenant", tenant, "--url", "https://127.0.0.1:8443/hook", "--webhook-allow-cidr", "10.0.0.0/8,127.0.0.0/8")
	if !strings.HasPrefix(out, "wh_") {
		t.Errorf("webhook add inside an allowed CIDR printed %q", out)
	}
}

// TestSigningKeyWarning: serve without --signing-key-file warns on
// PostgreSQL that the database can forge manifests, and notes it at info
// level on SQLite.
func TestSigningKeyWarning(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		want := map[string]string{"postgres": "WARN", "sqlite": "INFO"}[dialect]
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := serve(t, storeFlags(t, dialect))
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			var found []string
			sc := bufio.NewScanner(strings.NewReader(s.logs()))
			for sc.Scan() {
				var rec struct{ Level, Msg string }
				if json.Unmarshal(sc.Bytes(), &rec) == nil && strings.Contains(rec.Msg, "--signing-key-file") {
					found = append(found, rec.Level+" "+rec.Msg)
				}
			}
			if len(found) != 1 || !strings.HasPrefix(found[0], want+" ") ||
				(dialect == "postgres" && !strings.Contains(found[0], "can forge signed manifests")) {
				t.Errorf("signing key lines: %q, want one at %s", found, want)
			}
		})
	}
}
