-- +goose Up
-- create index "exportjob_tenant_id_status_lease_until" to table: "export_jobs"
CREATE INDEX `exportjob_tenant_id_status_lease_until` ON `export_jobs` (`tenant_id`, `status`, `lease_until`);

-- +goose Down
-- reverse: create index "exportjob_tenant_id_status_lease_until" to table: "export_jobs"
DROP INDEX `exportjob_tenant_id_status_lease_until`;
