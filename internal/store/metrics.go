package store

import (
	"context"
	"fmt"
)

// JobStatuses are the statuses an export job can have, for reporting.
var JobStatuses = []string{"PENDING", "RUNNING", "COMPLETED", "FAILED", "EXPIRED"}

// JobCounts counts export jobs per status across every tenant, for the
// operator's metrics; it never reaches a client.
func (s *Store) JobCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT status, COUNT(*) FROM export_jobs GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(JobStatuses))
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("scan job count: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}
