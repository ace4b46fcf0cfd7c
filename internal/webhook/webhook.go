// Package webhook tells tenants that their exports finished: it delivers the
// webhook notifications queued with each job's terminal transition as signed
// HTTPS POSTs, retrying with backoff and logging every outcome on the
// delivery row.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/store"
)

// Headers of a webhook POST.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" under the endpoint's secret>".
	SignatureHeader = "Exportd-Signature"
	DeliveryHeader  = "Exportd-Delivery"
	EventHeader     = "Exportd-Event"
)

// Config tunes a Deliverer.
type Config struct {
	// Client sends the POSTs (default: 10 s timeout). The deliverer uses a
	// copy whose dialer refuses inside addresses and which follows no
	// redirect; a non-*http.Transport RoundTripper is replaced.
	Client *http.Client
	// Allow lists the inside networks (loopback, private, link-local …)
	// webhooks may reach nonetheless; by default none.
	Allow        []netip.Prefix
	MaxAttempts  int           // default 8
	RetryBase    time.Duration // default 10 s, doubling with jitter
	RetryMax     time.Duration // default 1 h
	PollInterval time.Duration // default 1 s
	Lease        time.Duration // how long one attempt may take; default 30 s
	Owner        string        // lease owner; default host/pid/random
}

// Store is what the deliverer needs of the delivery queue; *store.Store is
// one.
type Store interface {
	Now() time.Time
	ClaimDelivery(ctx context.Context, owner string, lease time.Duration) (*store.WebhookDelivery, *store.Webhook, error)
	RecordDelivery(ctx context.Context, d *store.WebhookDelivery, o store.DeliveryOutcome) error
}

// Deliverer sends queued webhook deliveries.
type Deliverer struct {
	store Store
	log   *slog.Logger
	cfg   Config
}

// New returns a deliverer; call Run to start it.
func New(st Store, log *slog.Logger, cfg Config) *Deliverer {
	cfg.Client = NewGuard(cfg.Allow).Client(cfg.Client)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 10 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "/" + strconv.Itoa(os.Getpid()) + "/" + apikey.RandomID("", 6)
	}
	return &Deliverer{store: st, log: log, cfg: cfg}
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			dl, ep, err := d.store.ClaimDelivery(ctx, d.cfg.Owner, d.cfg.Lease)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Error("claim webhook delivery", "err", err)
				}
				break
			}
			if dl == nil {
				break
			}
			d.deliver(ctx, dl, ep)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliver makes one attempt and records its outcome.
func (d *Deliverer) deliver(ctx context.Context, dl *store.WebhookDelivery, ep *store.Webhook) {
	log := d.log.With("delivery_id", dl.ID, "job_id", dl.JobID, "endpoint_id", ep.ID, "attempt", dl.Attempts)
	var o store.DeliveryOutcome
	if !ep.Enabled {
		o = store.DeliveryOutcome{Error: "endpoint disabled", Failed: true}
	} else {
		o.StatusCode, o.Error = d.post(ctx, dl, ep)
	}
	if o.Error != "" && !o.Failed {
		if dl.Attempts >= d.cfg.MaxAttempts {
			o.Failed = true
		} else {
			o.Next = d.store.Now().Add(jobs.Backoff(d.cfg.RetryBase, d.cfg.RetryMax, dl.Attempts))
		}
	}
	if err := d.store.RecordDelivery(context.WithoutCancel(ctx), dl, o); err != nil {
		log.Error("record webhook delivery", "err", err)
		return
	}
	switch {
	case o.Error == "":
		log.Info("webhook delivered", "status_code", o.StatusCode)
	case o.Failed:
		log.Warn("webhook delivery failed for good", "status_code", o.StatusCode, "err", o.Error)
	default:
		log.Warn("webhook delivery failed; will retry", "status_code", o.StatusCode, "err", o.Error, "next_attempt_at", o.Next)
	}
}

// post sends the payload once; a 2xx answer is success.
func (d *Deliverer) post(ctx context.Context, dl *store.WebhookDelivery, ep *store.Webhook) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Lease)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(dl.Payload))
	if err != nil {
		return 0, "build request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "exportd-webhooks/1")
	req.Header.Set(DeliveryHeader, dl.ID)
	req.Header.Set(EventHeader, dl.Event)
	req.Header.Set(SignatureHeader, Sign(ep.Secret, d.store.Now(), dl.Payload))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		if re := (*RefusedError)(nil); errors.As(err, &re) {
			return 0, "refused to connect: " + re.Error()
		}
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return resp.StatusCode, "endpoint answered " + resp.Status + " to " + resp.Header.Get("Location") +
			": redirects are not followed; register the final URL"
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, "endpoint answered " + resp.Status
	}
	return resp.StatusCode, ""
}

// Sign returns the signature header value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body, as a receiver does: the
// HMAC must match and the timestamp be within tolerance of now, which
// stops replays of old deliveries.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %s is outside the %s tolerance", time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("signature does not match")
	}
	return nil
}
