package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/reports"
)

// guard keeps callers without a valid key from flooding a tenant. It works
// before authentication: a client IP or a key id that keeps failing to
// authenticate runs out of failures and is refused without a database
// lookup until its budget refills. And it folds refusals (authentication
// failures, rate-limit denials) into one audit event per key (or IP) and
// reason per window, with a count, so that a flood of bad requests writes a
// handful of events, never one per request behind the tenant's chain lock.
type guard struct {
	ipFailures  *limiter // authentication failures per client IP
	keyFailures *limiter // authentication failures per key id
	window      time.Duration
	// write appends one folded event to a tenant's log; log reports the
	// refusals that belong to no tenant.
	write func(tenantID string, e reports.Event)
	log   *slog.Logger

	mu     sync.Mutex
	folds  map[foldKey]*fold
	closed bool
	// tenants remembers which tenant a failing key id belongs to, so that
	// the requests refused before the lookup are still counted there.
	tenants map[string]string
	// good holds, per key id that authenticated lately, the SHA-256 of
	// the secret it authenticated with: that key keeps working while
	// others exhaust its id's failure budget with wrong secrets.
	good map[string][sha256.Size]byte
}

// foldKey is what one folded event counts.
type foldKey struct {
	tenantID, subject, action, reason string
}

type fold struct {
	first    reports.Event // the event written when the window opened
	extra    int64         // refusals after the first, written at the close
	timer    *time.Timer
	lastSeen time.Time
}

func newGuard(cfg Config, write func(string, reports.Event), log *slog.Logger) *guard {
	return &guard{
		ipFailures:  newLimiter(cfg.AuthFailureRate, cfg.AuthFailureBurst),
		keyFailures: newLimiter(cfg.AuthFailureRate/10, max(cfg.AuthFailureBurst/5, 1)),
		window:      cfg.AuditFoldWindow,
		write:       write,
		log:         log,
		folds:       map[foldKey]*fold{},
		tenants:     map[string]string{},
		good:        map[string][sha256.Size]byte{},
	}
}

// parsedKey is what a raw X-API-Key says without a lookup: its id ("" when
// it is not a key) and the SHA-256 of its secret.
type parsedKey struct {
	id     string
	secret [sha256.Size]byte
}

func parseKey(raw string) parsedKey {
	k, err := apikey.Parse(raw)
	if err != nil {
		return parsedKey{}
	}
	return parsedKey{id: k.ID, secret: sha256.Sum256([]byte(k.Secret))}
}

// blocked says how long a request from ip carrying k must wait before it
// may try to authenticate, and which budget ran out. A key that
// authenticated lately with the same secret passes both: its owner keeps
// working while others spend its id's budget with wrong secrets, or the
// address's (a shared NAT, a proxy).
func (g *guard) blocked(ip string, k parsedKey) (time.Duration, string) {
	if k.id != "" {
		g.mu.Lock()
		good, known := g.good[k.id]
		g.mu.Unlock()
		if known && subtle.ConstantTimeCompare(good[:], k.secret[:]) == 1 {
			return 0, ""
		}
		if w := g.keyFailures.wait(k.id); w > 0 {
			return w, "key"
		}
	}
	if w := g.ipFailures.wait(ip); w > 0 {
		return w, "ip"
	}
	return 0, ""
}

// failed spends one failure of ip and keyID, and remembers the tenant of
// a key id that exists.
func (g *guard) failed(ip, keyID, tenantID string) {
	g.ipFailures.take(ip)
	if keyID == "" {
		return
	}
	g.keyFailures.take(keyID)
	if tenantID != "" {
		g.mu.Lock()
		if len(g.tenants) > 100_000 {
			clear(g.tenants)
		}
		g.tenants[keyID] = tenantID
		g.mu.Unlock()
	}
}

// succeeded remembers that k authenticated.
func (g *guard) succeeded(k parsedKey) {
	if k.id == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.good) > 100_000 {
		clear(g.good)
	}
	g.good[k.id] = k.secret
}

// tenantOf is the tenant a failing key id was last seen to belong to.
func (g *guard) tenantOf(keyID string) string {
	if keyID == "" {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tenants[keyID]
}

// record counts one refusal. The first of a window is written at once (so
// the log shows an attack as it starts); the rest are written as one event
// with their count when the window closes. Refusals of no tenant go to the
// process log, folded the same way.
func (g *guard) record(k foldKey, e reports.Event) {
	g.mu.Lock()
	if f, ok := g.folds[k]; ok {
		f.extra++
		f.lastSeen = time.Now()
		g.mu.Unlock()
		return
	}
	if g.closed {
		g.mu.Unlock()
		return
	}
	f := &fold{first: e, lastSeen: time.Now()}
	g.folds[k] = f
	f.timer = time.AfterFunc(g.window, func() { g.close(k) })
	g.mu.Unlock()
	g.emit(k, e, 1)
}

// close ends k's window and writes what it counted after the first.
func (g *guard) close(k foldKey) {
	g.mu.Lock()
	f, ok := g.folds[k]
	if ok {
		delete(g.folds, k)
	}
	g.mu.Unlock()
	if ok && f.extra > 0 {
		// The summary is dated when the last refusal it counts happened.
		e := f.first
		e.Metadata = cloneMeta(e.Metadata)
		e.Metadata["first_at"] = e.OccurredAt.UTC().Format(time.RFC3339Nano)
		e.OccurredAt = f.lastSeen.UTC().Truncate(time.Microsecond)
		e.RequestID = ""
		g.emit(k, e, f.extra)
	}
}

// flush closes every open window now, at shutdown; later refusals are
// not recorded.
func (g *guard) flush() {
	g.mu.Lock()
	g.closed = true
	keys := make([]foldKey, 0, len(g.folds))
	for k, f := range g.folds {
		f.timer.Stop()
		keys = append(keys, k)
	}
	g.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].subject < keys[j].subject })
	for _, k := range keys {
		g.close(k)
	}
}

func (g *guard) emit(k foldKey, e reports.Event, count int64) {
	e.Metadata = cloneMeta(e.Metadata)
	e.Metadata["count"] = count
	e.Metadata["window_seconds"] = int64(g.window / time.Second)
	if k.tenantID == "" {
		g.log.Warn("request refused before authentication", "action", k.action, "reason", k.reason,
			"subject", k.subject, "count", count, "window", g.window.String())
		return
	}
	g.write(k.tenantID, e)
}

func cloneMeta(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+3)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// foldDenial records a refusal of tenantID's key (or, with no tenant, of an
// address) in the folded log.
func (s *Server) foldDenial(ctx context.Context, tenantID, keyID, action, reason string, ci callInfo) {
	subject := "ip:" + ci.peer
	actor, actorType, resourceType := "ip:"+ci.peer, "ip", "api_key"
	if keyID != "" {
		subject = "apikey:" + keyID
		actor, actorType = subject, "apikey"
	}
	e := reports.Event{
		OccurredAt: s.store.Now(), ActorID: actor, ActorType: actorType, Action: action,
		ResourceType: resourceType, ResourceID: keyID, Outcome: "denied", Category: "access",
		IP: ci.peer, UserAgent: ci.header.Get("User-Agent"), RequestID: requestID(ctx),
		Metadata: map[string]any{"reason": reason, "procedure": ci.procedure},
	}
	if ci.protocol != "" {
		e.Metadata["protocol"] = ci.protocol
	}
	s.guard.record(foldKey{tenantID: tenantID, subject: subject, action: action, reason: reason}, e)
}

// appendFolded writes one folded event; a failure is logged, as every
// audit write of the edge is.
func (s *Server) appendFolded(tenantID string, e reports.Event) {
	if _, _, err := s.store.AppendEvents(context.Background(), tenantID, []reports.Event{e}); err != nil {
		s.log.Error("write audit event", "err", err, "action", e.Action, "count", fmt.Sprint(e.Metadata["count"]))
	}
}
