package apikey_test

import (
	"testing"

	"github.com/exportd/exportd/internal/apikey"
)

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, live := range []bool{true, false} {
		k := apikey.New(live)
		got, err := apikey.Parse(k.String())
		if err != nil || got != k {
			t.Fatalf("Parse(%q) = %+v, %v", k.String(), got, err)
		}
	}
	for _, bad := range []string{"", "tl_live_", "tl_prod_aaaaaaaaaaaaaaaa_" + string(make([]byte, 52)), "tl_live_AAAAAAAAAAAAAAAA_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		if _, err := apikey.Parse(bad); err == nil {
			t.Fatalf("Parse(%q) accepted", bad)
		}
	}
}

// FuzzParseKey feeds the X-API-Key parser arbitrary input: it never panics,
// accepts only the exact shape it mints (so it round-trips), and a mutated
// key never authenticates against the stored hash of the original.
func FuzzParseKey(f *testing.F) {
	orig := apikey.Key{Live: true, ID: "abcdefghijklmnop", Secret: "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"}
	stored := apikey.Hash(orig.Secret)
	for _, s := range []string{
		orig.String(),
		apikey.Key{ID: orig.ID, Secret: orig.Secret}.String(),
		"", "tl_live_", "tl_test_", "tl_live_abcdefghijklmnop_", "tl_live_abcdefghijklmnop",
		"tl_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrs",
		"tl_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstu",
		"tl_live_abcdefghijklmnop-abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
		"tl_live_ABCDEFGHIJKLMNOP_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
		"tl_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrs\x00",
		"Bearer tl_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
		"tl_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst ",
		"tl_live_\u00e9bcdefghijklmno_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := apikey.Parse(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("Parse(%q) accepted a key that prints as %q", s, k.String())
		}
		if s != orig.String() && k.ID == orig.ID && k.Live == orig.Live && apikey.Matches(k.Secret, stored) {
			t.Fatalf("mutated key %q authenticates as %q", s, orig.String())
		}
	})
}
