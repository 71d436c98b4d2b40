-- +goose Up
-- Cumulative latency counts per hour, principal and route: latency_le[i]
-- counts the requests answered within slo.LatencyBuckets[i] seconds (the
-- API histogram's bounds), so GET /v1/slos computes latency SLIs from the
-- roll-ups as Prometheus does from the histogram. Rows rolled up before this
-- column existed keep an empty array: no latency data, not "all slow".
ALTER TABLE usage_hourly ADD COLUMN IF NOT EXISTS latency_le bigint[] NOT NULL DEFAULT '{}';
