package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// cgnat is the shared address space of RFC 6598: carrier-grade NAT, which
// on many clouds fronts internal services.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// thisNetwork is 0.0.0.0/8 (RFC 1122), which some stacks route to the host
// itself, like the unspecified address.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// Guard keeps webhooks out of the networks exportd runs in: a tenant who
// could aim a delivery at loopback, a private network or the cloud metadata
// service would make exportd a proxy into them. It refuses such addresses
// when a webhook is saved (after resolving its host) and again when a
// delivery connects (on the address actually dialled, which defeats DNS
// rebinding), except inside the CIDRs the operator allows.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver
}

// NewGuard returns a guard that lets webhooks reach the inside only within
// allow.
func NewGuard(allow []netip.Prefix) *Guard {
	return &Guard{allow: allow, resolver: net.DefaultResolver}
}

// RefusedError says why an address is off limits to webhooks.
type RefusedError struct {
	Host string // the URL's host when it is a name, else empty
	Addr netip.Addr
	Why  string // "a loopback address", …
}

func (e *RefusedError) Error() string {
	what := e.Addr.String() + " is"
	if e.Host != "" {
		what = e.Host + " resolves to " + e.Addr.String() + ","
	}
	return fmt.Sprintf("%s %s: webhooks may not reach internal networks unless the operator allows it (--webhook-allow-cidr)", what, e.Why)
}

// Check refuses an address inside the service's networks, unless allowed.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	why := internal(addr)
	if why == "" {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	return &RefusedError{Addr: addr, Why: why}
}

// internal names the kind of inside address addr is, or "" for a public one.
func internal(addr netip.Addr) string {
	switch {
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsUnspecified(), thisNetwork.Contains(addr):
		return "an unspecified address"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address (where cloud metadata services live)"
	case addr.IsMulticast():
		return "a multicast address"
	case cgnat.Contains(addr):
		return "a carrier-grade NAT address"
	}
	return ""
}

// CheckURL resolves the host of a webhook URL and refuses it when any of
// its addresses is inside. A host that does not resolve (yet) passes: the
// dial-time check decides when a delivery is made.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse webhook url: %w", err)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.Check(a)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := g.Check(a); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
			return err
		}
	}
	return nil
}

// control is a net.Dialer Control function: it runs after the name was
// resolved, on the address about to be connected.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parse dialled address %q: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// Client returns a copy of c (nil: a 10 s timeout client) whose connections
// pass through the guard and which follows no redirect: a public endpoint
// answering 307 to an inside URL must not get exportd to follow it.
func (g *Guard) Client(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	var tr *http.Transport
	if t, ok := c.Transport.(*http.Transport); ok {
		tr = t.Clone() // keeps a caller's TLS settings
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	// A proxy would make the connection for us, out of the guard's sight.
	tr.Proxy = nil
	tr.DialTLSContext = nil
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}).DialContext
	out := *c
	out.Transport = tr
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}
