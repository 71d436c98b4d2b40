-- +goose Up
-- Background jobs. A job's row is written only by its workflow's activities
-- (idempotent upserts keyed by the job id, which is also the workflow id).
CREATE TABLE IF NOT EXISTS jobs (
    id          text PRIMARY KEY,
    principal   text NOT NULL,
    type        text NOT NULL,
    status      text NOT NULL,
    input       jsonb NOT NULL,
    retry       jsonb NOT NULL,
    result      jsonb,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  jsonb,
    workflow_id text NOT NULL,
    run_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at  timestamptz,
    finished_at timestamptz
);
-- Keyset pagination, newest first: admins (all principals) and one principal,
-- each unfiltered, by status and by type.
CREATE INDEX IF NOT EXISTS jobs_page ON jobs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_status_page ON jobs (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_type_page ON jobs (type, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_principal_page ON jobs (principal, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_principal_status_page ON jobs (principal, status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_principal_type_page ON jobs (principal, type, created_at DESC, id DESC);

-- One row per attempt, written when the attempt ends; webhook attempts keep
-- the receiver's status, the latency and the start of its body.
CREATE TABLE IF NOT EXISTS job_attempts (
    job_id          text NOT NULL REFERENCES jobs (id),
    attempt         integer NOT NULL,
    status          text NOT NULL,
    error           text,
    retryable       boolean NOT NULL DEFAULT false,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    response_status integer,
    latency_ms      double precision,
    response_body   text,
    body_truncated  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, attempt)
);
