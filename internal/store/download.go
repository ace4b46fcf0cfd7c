package store

import (
	"context"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/downloadrecord"
)

// Download is one download to put on the record.
type Download struct {
	JobID       string
	TenantID    string
	PrincipalID string
	ClientIP    string
	UserAgent   string
	StartOffset int64
	BytesSent   int64
	Protocol    string // connect, grpc, grpc-web, rest, link
	Completed   bool
}

// RecordDownload stores a download record.
func (s *Store) RecordDownload(ctx context.Context, d Download) (*ent.DownloadRecord, error) {
	ctx = scoped(ctx, d.TenantID)
	r, err := s.Ent.DownloadRecord.Create().
		SetJobID(d.JobID).
		SetTenantID(d.TenantID).
		SetPrincipalID(d.PrincipalID).
		SetClientIP(d.ClientIP).
		SetUserAgent(d.UserAgent).
		SetCreatedAt(micro(s.now())).
		SetStartOffset(d.StartOffset).
		SetBytesSent(d.BytesSent).
		SetProtocol(downloadrecord.Protocol(d.Protocol)).
		SetCompleted(d.Completed).
		Save(ctx)
	return r, translate(err, "download record")
}

// Downloads lists the downloads of one job, oldest first.
func (s *Store) Downloads(ctx context.Context, tenantID, jobID string) ([]*ent.DownloadRecord, error) {
	ctx = scoped(ctx, tenantID)
	rs, err := s.Ent.DownloadRecord.Query().
		Where(downloadrecord.TenantID(tenantID), downloadrecord.JobID(jobID)).
		Order(downloadrecord.ByCreatedAt(), downloadrecord.ByID()).
		All(ctx)
	return rs, translate(err, "download records")
}
