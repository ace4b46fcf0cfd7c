package server

import (
	"context"
	"errors"
	"strings"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

// Where a tenant sets each profile, for the refusals that ask for one.
var profileWhere = map[string]string{
	reports.TypeGDPR:  "set it with PUT /v1/tenant/gdpr-profile (TenantService.UpdateGDPRProfile) or in the console under Settings › GDPR profile",
	reports.TypeHIPAA: "set it with PUT /v1/tenant/hipaa-profile (TenantService.UpdateHIPAAProfile) or in the console under Settings › HIPAA profile",
}

// profileRefusals returns, per report type that needs a profile the tenant
// has not filled, the failed_precondition CreateExport answers with; nil
// for a report type that needs none. SOC 2 needs none and costs no read.
func (s *Server) profileRefusals(ctx context.Context, tenantID string, types ...string) (map[string]error, error) {
	var need []string
	for _, t := range types {
		if _, ok := profileWhere[t]; ok {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	t, err := s.store.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := map[string]error{}
	for _, typ := range need {
		var pe *reports.ProfileError
		if err := reports.RequireProfile(typ, t.GdprProfile, t.HipaaProfile); errors.As(err, &pe) {
			out[typ] = fault.New(fault.FailedPrecondition, "%s: %s, then create the export again", pe.Error(), profileWhere[typ])
		}
	}
	return out, nil
}

// requireProfile refuses an export of reportType when the tenant's profile
// for it is missing or incomplete.
func (s *Server) requireProfile(ctx context.Context, tenantID, reportType string) error {
	refused, err := s.profileRefusals(ctx, tenantID, reportType)
	if err != nil {
		return err
	}
	return refused[reportType]
}

// profileNotes says, for CheckExport, which report types CreateExport
// would refuse for a missing profile: CheckExport takes no report type, so
// it reports every one.
func (s *Server) profileNotes(ctx context.Context, tenantID string) (string, error) {
	refused, err := s.profileRefusals(ctx, tenantID, reports.TypeGDPR, reports.TypeHIPAA)
	if err != nil {
		return "", err
	}
	var notes []string
	for _, typ := range []string{reports.TypeGDPR, reports.TypeHIPAA} {
		if e := refused[typ]; e != nil {
			var fe *fault.Error
			if errors.As(e, &fe) {
				notes = append(notes, strings.ToUpper(typ)+" exports are refused (failed_precondition): "+fe.Message)
			}
		}
	}
	return strings.Join(notes, "; "), nil
}
