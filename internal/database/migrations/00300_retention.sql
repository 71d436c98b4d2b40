-- +goose NO TRANSACTION
-- +goose Up
-- The hourly platform.retention workflow deletes rows older than their
-- table's retention, in batches chosen by these time columns
-- (usage_events already has a BRIN index on at). Built concurrently so that
-- writes go on while a large table is indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS uploads_created_at ON uploads (created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS rollout_events_at ON rollout_events (at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS rollout_checks_at ON rollout_checks (at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS flag_audit_at ON flag_audit (at);
