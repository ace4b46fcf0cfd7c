package store

import (
	"context"
	"time"

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

// DownloadRecord is a download on the record.
type DownloadRecord struct {
	ID          int64
	JobID       string
	TenantID    string
	PrincipalID string
	ClientIP    string
	UserAgent   string
	CreatedAt   time.Time
	StartOffset int64
	BytesSent   int64
	Protocol    string // connect, grpc, grpc-web, rest, link
	Completed   bool
}

func downloadFromEnt(r *ent.DownloadRecord) *DownloadRecord {
	if r == nil {
		return nil
	}
	return &DownloadRecord{ID: r.ID, JobID: r.JobID, TenantID: r.TenantID, PrincipalID: r.PrincipalID,
		ClientIP: r.ClientIP, UserAgent: r.UserAgent, CreatedAt: r.CreatedAt, StartOffset: r.StartOffset,
		BytesSent: r.BytesSent, Protocol: string(r.Protocol), Completed: r.Completed}
}

// RecordDownload stores a download record.
func (s *Store) RecordDownload(ctx context.Context, d Download) (*DownloadRecord, error) {
	ctx = scoped(ctx, d.TenantID)
	r, err := s.client.DownloadRecord.Create().
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
	return downloadFromEnt(r), translate(err, "download record")
}

// Downloads lists the downloads of one job, oldest first.
func (s *Store) Downloads(ctx context.Context, tenantID, jobID string) ([]*DownloadRecord, error) {
	ctx = scoped(ctx, tenantID)
	rs, err := s.client.DownloadRecord.Query().
		Where(downloadrecord.TenantID(tenantID), downloadrecord.JobID(jobID)).
		Order(downloadrecord.ByCreatedAt(), downloadrecord.ByID()).
		All(ctx)
	out := make([]*DownloadRecord, len(rs))
	for i, r := range rs {
		out[i] = downloadFromEnt(r)
	}
	return out, translate(err, "download records")
}
