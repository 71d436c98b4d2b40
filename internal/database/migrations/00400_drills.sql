-- +goose Up
-- Disaster-recovery drills. A drill's row is written only by its
-- workflow's record activity: a whole-row upsert keyed by the drill id
-- (which is the workflow id), applied only when it is not older than what
-- the row holds (seq orders the writes of one run).
CREATE TABLE IF NOT EXISTS drills (
    id           text PRIMARY KEY,
    principal    text NOT NULL,
    scenario     text NOT NULL,
    status       text NOT NULL,
    verdict      text NOT NULL DEFAULT '',
    reasons      jsonb NOT NULL DEFAULT '[]',
    objectives   jsonb NOT NULL DEFAULT '{}',
    -- rto_seconds, rpo_seconds and the scenario's own numbers
    measurements jsonb NOT NULL DEFAULT '{}',
    -- the steps: name, status, start, end, detail
    timeline     jsonb NOT NULL DEFAULT '[]',
    backup_id    text NOT NULL DEFAULT '',
    workflow_id  text NOT NULL,
    run_id       text NOT NULL,
    seq          bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at   timestamptz,
    finished_at  timestamptz
);
-- Keyset pagination, newest first: admins (all principals) and one
-- principal; the scenario and status filters.
CREATE INDEX IF NOT EXISTS drills_page ON drills (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS drills_principal_page ON drills (principal, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS drills_scenario_status ON drills (scenario, status);
