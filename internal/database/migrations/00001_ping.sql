-- +goose Up
-- Rows written by the platform.ping workflow, proving API -> Temporal -> worker -> Postgres.
CREATE TABLE IF NOT EXISTS pings (
    id          text PRIMARY KEY,
    message     text NOT NULL,
    workflow_id text NOT NULL,
    run_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
