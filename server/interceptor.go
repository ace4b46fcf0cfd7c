package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/internal/tenancy"
	"github.com/exportd/exportd/reports"
)

// rule is what one procedure needs and how it is logged.
type rule struct {
	action   string // audit action
	perm     string // permission; "" for any authenticated key
	pack     bool   // needs the Compliance Pack
	category string // audit category when allowed
	policy   bool   // passes the BUNDLE_EXPORT issuance policies
}

var rules = map[string]rule{
	auditv1connect.ExportServiceCreateExportProcedure:         {reports.ActionExportCreate, authz.PermExport, true, "api", true},
	auditv1connect.ExportServiceGetExportProcedure:            {reports.ActionExportGet, authz.PermRead, false, "api", false},
	auditv1connect.ExportServiceListExportsProcedure:          {reports.ActionExportList, authz.PermRead, false, "api", false},
	auditv1connect.ExportServiceWatchExportProcedure:          {reports.ActionExportWatch, authz.PermRead, false, "api", false},
	auditv1connect.ExportServiceCancelExportProcedure:         {reports.ActionExportCancel, authz.PermExport, false, "api", false},
	auditv1connect.ExportServiceWhoAmIProcedure:               {reports.ActionAuthWhoAmI, "", false, "api", false},
	auditv1connect.DownloadServiceDownloadProcedure:           {reports.ActionExportDownload, authz.PermExport, false, "access", false},
	auditv1connect.DownloadServiceCreateDownloadLinkProcedure: {reports.ActionExportLink, authz.PermExport, true, "access", true},
	auditv1connect.DownloadServiceListDownloadsProcedure:      {reports.ActionExportDownloads, authz.PermRead, false, "api", false},
	restDownloadProcedure:                                     {reports.ActionExportDownload, authz.PermExport, false, "access", false},
	restManifestProcedure:                                     {reports.ActionExportManifest, authz.PermExport, false, "api", false},
	// A link carries its own authority (the minting principal's); the
	// handler checks the link instead of a key.
	linkDownloadProcedure: {reports.ActionExportDownload, "", false, "access", false},

	auditv1connect.ApiKeyServiceCreateApiKeyProcedure: {reports.ActionAPIKeyCreate, authz.PermAPIKeyManage, false, "access", false},
	auditv1connect.ApiKeyServiceListApiKeysProcedure:  {reports.ActionAPIKeyList, authz.PermAPIKeyManage, false, "api", false},
	auditv1connect.ApiKeyServiceRevokeApiKeyProcedure: {reports.ActionAPIKeyRevoke, authz.PermAPIKeyManage, false, "access", false},
	auditv1connect.ApiKeyServiceCreateRoleProcedure:   {reports.ActionRoleCreate, authz.PermAPIKeyManage, false, "access", false},
	auditv1connect.ApiKeyServiceListRolesProcedure:    {reports.ActionRoleList, authz.PermAPIKeyManage, false, "api", false},
	auditv1connect.ApiKeyServiceDeleteRoleProcedure:   {reports.ActionRoleDelete, authz.PermAPIKeyManage, false, "access", false},

	auditv1connect.PolicyServiceCreatePolicyProcedure: {reports.ActionPolicyCreate, authz.PermPolicyManage, false, "access", false},
	auditv1connect.PolicyServiceListPoliciesProcedure: {reports.ActionPolicyList, authz.PermPolicyManage, false, "api", false},
	auditv1connect.PolicyServiceGetPolicyProcedure:    {reports.ActionPolicyGet, authz.PermPolicyManage, false, "api", false},
	auditv1connect.PolicyServiceUpdatePolicyProcedure: {reports.ActionPolicyUpdate, authz.PermPolicyManage, false, "access", false},
	auditv1connect.PolicyServiceDeletePolicyProcedure: {reports.ActionPolicyDelete, authz.PermPolicyManage, false, "access", false},
	auditv1connect.PolicyServiceCreateIssuerProcedure: {reports.ActionIssuerCreate, authz.PermPolicyManage, false, "access", false},
	auditv1connect.PolicyServiceListIssuersProcedure:  {reports.ActionIssuerList, authz.PermPolicyManage, false, "api", false},
	auditv1connect.PolicyServiceCheckExportProcedure:  {reports.ActionExportCheck, authz.PermRead, false, "api", false},

	auditv1connect.AuditLogServiceWriteEventsProcedure:             {reports.ActionAuditWrite, authz.PermWrite, false, "api", false},
	auditv1connect.AuditLogServiceQueryEventsProcedure:             {reports.ActionAuditQuery, authz.PermRead, false, "api", false},
	auditv1connect.AuditLogServiceStreamEventsProcedure:            {reports.ActionAuditStream, authz.PermRead, false, "api", false},
	auditv1connect.AuditLogServiceVerifyChainProcedure:             {reports.ActionAuditVerifyChain, authz.PermRead, false, "api", false},
	auditv1connect.AttestationServiceRecordAttestationProcedure:    {reports.ActionAttestationRecord, authz.PermWrite, false, "api", false},
	auditv1connect.AttestationServiceRevokeAttestationProcedure:    {reports.ActionAttestationRevoke, authz.PermWrite, false, "api", false},
	auditv1connect.AttestationServiceSupersedeAttestationProcedure: {reports.ActionAttestationSupersede, authz.PermWrite, false, "api", false},
	auditv1connect.AttestationServiceListAttestationsProcedure:     {reports.ActionAttestationList, authz.PermRead, false, "api", false},
	auditv1connect.AttestationServiceGetAttestationProcedure:       {reports.ActionAttestationGet, authz.PermRead, false, "api", false},
	auditv1connect.TenantServiceGetTenantProcedure:                 {reports.ActionTenantGet, authz.PermRead, false, "api", false},
	auditv1connect.TenantServiceSetAddOnProcedure:                  {reports.ActionAddOnSet, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceUpdateRetentionProcedure:           {reports.ActionRetentionUpdate, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceGetGDPRProfileProcedure:            {reports.ActionGDPRProfileGet, authz.PermRead, false, "api", false},
	auditv1connect.TenantServiceUpdateGDPRProfileProcedure:         {reports.ActionGDPRProfileUpdate, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceGetHIPAAProfileProcedure:           {reports.ActionHIPAAProfileGet, authz.PermRead, false, "api", false},
	auditv1connect.TenantServiceUpdateHIPAAProfileProcedure:        {reports.ActionHIPAAProfileUpdate, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceCreateWebhookProcedure:             {reports.ActionWebhookCreate, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceListWebhooksProcedure:              {reports.ActionWebhookList, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceUpdateWebhookProcedure:             {reports.ActionWebhookUpdate, authz.PermSettingsManage, false, "api", false},
	auditv1connect.TenantServiceDeleteWebhookProcedure:             {reports.ActionWebhookDelete, authz.PermSettingsManage, false, "api", false},
}

// resourceTypeOf names what a procedure's audit event is about.
func resourceTypeOf(procedure string) string {
	for _, p := range []struct{ service, kind string }{
		{auditv1connect.AuditLogServiceName, "audit_log"},
		{auditv1connect.AttestationServiceName, "attestation"},
		{auditv1connect.TenantServiceName, "tenant"},
	} {
		if strings.HasPrefix(procedure, "/"+p.service+"/") {
			return p.kind
		}
	}
	return resourceType(rules[procedure].action)
}

// auditNote lets a handler refine the audit event the interceptor writes
// for its call: a more precise action (addon.enable rather than addon.set),
// the resource, and metadata. Empty fields keep the rule's defaults.
type auditNote struct {
	action, resourceType, resource string
	meta                           map[string]any
}

type auditNoteKey struct{}

// withAuditNote gives a call room for a note.
func withAuditNote(ctx context.Context) context.Context {
	return context.WithValue(ctx, auditNoteKey{}, &auditNote{})
}

// noteAudit records what the handler wants in the call's audit event.
func noteAudit(ctx context.Context, action, resourceType, resource string, meta map[string]any) {
	n, _ := ctx.Value(auditNoteKey{}).(*auditNote)
	if n == nil {
		return
	}
	n.action, n.resourceType, n.resource, n.meta = action, resourceType, resource, meta
}

// Names of the plain REST handlers, for rules and logs.
const (
	restDownloadProcedure = "GET /v1/audit/exports/{job_id}/download"
	restManifestProcedure = "GET /v1/audit/exports/{job_id}/manifest"
	linkDownloadProcedure = "GET /v1/links/{token}"
)

// denial marks an authentication or authorization refusal, which the audit
// log files under `access`.
type denial struct {
	err error
	// folded denials are counted per window, not audited one by one.
	folded bool
}

func (d *denial) Error() string { return d.err.Error() }
func (d *denial) Unwrap() error { return d.err }

// resourceType is what an action is about, from its prefix.
func resourceType(action string) string {
	switch strings.SplitN(action, ".", 2)[0] {
	case "apikey":
		return "api_key"
	case "role":
		return "role"
	case "policy":
		return "policy"
	case "issuer":
		return "issuer"
	case "auth":
		return "api_key"
	}
	return "export_job"
}

// callInfo is what the audit record needs to know about a request.
type callInfo struct {
	procedure string
	header    http.Header
	peer      string
	protocol  string
	meta      map[string]any // added to the audit event's metadata
}

// authenticate resolves the key and checks the procedure's rule in SPEC §3
// order: key, Compliance Pack, permission. Policies and field validation come
// after, in the handler chain.
func (s *Server) authenticate(ctx context.Context, ci callInfo) (*authz.Caller, error) {
	r, ok := rules[ci.procedure]
	raw := ci.header.Get("X-API-Key")
	pk := parseKey(raw)
	keyID := pk.id
	if wait, which := s.guard.blocked(ci.peer, pk); wait > 0 {
		// Refused before the lookup: no database work, and counted in the
		// folded log of the key's tenant when a failure told us which.
		s.cfg.Telemetry.Metrics.Deny(ctx, "auth_failures")
		s.foldDenial(ctx, s.guard.tenantOf(keyID), keyID, reports.ActionAPIKeyAuthFailed, "too_many_failures", ci)
		e := fault.New(fault.ResourceExhausted, "too many failed authentications from this %s; retry in %s", map[string]string{"key": "API key", "ip": "address"}[which], wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return nil, &denial{err: e}
	}
	c, err := s.store.Authenticate(ctx, raw)
	if err != nil {
		var ae *store.AuthError
		if !errors.As(err, &ae) {
			return nil, err
		}
		s.guard.failed(ci.peer, keyID, ae.TenantID)
		// One line per failure that reached the lookup: the guard above
		// bounds how many do, so a flood cannot fill the log.
		s.log.WarnContext(ctx, "authentication failed", "reason", ae.Reason, "key_id", ae.KeyID,
			"procedure", ci.procedure, "peer", ci.peer)
		s.cfg.Telemetry.Metrics.Deny(ctx, ae.Reason)
		// The attempt belongs in the key's tenant's log when the key id was
		// real, folded per key and reason; otherwise in the process log,
		// folded per address.
		s.foldDenial(ctx, ae.TenantID, ae.KeyID, reports.ActionAPIKeyAuthFailed, ae.Reason, ci)
		msg := "missing API key: send it in the X-API-Key header"
		if ae.Reason != store.AuthMissing {
			msg = "invalid API key"
			if ae.Reason == store.AuthExpired || ae.Reason == store.AuthRevoked {
				msg = "API key " + ae.Reason + "; ask an admin for a new key"
			}
		}
		return nil, &denial{err: fault.New(fault.Unauthenticated, "%s", msg)}
	}
	s.guard.succeeded(pk)
	if wait := s.limiter.take(c.KeyID); wait > 0 {
		e := fault.New(fault.ResourceExhausted, "API key %s is over its rate limit; retry in %s", c.KeyID, wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return c, &denial{err: e, folded: true}
	}
	if !ok {
		// A procedure without a rule is refused, never open to every key.
		return c, &denial{err: fault.New(fault.PermissionDenied, "no authorization rule for %s", ci.procedure)}
	}
	if _, err := s.gate(ctx, c, r); err != nil {
		return c, err
	}
	return c, nil
}

// gate applies SPEC §3's checks after the key, in order: Compliance Pack,
// permission, BUNDLE_EXPORT policies. It names the check that refused, and
// records the policy decision on the caller for the job. CheckExport runs
// it too, so the dry run and the real thing cannot disagree. Nothing here
// reads an audit row.
func (s *Server) gate(ctx context.Context, c *authz.Caller, r rule) (check string, err error) {
	if r.pack && !c.CompliancePack {
		s.cfg.Telemetry.Metrics.Deny(ctx, "compliance_pack")
		return authz.CheckCompliancePack, &denial{err: fault.New(fault.FailedPrecondition,
			"the Compliance Pack add-on is not enabled for this tenant: enable it from Settings › Billing › Add-ons in the console, or ask your account manager")}
	}
	if r.perm != "" && !s.enforcer.Allowed(c.TenantID, c.Role, r.perm) {
		s.cfg.Telemetry.Metrics.Deny(ctx, "permission")
		return authz.CheckPermission, &denial{err: fault.New(fault.PermissionDenied, "role %q lacks the %s permission", c.Role, r.perm)}
	}
	if r.policy {
		var policies []authz.IssuancePolicy
		if !c.NoExportPolicies { // authentication saw none: nothing to read
			var err error
			if policies, err = s.store.ExportPolicies(ctx, c.TenantID); err != nil {
				return authz.CheckPolicy, err
			}
		}
		iss, err := s.store.KeyIssuer(ctx, c.TenantID, c.IssuerID)
		if err != nil {
			return authz.CheckPolicy, err
		}
		d := authz.DecideExport(policies, iss)
		c.ExportDecision = d
		if !d.Allowed {
			return authz.CheckPolicy, &denial{err: fault.New(fault.PermissionDenied, "%s", d.Reason)}
		}
	}
	return "", nil
}

// audit appends one event to the tenant's log. A failure to write it is
// logged; the request's own answer stands.
func (s *Server) audit(ctx context.Context, tenantID string, e reports.Event, ci callInfo) {
	e.OccurredAt = s.store.Now()
	e.IP = ci.peer
	e.UserAgent = ci.header.Get("User-Agent")
	e.RequestID = requestID(ctx)
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	if ci.protocol != "" {
		e.Metadata["protocol"] = ci.protocol
	}
	for k, v := range ci.meta {
		e.Metadata[k] = v
	}
	// What the request named goes on the record even when it was hostile
	// (a NUL byte, invalid UTF-8, an id of megabytes): cleaned, so that the
	// write cannot fail on it.
	for _, f := range []*string{&e.ActorID, &e.ResourceID, &e.IP, &e.UserAgent, &e.RequestID} {
		*f = cleanText(*f, maxAuditText)
	}
	e.Metadata = cleanMeta(e.Metadata).(map[string]any)
	if _, _, err := s.store.AppendEvents(context.WithoutCancel(ctx), tenantID, []reports.Event{e}); err != nil {
		s.log.ErrorContext(ctx, "write audit event", "err", err, "action", e.Action)
	}
}

// finish records the outcome of an authenticated call.
func (s *Server) finish(ctx context.Context, c *authz.Caller, ci callInfo, resource string, err error) {
	r := rules[ci.procedure]
	if d := (*denial)(nil); errors.As(err, &d) && d.folded {
		s.foldDenial(ctx, c.TenantID, c.KeyID, reports.ActionAPIKeyRateLimited, "rate_limit", ci)
		return
	}
	e := reports.Event{
		ActorID: c.PrincipalID, ActorType: "user", Action: r.action,
		ResourceType: resourceTypeOf(ci.procedure), ResourceID: resource, Outcome: "success", Category: r.category,
		Metadata: map[string]any{"procedure": ci.procedure, "key_id": c.KeyID, "principal": c.PrincipalName},
	}
	if n, _ := ctx.Value(auditNoteKey{}).(*auditNote); n != nil {
		if n.action != "" {
			e.Action = n.action
		}
		if n.resourceType != "" {
			e.ResourceType = n.resourceType
		}
		if n.resource != "" {
			e.ResourceID = n.resource
		}
		for k, v := range n.meta {
			e.Metadata[k] = v
		}
	}
	if err != nil {
		var d *denial
		switch {
		case errors.As(err, &d):
			e.Outcome, e.Category = "denied", "access"
		default:
			e.Outcome = "failure"
		}
		e.Metadata["code"] = toConnect(ctx, s.log, err).Code().String()
	}
	s.audit(ctx, c.TenantID, e, ci)
}

// interceptor authenticates, authorizes and audits every RPC.
type interceptor struct{ s *Server }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		// Every unary call's database work has a deadline, the client's
		// when it sent a shorter one.
		ctx, cancel := context.WithTimeout(ctx, i.s.cfg.RequestTimeout)
		defer cancel()
		ci := callInfo{procedure: req.Spec().Procedure, header: req.Header(), peer: i.s.clientIP(req.Peer().Addr, req.Header()), protocol: req.Peer().Protocol}
		ctx = withAuditNote(ctx)
		c, err := i.s.authenticate(ctx, ci)
		if c == nil && err != nil {
			return nil, toConnect(ctx, i.s.log, err)
		}
		ctx = tenancy.WithTenant(ctx, c.TenantID)
		if err == nil {
			ctx = authz.WithCaller(ctx, c)
			var resp connect.AnyResponse
			if err = refuseHostile(req.Any()); err == nil {
				resp, err = next(ctx, req)
			}
			i.s.finish(ctx, c, ci, resourceOf(req.Any(), resp), err)
			if err == nil {
				return resp, nil
			}
		} else {
			i.s.finish(ctx, c, ci, resourceOf(req.Any(), nil), err)
		}
		return nil, toConnect(ctx, i.s.log, err)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ci := callInfo{procedure: conn.Spec().Procedure, header: conn.RequestHeader(), peer: i.s.clientIP(conn.Peer().Addr, conn.RequestHeader()), protocol: conn.Peer().Protocol}
		ctx = withAuditNote(ctx)
		c, err := i.s.authenticate(ctx, ci)
		if c == nil && err != nil {
			return toConnect(ctx, i.s.log, err)
		}
		ctx = tenancy.WithTenant(ctx, c.TenantID)
		rc := &recordingConn{StreamingHandlerConn: conn}
		if err == nil {
			ctx = authz.WithCaller(ctx, c)
			err = next(ctx, rc)
		}
		i.s.finish(ctx, c, ci, resourceOf(rc.first, nil), err)
		if err != nil {
			return toConnect(ctx, i.s.log, err)
		}
		return nil
	}
}

// recordingConn remembers the first request message, to name the resource in
// the audit event, and refuses a message carrying a hostile string before
// the handler sees it (a stream's request arrives inside the handler).
type recordingConn struct {
	connect.StreamingHandlerConn
	first any
}

func (r *recordingConn) Receive(m any) error {
	err := r.StreamingHandlerConn.Receive(m)
	if err != nil {
		return err
	}
	if r.first == nil {
		r.first = m
	}
	return refuseHostile(m)
}

// resourceOf names the job, key, role, policy or issuer a request or
// response is about.
func resourceOf(req any, resp connect.AnyResponse) string {
	if id := idOf(req); id != "" {
		return id
	}
	type attestationIDer interface{ GetAttestationId() string }
	if a, ok := req.(attestationIDer); ok && a.GetAttestationId() != "" {
		return a.GetAttestationId()
	}
	if resp != nil {
		return idOf(resp.Any())
	}
	return ""
}

func idOf(m any) string {
	switch v := m.(type) {
	case interface{ GetJobId() string }:
		return v.GetJobId()
	case interface{ GetKeyId() string }:
		return v.GetKeyId()
	case interface{ GetPolicyId() string }:
		return v.GetPolicyId()
	case interface{ GetApiKey() *auditv1.ApiKey }:
		return v.GetApiKey().GetKeyId()
	case interface{ GetPolicy() *auditv1.Policy }:
		return v.GetPolicy().GetPolicyId()
	case interface{ GetIssuer() *auditv1.Issuer }:
		return v.GetIssuer().GetIssuerId()
	case interface{ GetRole() *auditv1.Role }:
		return v.GetRole().GetName()
	case *auditv1.DeleteRoleRequest:
		return v.GetName()
	}
	return ""
}

// clientIP is the socket peer, or the forwarded client when the peer is a
// trusted proxy: the rightmost address in X-Forwarded-For (or Forwarded) that
// is not itself a trusted proxy. Hops left of it were written by whoever sent
// the request and are never believed.
func (s *Server) clientIP(peer string, h http.Header) string {
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		host = peer
	}
	if !s.trusted(host) {
		return host
	}
	hops := forwardedFor(h)
	for i := len(hops) - 1; i >= 0; i-- {
		if !s.trusted(hops[i]) {
			return hops[i]
		}
	}
	if len(hops) > 0 {
		// Every hop is a trusted proxy: the first one is where the request
		// came from.
		return hops[0]
	}
	return host
}

func (s *Server) trusted(ip string) bool {
	a := net.ParseIP(ip)
	if a == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func requestID(ctx context.Context) string { return telemetry.RequestID(ctx) }

// withRequestID gives every request an id (the client's X-Request-Id when it
// sent a sane one), echoed in the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = apikey.RandomID("req_", 20)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(telemetry.WithRequestID(r.Context(), id)))
	})
}

func asDenial(err error, d **denial) bool { return errors.As(err, d) }
