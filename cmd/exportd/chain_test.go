package main_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/store"
)

// TestChainCommands runs `exportd chain verify` and `exportd chain repair`
// on a healthy log, then on one with a changed event, which no repair
// explains: it fails, records nothing, and says so.
func TestChainCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := []string{"--data-dir", dir}
	tenant := admin(t, flags, "tenant", "create", "--name", "Acme")
	admin(t, flags, "seed-demo", "--tenant", tenant, "--events", "50", "--from", "2026-01-01", "--to", "2026-02-01")
	if out := admin(t, flags, "chain", "verify", "--tenant", tenant); !strings.Contains(out, "chain verified: events 1..51, 51 checked") {
		t.Fatalf("verify: %s", out)
	}
	if out := admin(t, flags, "chain", "repair", "--tenant", tenant, "--apply"); !strings.Contains(out, "51 events checked, nothing to repair") {
		t.Fatalf("repair of a healthy chain: %s", out)
	}

	st, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RawDB().Exec("UPDATE audit_events SET actor_id = 'someone-else' WHERE sequence = 7"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{{"chain", "verify"}, {"chain", "repair", "--apply"}} {
		out, err := exec.Command(bins.exportd, append(append(args, "--tenant", tenant), flags...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "event 7") {
			t.Errorf("%v on a changed event: %v\n%s", args, err, out)
		}
		if args[1] == "repair" && !strings.Contains(string(out), "nothing was recorded") {
			t.Errorf("repair of a changed event: %s", out)
		}
	}
}
