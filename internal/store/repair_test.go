package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
)

// breakWithNegativeZero makes event seq (the tenant's last) look as events
// with -0 in their metadata looked before canonical metadata wrote 0: its
// hash covers "-0" where the database holds 0. Later events chain on it.
func breakWithNegativeZero(t *testing.T, st *store.Store, tenantID string, seq int64, hashedMeta string) {
	t.Helper()
	ctx := context.Background()
	page, err := st.QueryEvents(ctx, tenantID, store.EventQuery{After: seq - 1, PageSize: 1})
	if err != nil || len(page.Events) != 1 || page.Events[0].Sequence != seq {
		t.Fatalf("read event %d: %v", seq, err)
	}
	e := page.Events[0]
	prevHex, err := st.ChainHash(ctx, tenantID, seq-1)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := hex.DecodeString(prevHex)
	if prevHex == "" {
		prev = make([]byte, sha256.Size)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(store.CanonicalEvent(nil, tenantID, &e.Event, []byte(hashedMeta), e.ClientEventID))
	old := hex.EncodeToString(h.Sum(nil))
	for _, q := range []string{"UPDATE audit_events SET hash = '" + old + "' WHERE tenant_id = '" + tenantID + "' AND sequence = " + strconv.FormatInt(seq, 10),
		"UPDATE tenants SET chain_head = '" + old + "' WHERE id = '" + tenantID + "'"} {
		if _, err := st.RawDB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChainRepair: a chain broken by the negative-zero defect verifies
// again after `exportd chain repair`, which records per event the bytes its
// hash covers and changes no event; a changed event is never "repaired".
func TestChainRepair(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			tn := tenant(t, st)
			if _, _, err := st.AppendEvents(ctx, tn, []reports.Event{event(1), event(2), event(3)}); err != nil {
				t.Fatal(err)
			}
			e4 := event(4)
			e4.Metadata = map[string]any{"a": map[string]any{"v": 0}, "n": 0, "s": "0", "x": 1.5}
			if _, _, err := st.AppendEvents(ctx, tn, []reports.Event{e4}); err != nil {
				t.Fatal(err)
			}
			breakWithNegativeZero(t, st, tn, 4, `{"a":{"v":-0},"n":0,"s":"0","x":1.5}`)
			if _, _, err := st.AppendEvents(ctx, tn, []reports.Event{event(5), event(6)}); err != nil {
				t.Fatal(err)
			}
			r, err := st.VerifyChain(ctx, tn, 0, 0)
			if err != nil || r.OK || r.BrokenAt != 4 {
				t.Fatalf("before the repair: %+v, %v; want broken at 4", r, err)
			}

			dry, err := st.RepairChain(ctx, tn, "operator", false)
			if err != nil || dry.Applied || dry.BrokenAt != 0 || len(dry.Found) != 1 || dry.Found[0].Sequence != 4 {
				t.Fatalf("dry run: %+v, %v", dry, err)
			}
			if got := dry.Found[0].HashedMetadata; got != `{"a":{"v":-0},"n":0,"s":"0","x":1.5}` {
				t.Errorf("hashed metadata found: %s", got)
			}
			if r, _ := st.VerifyChain(ctx, tn, 0, 0); r.OK {
				t.Fatal("a dry run repaired the chain")
			}
			applied, err := st.RepairChain(ctx, tn, "operator", true)
			if err != nil || !applied.Applied || len(applied.Found) != 1 {
				t.Fatalf("repair: %+v, %v", applied, err)
			}
			r, err = st.VerifyChain(ctx, tn, 0, 0)
			if err != nil || !r.OK || r.Repaired != 1 || r.Checked != 6 {
				t.Fatalf("after the repair: %+v, %v; want OK with 1 repaired of 6", r, err)
			}
			// A range starting after the repaired event checks too.
			if r, err := st.VerifyChain(ctx, tn, 4, 6); err != nil || !r.OK {
				t.Fatalf("range 4..6 after the repair: %+v, %v", r, err)
			}
			again, err := st.RepairChain(ctx, tn, "operator", true)
			if err != nil || again.Existing != 1 || len(again.Found) != 0 || again.BrokenAt != 0 {
				t.Fatalf("second repair: %+v, %v", again, err)
			}

			// A changed event is not explained by any spelling of zeros:
			// nothing is recorded and the chain stays broken.
			other := tenant(t, st)
			e := event(1)
			e.Metadata = map[string]any{"n": 0}
			if _, _, err := st.AppendEvents(ctx, other, []reports.Event{e, event(2)}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RawDB().ExecContext(ctx, "UPDATE audit_events SET actor_id = 'someone-else' WHERE tenant_id = '"+other+"' AND sequence = 1"); err != nil {
				t.Fatal(err)
			}
			tampered, err := st.RepairChain(ctx, other, "operator", true)
			if err != nil || tampered.Applied || tampered.BrokenAt != 1 || len(tampered.Found) != 0 {
				t.Fatalf("tampered chain: %+v, %v; want broken at 1 and nothing recorded", tampered, err)
			}
			if r, _ := st.VerifyChain(ctx, other, 0, 0); r.OK {
				t.Fatal("a tampered chain verifies")
			}
		})
	}
}

// TestNegativeZeroVerifies writes metadata with -0, big integers and other
// edge numbers through the store: the chain verifies on both stores.
func TestNegativeZeroVerifies(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			tn := tenant(t, st)
			var evs []store.NewEvent
			for i, raw := range []string{`{"v":-0}`, `{"v":[-0.0,{"w":-1e-400}]}`, `{"v":12345678901234567890}`, `{"v":1e21}`,
				`{"v":5e-324}`, `{"v":"\\u0000"}`, `{"date":"2026-01-02","n":-0}`} {
				var m map[string]any
				if err := json.Unmarshal([]byte(raw), &m); err != nil {
					t.Fatalf("%s: %v", raw, err)
				}
				e := event(i)
				e.Metadata = m
				evs = append(evs, store.NewEvent{Event: e})
			}
			if _, err := st.Ingest(ctx, tn, evs); err != nil {
				t.Fatal(err)
			}
			if r, err := st.VerifyChain(ctx, tn, 0, 0); err != nil || !r.OK || r.Checked != int64(len(evs)) {
				t.Fatalf("chain: %+v, %v", r, err)
			}
		})
	}
}
