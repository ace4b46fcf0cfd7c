package reports

// The actions exportd itself writes to a tenant's audit log: one per API
// procedure (the server's authorization rules name them), the refinements a
// handler notes (addon.enable rather than addon.set), the denials the edge
// folds, and the operator commands of the exportd CLI. Handlers and commands
// use these constants, never literals, so that Actions is complete; the
// catalog test fails on an action here that the control catalog neither
// maps nor lists as deliberately unmapped.
const (
	ActionExportCreate    = "export.create"
	ActionExportGet       = "export.get"
	ActionExportList      = "export.list"
	ActionExportWatch     = "export.watch"
	ActionExportCancel    = "export.cancel"
	ActionExportDownload  = "export.download"
	ActionExportLink      = "export.link"
	ActionExportDownloads = "export.downloads"
	ActionExportManifest  = "export.manifest"
	ActionExportCheck     = "export.check"
	// ActionExportLinkRefused is folded per address and, having no tenant,
	// goes to the process log only.
	ActionExportLinkRefused = "export.link_refused"

	ActionAuthWhoAmI        = "auth.whoami"
	ActionAPIKeyAuthFailed  = "apikey.auth_failed"
	ActionAPIKeyRateLimited = "apikey.rate_limited"

	ActionAPIKeyCreate = "apikey.create"
	ActionAPIKeyList   = "apikey.list"
	ActionAPIKeyRevoke = "apikey.revoke"
	ActionRoleCreate   = "role.create"
	ActionRoleList     = "role.list"
	ActionRoleDelete   = "role.delete"

	ActionPolicyCreate  = "policy.create"
	ActionPolicyList    = "policy.list"
	ActionPolicyGet     = "policy.get"
	ActionPolicyUpdate  = "policy.update"
	ActionPolicyDelete  = "policy.delete"
	ActionPolicyEnable  = "policy.enable"
	ActionPolicyDisable = "policy.disable"
	ActionIssuerCreate  = "issuer.create"
	ActionIssuerList    = "issuer.list"

	ActionAuditWrite       = "audit.write"
	ActionAuditQuery       = "audit.query"
	ActionAuditStream      = "audit.stream"
	ActionAuditVerifyChain = "audit.verify_chain"
	ActionChainRepair      = "chain.repair"

	ActionAttestationRecord    = "attestation.record"
	ActionAttestationRevoke    = "attestation.revoke"
	ActionAttestationSupersede = "attestation.supersede"
	ActionAttestationList      = "attestation.list"
	ActionAttestationGet       = "attestation.get"

	ActionTenantCreate = "tenant.create"
	ActionTenantGet    = "tenant.get"
	// ActionAddOnSet is recorded when SetAddOn fails before it knows
	// which way it switched; success is addon.enable or addon.disable.
	ActionAddOnSet     = "addon.set"
	ActionAddOnEnable  = "addon.enable"
	ActionAddOnDisable = "addon.disable"

	ActionRetentionUpdate    = "settings.retention.update"
	ActionGDPRProfileGet     = "settings.gdpr_profile.get"
	ActionGDPRProfileUpdate  = "settings.gdpr_profile.update"
	ActionHIPAAProfileGet    = "settings.hipaa_profile.get"
	ActionHIPAAProfileUpdate = "settings.hipaa_profile.update"
	ActionWebhookCreate      = "settings.webhook.create"
	ActionWebhookList        = "settings.webhook.list"
	ActionWebhookUpdate      = "settings.webhook.update"
	ActionWebhookDelete      = "settings.webhook.delete"
	// ActionOperatorWebhookCreate is the exportd CLI's webhook create.
	ActionOperatorWebhookCreate = "webhook.create"
)

// Actions lists every action exportd writes, in the order above.
var Actions = []string{
	ActionExportCreate, ActionExportGet, ActionExportList, ActionExportWatch, ActionExportCancel,
	ActionExportDownload, ActionExportLink, ActionExportDownloads, ActionExportManifest, ActionExportCheck,
	ActionExportLinkRefused,
	ActionAuthWhoAmI, ActionAPIKeyAuthFailed, ActionAPIKeyRateLimited,
	ActionAPIKeyCreate, ActionAPIKeyList, ActionAPIKeyRevoke, ActionRoleCreate, ActionRoleList, ActionRoleDelete,
	ActionPolicyCreate, ActionPolicyList, ActionPolicyGet, ActionPolicyUpdate, ActionPolicyDelete,
	ActionPolicyEnable, ActionPolicyDisable, ActionIssuerCreate, ActionIssuerList,
	ActionAuditWrite, ActionAuditQuery, ActionAuditStream, ActionAuditVerifyChain, ActionChainRepair,
	ActionAttestationRecord, ActionAttestationRevoke, ActionAttestationSupersede, ActionAttestationList, ActionAttestationGet,
	ActionTenantCreate, ActionTenantGet, ActionAddOnSet, ActionAddOnEnable, ActionAddOnDisable,
	ActionRetentionUpdate, ActionGDPRProfileGet, ActionGDPRProfileUpdate, ActionHIPAAProfileGet, ActionHIPAAProfileUpdate,
	ActionWebhookCreate, ActionWebhookList, ActionWebhookUpdate, ActionWebhookDelete, ActionOperatorWebhookCreate,
}
