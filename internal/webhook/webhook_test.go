package webhook

import (
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"event":"export.completed"}`)
	sig := Sign("whsec_k", now, body)
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"valid", "whsec_k", sig, body, now.Add(time.Minute), true},
		{"other secret", "whsec_x", sig, body, now, false},
		{"tampered body", "whsec_k", sig, []byte(`{"event":"export.failed"}`), now, false},
		{"replayed late", "whsec_k", sig, body, now.Add(10 * time.Minute), false},
		{"malformed", "whsec_k", "v1=abc", body, now, false},
	} {
		err := Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v", tc.name, err)
		}
	}
}
