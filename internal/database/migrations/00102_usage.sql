-- +goose Up
-- One row per API request, appended in batches by the API.
CREATE TABLE IF NOT EXISTS usage_events (
    at         timestamptz NOT NULL,
    principal  text NOT NULL,
    route      text NOT NULL,
    status     smallint NOT NULL,
    latency_ms double precision NOT NULL
);
-- Roll-ups read whole hours; BRIN suits an append-only, time-ordered table.
CREATE INDEX IF NOT EXISTS usage_events_at ON usage_events USING brin (at);

-- Hourly aggregates per principal and route, written by the
-- analytics.rollup job with upserts, so re-running a range changes nothing.
CREATE TABLE IF NOT EXISTS usage_hourly (
    hour          timestamptz NOT NULL,
    principal     text NOT NULL,
    route         text NOT NULL,
    count         bigint NOT NULL,
    errors        bigint NOT NULL,
    client_errors bigint NOT NULL,
    p50_ms        double precision NOT NULL,
    p95_ms        double precision NOT NULL,
    PRIMARY KEY (hour, principal, route)
);
CREATE INDEX IF NOT EXISTS usage_hourly_principal ON usage_hourly (principal, hour DESC, route DESC);
