package store

import (
	"context"
	"fmt"
	"time"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/maintenancelease"
)

// TryLease takes, or renews, the lease on the periodic task name for owner
// until ttl from now, and reports whether owner holds it. Replicas call it
// before each run of a task, so one of them runs it at a time.
func (s *Store) TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	ctx = System(ctx) // maintenance leases belong to the installation
	now := micro(s.now())
	n, err := s.client.MaintenanceLease.Update().
		Where(maintenancelease.ID(name), maintenancelease.Or(
			maintenancelease.LeaseUntilLT(now), maintenancelease.Owner(owner))).
		SetOwner(owner).
		SetLeaseUntil(now.Add(ttl)).
		Save(ctx)
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	if n == 1 {
		return true, nil
	}
	err = s.client.MaintenanceLease.Create().SetID(name).SetOwner(owner).SetLeaseUntil(now.Add(ttl)).Exec(ctx)
	if ent.IsConstraintError(err) {
		return false, nil // held by another replica
	}
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return true, nil
}
