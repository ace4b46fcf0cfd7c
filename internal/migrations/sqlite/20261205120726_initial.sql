-- +goose Up
-- create "api_keys" table
CREATE TABLE `api_keys` (`id` text NOT NULL, `tenant_id` text NOT NULL, `principal_id` text NOT NULL, `name` text NOT NULL DEFAULT (''), `role` text NOT NULL, `issuer_id` text NULL, `secret_hash` blob NOT NULL, `live` bool NOT NULL DEFAULT (true), `created_at` datetime NOT NULL, `last_used_at` datetime NULL, `expires_at` datetime NULL, `revoked_at` datetime NULL, PRIMARY KEY (`id`));
-- create index "apikey_tenant_id" to table: "api_keys"
CREATE INDEX `apikey_tenant_id` ON `api_keys` (`tenant_id`);
-- create "attestation_records" table
CREATE TABLE `attestation_records` (`id` text NOT NULL, `tenant_id` text NOT NULL, `attestation_id` text NOT NULL, `issuer_id` text NOT NULL, `subject` text NOT NULL, `schema` text NOT NULL, `status` text NOT NULL DEFAULT ('ACTIVE'), `data_categories` json NULL, `legal_basis` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `revoked_at` datetime NULL, `superseded_by` text NULL, `superseded_at` datetime NULL, PRIMARY KEY (`id`));
-- create index "attestationrecord_tenant_id_created_at" to table: "attestation_records"
CREATE INDEX `attestationrecord_tenant_id_created_at` ON `attestation_records` (`tenant_id`, `created_at`);
-- create index "attestationrecord_tenant_id_attestation_id" to table: "attestation_records"
CREATE UNIQUE INDEX `attestationrecord_tenant_id_attestation_id` ON `attestation_records` (`tenant_id`, `attestation_id`);
-- create "audit_events" table
CREATE TABLE `audit_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `tenant_id` text NOT NULL, `sequence` integer NOT NULL, `occurred_at` datetime NOT NULL, `actor_id` text NOT NULL, `actor_type` text NOT NULL, `action` text NOT NULL, `resource_type` text NOT NULL DEFAULT (''), `resource_id` text NOT NULL DEFAULT (''), `outcome` text NOT NULL, `category` text NOT NULL, `phi` bool NOT NULL DEFAULT (false), `ip` text NOT NULL DEFAULT (''), `user_agent` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `metadata` json NULL, `client_event_id` text NULL, `hash` text NOT NULL DEFAULT (''));
-- create index "auditevent_tenant_id_sequence" to table: "audit_events"
CREATE UNIQUE INDEX `auditevent_tenant_id_sequence` ON `audit_events` (`tenant_id`, `sequence`);
-- create index "auditevent_tenant_id_client_event_id" to table: "audit_events"
CREATE UNIQUE INDEX `auditevent_tenant_id_client_event_id` ON `audit_events` (`tenant_id`, `client_event_id`);
-- create index "auditevent_tenant_id_occurred_at_sequence" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id_occurred_at_sequence` ON `audit_events` (`tenant_id`, `occurred_at`, `sequence`);
-- create "authz_versions" table
CREATE TABLE `authz_versions` (`id` text NOT NULL, `version` integer NOT NULL DEFAULT (0), PRIMARY KEY (`id`));
-- create "casbin_rules" table
CREATE TABLE `casbin_rules` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `tenant_id` text NOT NULL, `ptype` text NOT NULL, `v0` text NOT NULL DEFAULT (''), `v1` text NOT NULL DEFAULT (''), `v2` text NOT NULL DEFAULT (''), `v3` text NOT NULL DEFAULT (''), `v4` text NOT NULL DEFAULT (''), `v5` text NOT NULL DEFAULT (''));
-- create index "casbinrule_ptype_v0_v1_v2_v3_v4_v5" to table: "casbin_rules"
CREATE UNIQUE INDEX `casbinrule_ptype_v0_v1_v2_v3_v4_v5` ON `casbin_rules` (`ptype`, `v0`, `v1`, `v2`, `v3`, `v4`, `v5`);
-- create index "casbinrule_tenant_id" to table: "casbin_rules"
CREATE INDEX `casbinrule_tenant_id` ON `casbin_rules` (`tenant_id`);
-- create "chain_repairs" table
CREATE TABLE `chain_repairs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `tenant_id` text NOT NULL, `sequence` integer NOT NULL, `stored_hash` text NOT NULL, `hashed_metadata` text NOT NULL, `stored_metadata` text NOT NULL, `reason` text NOT NULL, `repaired_by` text NOT NULL, `created_at` datetime NOT NULL);
-- create index "chainrepair_tenant_id_sequence" to table: "chain_repairs"
CREATE UNIQUE INDEX `chainrepair_tenant_id_sequence` ON `chain_repairs` (`tenant_id`, `sequence`);
-- create "download_links" table
CREATE TABLE `download_links` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `token_hash` text NOT NULL, `job_id` text NOT NULL, `tenant_id` text NOT NULL, `principal_id` text NOT NULL, `key_id` text NULL, `created_at` datetime NOT NULL, `expires_at` datetime NOT NULL, `used_at` datetime NULL);
-- create index "download_links_token_hash_key" to table: "download_links"
CREATE UNIQUE INDEX `download_links_token_hash_key` ON `download_links` (`token_hash`);
-- create index "downloadlink_tenant_id_job_id" to table: "download_links"
CREATE INDEX `downloadlink_tenant_id_job_id` ON `download_links` (`tenant_id`, `job_id`);
-- create "download_records" table
CREATE TABLE `download_records` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `job_id` text NOT NULL, `tenant_id` text NOT NULL, `principal_id` text NOT NULL, `client_ip` text NOT NULL DEFAULT (''), `user_agent` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `start_offset` integer NOT NULL DEFAULT (0), `bytes_sent` integer NOT NULL DEFAULT (0), `protocol` text NOT NULL, `completed` bool NOT NULL DEFAULT (false));
-- create index "downloadrecord_tenant_id_job_id_created_at" to table: "download_records"
CREATE INDEX `downloadrecord_tenant_id_job_id_created_at` ON `download_records` (`tenant_id`, `job_id`, `created_at`);
-- create "export_jobs" table
CREATE TABLE `export_jobs` (`id` text NOT NULL, `tenant_id` text NOT NULL, `requested_by` text NOT NULL, `requested_by_name` text NOT NULL DEFAULT (''), `report_type` text NOT NULL, `format` text NOT NULL, `period_start` datetime NOT NULL, `period_end` datetime NOT NULL, `applied_start` datetime NOT NULL, `applied_end` datetime NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `error` text NOT NULL DEFAULT (''), `rows_done` integer NOT NULL DEFAULT (0), `rows_total` integer NOT NULL DEFAULT (0), `estimated_completion` datetime NULL, `created_at` datetime NOT NULL, `started_at` datetime NULL, `completed_at` datetime NULL, `expires_at` datetime NULL, `attempt` integer NOT NULL DEFAULT (0), `failures` integer NOT NULL DEFAULT (0), `lease_owner` text NOT NULL DEFAULT (''), `lease_until` datetime NULL, `idempotency_key` text NULL, `request_hash` text NOT NULL DEFAULT (''), `policy_decision` text NOT NULL DEFAULT (''), `artifact_key` text NOT NULL DEFAULT (''), `artifact_size` integer NOT NULL DEFAULT (0), `artifact_sha256` text NOT NULL DEFAULT (''), `manifest` blob NULL, `trace_parent` text NOT NULL DEFAULT (''), `max_attempts` integer NOT NULL DEFAULT (5), `next_attempt_at` datetime NULL, `completed_by` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- create index "exportjob_tenant_id_created_at" to table: "export_jobs"
CREATE INDEX `exportjob_tenant_id_created_at` ON `export_jobs` (`tenant_id`, `created_at`);
-- create index "exportjob_status_created_at" to table: "export_jobs"
CREATE INDEX `exportjob_status_created_at` ON `export_jobs` (`status`, `created_at`);
-- create index "exportjob_tenant_id_idempotency_key" to table: "export_jobs"
CREATE UNIQUE INDEX `exportjob_tenant_id_idempotency_key` ON `export_jobs` (`tenant_id`, `idempotency_key`);
-- create "issuance_policies" table
CREATE TABLE `issuance_policies` (`id` text NOT NULL, `tenant_id` text NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `effect` text NOT NULL, `issuer_match` text NOT NULL DEFAULT (''), `trust_tiers` json NULL, `enabled` bool NOT NULL DEFAULT (true), `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create index "issuancepolicy_tenant_id_name" to table: "issuance_policies"
CREATE UNIQUE INDEX `issuancepolicy_tenant_id_name` ON `issuance_policies` (`tenant_id`, `name`);
-- create "issuers" table
CREATE TABLE `issuers` (`id` text NOT NULL, `tenant_id` text NOT NULL, `name` text NOT NULL, `uri` text NOT NULL DEFAULT (''), `trust_tier` text NOT NULL DEFAULT ('TIER_3'), `created_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create index "issuer_tenant_id_name" to table: "issuers"
CREATE UNIQUE INDEX `issuer_tenant_id_name` ON `issuers` (`tenant_id`, `name`);
-- create "maintenance_leases" table
CREATE TABLE `maintenance_leases` (`id` text NOT NULL, `owner` text NOT NULL DEFAULT (''), `lease_until` datetime NOT NULL, PRIMARY KEY (`id`));
-- create "principals" table
CREATE TABLE `principals` (`id` text NOT NULL, `tenant_id` text NOT NULL, `kind` text NOT NULL DEFAULT ('user'), `name` text NOT NULL, `created_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create index "principal_tenant_id_name" to table: "principals"
CREATE UNIQUE INDEX `principal_tenant_id_name` ON `principals` (`tenant_id`, `name`);
-- create "signing_keys" table
CREATE TABLE `signing_keys` (`id` text NOT NULL, `public_key` blob NOT NULL, `private_key` blob NULL, `active` bool NOT NULL DEFAULT (false), `created_at` datetime NOT NULL, `retired_at` datetime NULL, PRIMARY KEY (`id`));
-- create "tenants" table
CREATE TABLE `tenants` (`id` text NOT NULL, `name` text NOT NULL, `sandbox` bool NOT NULL DEFAULT (false), `compliance_pack` bool NOT NULL DEFAULT (false), `audit_retention_days` integer NOT NULL DEFAULT (365), `download_window_days` integer NOT NULL DEFAULT (7), `gdpr_profile` json NULL, `hipaa_profile` json NULL, `event_seq` integer NOT NULL DEFAULT (0), `chain_head` text NOT NULL DEFAULT (''), `chain_base_seq` integer NOT NULL DEFAULT (0), `chain_base_hash` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create "webhooks" table
CREATE TABLE `webhooks` (`id` text NOT NULL, `tenant_id` text NOT NULL, `url` text NOT NULL, `description` text NOT NULL DEFAULT (''), `events` json NULL, `enabled` bool NOT NULL DEFAULT (true), `secret` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create index "webhook_tenant_id_created_at" to table: "webhooks"
CREATE INDEX `webhook_tenant_id_created_at` ON `webhooks` (`tenant_id`, `created_at`);
-- create "webhook_deliveries" table
CREATE TABLE `webhook_deliveries` (`id` text NOT NULL, `tenant_id` text NOT NULL, `endpoint_id` text NOT NULL, `job_id` text NOT NULL, `event` text NOT NULL, `payload` blob NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `lease_owner` text NOT NULL DEFAULT (''), `lease_until` datetime NULL, `last_status_code` integer NOT NULL DEFAULT (0), `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `delivered_at` datetime NULL, PRIMARY KEY (`id`));
-- create index "webhookdelivery_endpoint_id_job_id_event" to table: "webhook_deliveries"
CREATE UNIQUE INDEX `webhookdelivery_endpoint_id_job_id_event` ON `webhook_deliveries` (`endpoint_id`, `job_id`, `event`);
-- create index "webhookdelivery_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_status_next_attempt_at` ON `webhook_deliveries` (`status`, `next_attempt_at`);
-- create index "webhookdelivery_tenant_id_created_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_tenant_id_created_at` ON `webhook_deliveries` (`tenant_id`, `created_at`);

-- +goose Down
-- reverse: create index "webhookdelivery_tenant_id_created_at" to table: "webhook_deliveries"
DROP INDEX `webhookdelivery_tenant_id_created_at`;
-- reverse: create index "webhookdelivery_status_next_attempt_at" to table: "webhook_deliveries"
DROP INDEX `webhookdelivery_status_next_attempt_at`;
-- reverse: create index "webhookdelivery_endpoint_id_job_id_event" to table: "webhook_deliveries"
DROP INDEX `webhookdelivery_endpoint_id_job_id_event`;
-- reverse: create "webhook_deliveries" table
DROP TABLE `webhook_deliveries`;
-- reverse: create index "webhook_tenant_id_created_at" to table: "webhooks"
DROP INDEX `webhook_tenant_id_created_at`;
-- reverse: create "webhooks" table
DROP TABLE `webhooks`;
-- reverse: create "tenants" table
DROP TABLE `tenants`;
-- reverse: create "signing_keys" table
DROP TABLE `signing_keys`;
-- reverse: create index "principal_tenant_id_name" to table: "principals"
DROP INDEX `principal_tenant_id_name`;
-- reverse: create "principals" table
DROP TABLE `principals`;
-- reverse: create "maintenance_leases" table
DROP TABLE `maintenance_leases`;
-- reverse: create index "issuer_tenant_id_name" to table: "issuers"
DROP INDEX `issuer_tenant_id_name`;
-- reverse: create "issuers" table
DROP TABLE `issuers`;
-- reverse: create index "issuancepolicy_tenant_id_name" to table: "issuance_policies"
DROP INDEX `issuancepolicy_tenant_id_name`;
-- reverse: create "issuance_policies" table
DROP TABLE `issuance_policies`;
-- reverse: create index "exportjob_tenant_id_idempotency_key" to table: "export_jobs"
DROP INDEX `exportjob_tenant_id_idempotency_key`;
-- reverse: create index "exportjob_status_created_at" to table: "export_jobs"
DROP INDEX `exportjob_status_created_at`;
-- reverse: create index "exportjob_tenant_id_created_at" to table: "export_jobs"
DROP INDEX `exportjob_tenant_id_created_at`;
-- reverse: create "export_jobs" table
DROP TABLE `export_jobs`;
-- reverse: create index "downloadrecord_tenant_id_job_id_created_at" to table: "download_records"
DROP INDEX `downloadrecord_tenant_id_job_id_created_at`;
-- reverse: create "download_records" table
DROP TABLE `download_records`;
-- reverse: create index "downloadlink_tenant_id_job_id" to table: "download_links"
DROP INDEX `downloadlink_tenant_id_job_id`;
-- reverse: create index "download_links_token_hash_key" to table: "download_links"
DROP INDEX `download_links_token_hash_key`;
-- reverse: create "download_links" table
DROP TABLE `download_links`;
-- reverse: create index "chainrepair_tenant_id_sequence" to table: "chain_repairs"
DROP INDEX `chainrepair_tenant_id_sequence`;
-- reverse: create "chain_repairs" table
DROP TABLE `chain_repairs`;
-- reverse: create index "casbinrule_tenant_id" to table: "casbin_rules"
DROP INDEX `casbinrule_tenant_id`;
-- reverse: create index "casbinrule_ptype_v0_v1_v2_v3_v4_v5" to table: "casbin_rules"
DROP INDEX `casbinrule_ptype_v0_v1_v2_v3_v4_v5`;
-- reverse: create "casbin_rules" table
DROP TABLE `casbin_rules`;
-- reverse: create "authz_versions" table
DROP TABLE `authz_versions`;
-- reverse: create index "auditevent_tenant_id_occurred_at_sequence" to table: "audit_events"
DROP INDEX `auditevent_tenant_id_occurred_at_sequence`;
-- reverse: create index "auditevent_tenant_id_client_event_id" to table: "audit_events"
DROP INDEX `auditevent_tenant_id_client_event_id`;
-- reverse: create index "auditevent_tenant_id_sequence" to table: "audit_events"
DROP INDEX `auditevent_tenant_id_sequence`;
-- reverse: create "audit_events" table
DROP TABLE `audit_events`;
-- reverse: create index "attestationrecord_tenant_id_attestation_id" to table: "attestation_records"
DROP INDEX `attestationrecord_tenant_id_attestation_id`;
-- reverse: create index "attestationrecord_tenant_id_created_at" to table: "attestation_records"
DROP INDEX `attestationrecord_tenant_id_created_at`;
-- reverse: create "attestation_records" table
DROP TABLE `attestation_records`;
-- reverse: create index "apikey_tenant_id" to table: "api_keys"
DROP INDEX `apikey_tenant_id`;
-- reverse: create "api_keys" table
DROP TABLE `api_keys`;
