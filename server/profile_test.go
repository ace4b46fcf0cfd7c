package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/server/servertest"
)

// TestExportNeedsProfile: a GDPR export for a tenant without a controller,
// or a HIPAA export without the entity's name and type, is refused with
// failed_precondition naming what to set and where; nothing is queued;
// CheckExport says the same; once the profiles are set, both exports are
// accepted.
func TestExportNeedsProfile(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	ctx := context.Background()
	tn := env.Tenant(t, "Acme", true)
	key := env.Key(t, tn, "admin", "ann@example.com")
	exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
	policies := auditv1connect.NewPolicyServiceClient(env.Client, env.URL, withKey(key))
	tenants := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(key))
	create := func(typ string) error {
		_, err := exports.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{
			ReportType: typ, StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
		return err
	}
	want := map[string][]string{
		"gdpr":  {"a GDPR report needs the tenant's GDPR profile with controller.name set", "PUT /v1/tenant/gdpr-profile", "Settings › GDPR profile"},
		"hipaa": {"a HIPAA report needs the tenant's HIPAA profile with name and type (covered_entity or business_associate) set", "PUT /v1/tenant/hipaa-profile", "Settings › HIPAA profile"},
	}
	for typ, parts := range want {
		err := create(typ)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition {
			t.Fatalf("%s export without a profile: %v, want failed_precondition", typ, err)
		}
		for _, p := range parts {
			if !strings.Contains(ce.Message(), p) {
				t.Errorf("%s refusal %q does not say %q", typ, ce.Message(), p)
			}
		}
	}
	jobs, _, err := env.Store.ListJobs(ctx, tn, store.JobFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("refused exports queued %d jobs (%v)", len(jobs), err)
	}
	check, err := policies.CheckExport(ctx, connect.NewRequest(&auditv1.CheckExportRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for typ, parts := range want {
		if !strings.Contains(check.Msg.GetReason(), strings.ToUpper(typ)+" exports are refused (failed_precondition): "+parts[0]) {
			t.Errorf("CheckExport reason %q does not report the missing %s profile", check.Msg.GetReason(), typ)
		}
	}
	if err := create("soc2"); err != nil {
		t.Fatalf("a SOC 2 export needs no profile: %v", err)
	}

	if _, err := tenants.UpdateGDPRProfile(ctx, connect.NewRequest(&auditv1.UpdateGDPRProfileRequest{Profile: &auditv1.GDPRProfile{
		Controller: &auditv1.GDPRController{Name: "Acme GmbH", Dpo: &auditv1.Contact{Email: "dpo@acme.example"}}}})); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.UpdateHIPAAProfile(ctx, connect.NewRequest(&auditv1.UpdateHIPAAProfileRequest{Profile: &auditv1.HIPAAProfile{
		Name: "Acme Clinic", Type: "covered_entity"}})); err != nil {
		t.Fatal(err)
	}
	for typ := range want {
		if err := create(typ); err != nil {
			t.Errorf("%s export with its profile set: %v", typ, err)
		}
	}
	check, err = policies.CheckExport(ctx, connect.NewRequest(&auditv1.CheckExportRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !check.Msg.GetAllowed() || strings.Contains(check.Msg.GetReason(), "refused") {
		t.Errorf("CheckExport with profiles set: allowed=%v reason %q", check.Msg.GetAllowed(), check.Msg.GetReason())
	}
}

// TestQueuedJobWithoutProfileFails: a HIPAA job queued without the profile
// (as one queued before profiles were required) fails at once, saying what
// to set, rather than producing a report that names no covered entity.
func TestQueuedJobWithoutProfileFails(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{})
	ctx := context.Background()
	tn := env.Tenant(t, "Acme", true)
	key := env.Key(t, tn, "admin", "ann@example.com")
	from, to := periodFrom, periodTo
	j, _, err := env.Store.CreateJob(ctx, store.NewJob{TenantID: tn, RequestedBy: "usr_ann", RequestedByName: "ann@example.com",
		ReportType: "hipaa", Format: "json", PeriodStart: from, PeriodEnd: to.Add(-time.Second), AppliedStart: from, AppliedEnd: to,
		RequestHash: "queued-before-profiles", Estimate: from})
	if err != nil {
		t.Fatal(err)
	}
	env.Runner.Wake()
	f := &fixture{env: env, tenant: tn, key: key,
		exports: auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))}
	job := f.watch(t, j.ID)
	want := "a HIPAA report needs the tenant's HIPAA profile with name and type (covered_entity or business_associate) set; set it, then create the export again"
	if job.GetStatus() != auditv1.ExportStatus_FAILED || job.GetAttempt() != 1 || !strings.Contains(job.GetError(), want) {
		t.Errorf("job ended %s at attempt %d: %q; want FAILED at once saying %q", job.GetStatus(), job.GetAttempt(), job.GetError(), want)
	}
}
