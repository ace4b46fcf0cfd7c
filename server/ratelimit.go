package server

import (
	"sync"
	"time"
)

// limiter is a token bucket per API key: rate tokens a second up to burst.
// It is per process; with N replicas a key gets at most N times the rate,
// which keeps it a guard against runaway clients, not a quota.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	keys  map[string]*bucket
	now   func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(max(burst, 1)), keys: map[string]*bucket{}, now: time.Now}
}

// take spends one token of key; when there is none it returns how long until
// there is.
func (l *limiter) take(key string) time.Duration { return l.use(key, true) }

// wait says how long until key has a token, without spending one.
func (l *limiter) wait(key string) time.Duration { return l.use(key, false) }

// use refills key's bucket to now and, with spend, takes a token; it
// returns how long until a token is there (0 when one was).
func (l *limiter) use(key string, spend bool) time.Duration {
	if l == nil || l.rate <= 0 {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.keys[key]
	if !ok {
		if !spend {
			return 0 // a key never seen has a full bucket
		}
		if len(l.keys) > 100_000 {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.keys[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		if spend {
			b.tokens--
		}
		return 0
	}
	return max(time.Duration((1-b.tokens)/l.rate*float64(time.Second)), time.Millisecond)
}

// sweep forgets keys whose bucket has refilled: they behave as new ones.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.keys {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.keys, k)
		}
	}
}
