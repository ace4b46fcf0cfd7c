package webhook

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd12::/16")})
	for addr, why := range map[string]string{
		"127.0.0.1":        "loopback",
		"127.8.9.10":       "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "loopback",
		"172.16.0.1":       "private",
		"192.168.1.1":      "private",
		"fd00::1":          "private",
		"169.254.169.254":  "link-local",
		"fe80::1":          "link-local",
		"100.64.0.1":       "carrier-grade NAT",
		"100.127.255.254":  "carrier-grade NAT",
		"0.0.0.0":          "unspecified",
		"0.1.2.3":          "unspecified",
		"::":               "unspecified",
		"224.0.0.251":      "multicast",
		"ff02::1":          "multicast",
		// Public, or inside an allowed CIDR.
		"93.184.215.14":   "",
		"2606:4700::1":    "",
		"100.128.0.1":     "",
		"10.1.2.3":        "",
		"fd12::1":         "",
		"::ffff:10.0.0.1": "",
	} {
		err := g.Check(netip.MustParseAddr(addr))
		var re *RefusedError
		switch {
		case why == "" && err != nil:
			t.Errorf("%s refused: %v", addr, err)
		case why != "" && (!errors.As(err, &re) || !strings.Contains(err.Error(), why)):
			t.Errorf("%s: %v, want a refusal saying %q", addr, err, why)
		}
	}
}

func TestGuardCheckURL(t *testing.T) {
	t.Parallel()
	g := NewGuard(nil)
	ctx := context.Background()
	err := g.CheckURL(ctx, "https://localhost:8443/hook")
	if err == nil || !strings.HasPrefix(err.Error(), "localhost resolves to ") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("localhost: %v", err)
	}
	if err := g.CheckURL(ctx, "https://[::1]/hook"); err == nil {
		t.Error("[::1] passed")
	}
	// A host that does not resolve is left to the dial-time check.
	if err := g.CheckURL(ctx, "https://hooks.invalid/hook"); err != nil {
		t.Errorf("unresolvable host: %v", err)
	}
	if err := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}).CheckURL(ctx, "https://localhost/hook"); err != nil {
		t.Errorf("allowed loopback: %v", err)
	}
}
