package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/downloadlink"
	"github.com/exportd/exportd/ent/principal"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
)

// linkTokenPrefix marks download-link tokens; 52 base32 characters after it
// carry 260 random bits.
const linkTokenPrefix = "dl_"

// NewLink is a download link to mint.
type NewLink struct {
	TenantID    string
	JobID       string
	PrincipalID string
	// KeyID is the API key that mints it: redeeming the link checks that
	// key is still valid and may still export.
	KeyID     string
	ExpiresAt time.Time
}

// Link is a single-use download link; the table keeps only its token's hash.
type Link struct {
	ID          int64
	TokenHash   string
	JobID       string
	TenantID    string
	PrincipalID string
	KeyID       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      *time.Time
}

func linkFromEnt(l *ent.DownloadLink) *Link {
	if l == nil {
		return nil
	}
	return &Link{ID: l.ID, TokenHash: l.TokenHash, JobID: l.JobID, TenantID: l.TenantID, PrincipalID: l.PrincipalID,
		KeyID: l.KeyID, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt, UsedAt: l.UsedAt}
}

// CreateLink stores a new single-use link and returns its token, which exists
// only in this answer: the table keeps its SHA-256.
func (s *Store) CreateLink(ctx context.Context, nl NewLink) (string, *Link, error) {
	ctx = scoped(ctx, nl.TenantID)
	token := apikey.RandomID(linkTokenPrefix, 52)
	l, err := s.client.DownloadLink.Create().
		SetTokenHash(hashToken(token)).
		SetJobID(nl.JobID).
		SetTenantID(nl.TenantID).
		SetPrincipalID(nl.PrincipalID).
		SetKeyID(nl.KeyID).
		SetCreatedAt(micro(s.now())).
		SetExpiresAt(micro(nl.ExpiresAt)).
		Save(ctx)
	if err != nil {
		return "", nil, translate(err, "download link")
	}
	return token, linkFromEnt(l), nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Link returns the link a token names while it can still be used: an unknown
// token is not_found; a used or expired one is failed_precondition saying
// which, and when, and is returned beside the error so that the refusal can
// be filed in its tenant's audit log.
func (s *Store) Link(ctx context.Context, token string) (*Link, error) {
	// The token is the only key a link request carries; it names the tenant.
	ctx = System(ctx)
	row, err := s.client.DownloadLink.Query().Where(downloadlink.TokenHash(hashToken(token))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fault.New(fault.NotFound, "download link not found; ask for a new link")
	}
	if err != nil {
		return nil, translate(err, "download link")
	}
	l := linkFromEnt(row)
	if l.UsedAt != nil {
		return l, linkUsed(*l.UsedAt)
	}
	if !s.now().Before(l.ExpiresAt) {
		return l, fault.New(fault.FailedPrecondition, "download link expired at %s; ask for a new link",
			l.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return l, nil
}

func linkUsed(at time.Time) error {
	return fault.New(fault.FailedPrecondition, "download link was already used at %s; a link works once: ask for a new link",
		at.UTC().Format(time.RFC3339))
}

// UseLink marks the link used. Only one caller wins: the row is updated only
// while used_at is still empty, so a link raced by two clients serves one.
func (s *Store) UseLink(ctx context.Context, l *Link) error {
	ctx = scoped(ctx, l.TenantID)
	n, err := s.client.DownloadLink.Update().
		Where(downloadlink.ID(l.ID), downloadlink.UsedAtIsNil()).
		SetUsedAt(micro(s.now())).
		Save(ctx)
	if err != nil {
		return translate(err, "download link")
	}
	if n == 0 {
		cur, err := s.client.DownloadLink.Get(ctx, l.ID)
		if err != nil {
			return translate(err, "download link")
		}
		if cur.UsedAt != nil {
			return linkUsed(*cur.UsedAt)
		}
		return linkUsed(s.now())
	}
	return nil
}

// PrincipalNames maps principal ids of a tenant to their email or service
// name; ids it does not know are left out.
func (s *Store) PrincipalNames(ctx context.Context, tenantID string, ids []string) (map[string]string, error) {
	ctx = scoped(ctx, tenantID)
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := s.client.Principal.Query().Where(principal.TenantID(tenantID), principal.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, translate(err, "principals")
	}
	for _, p := range ps {
		out[p.ID] = p.Name
	}
	return out, nil
}
