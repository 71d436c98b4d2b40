-- +goose Up
-- Guarded rollouts. A rollout's rows (rollouts, rollout_steps,
-- rollout_checks) are written only by its workflow's activities, with
-- idempotent upserts keyed by the rollout id (which is the workflow id).
CREATE TABLE IF NOT EXISTS rollouts (
    id           text PRIMARY KEY,
    principal    text NOT NULL,
    flag         text NOT NULL,
    variant      text NOT NULL,
    control      text NOT NULL DEFAULT '',
    status       text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    -- the effective steps and guard, defaults applied
    spec         jsonb NOT NULL,
    current_step integer NOT NULL DEFAULT 0,
    percent      integer NOT NULL DEFAULT 0,
    -- the flag version the rollout last wrote (its compare-and-set base)
    flag_version bigint,
    -- why it ended: the decision with the checks and queries behind it
    evidence     jsonb,
    workflow_id  text NOT NULL,
    run_id       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS rollouts_page ON rollouts (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS rollouts_principal_page ON rollouts (principal, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS rollouts_flag_page ON rollouts (flag, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS rollouts_principal_flag_page ON rollouts (principal, flag, created_at DESC, id DESC);
-- One active rollout per flag: two would overwrite each other's splits.
CREATE UNIQUE INDEX IF NOT EXISTS rollouts_one_active_per_flag ON rollouts (flag) WHERE status IN ('running', 'paused');

-- One row per step, rewritten when the step restarts after a resume.
CREATE TABLE IF NOT EXISTS rollout_steps (
    rollout_id   text NOT NULL REFERENCES rollouts (id),
    step         integer NOT NULL,
    attempt      integer NOT NULL,
    percent      integer NOT NULL,
    hold_seconds integer NOT NULL,
    flag_version bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    decision     text NOT NULL DEFAULT '',
    failures     integer NOT NULL DEFAULT 0,
    inconclusive integer NOT NULL DEFAULT 0,
    PRIMARY KEY (rollout_id, step)
);

-- Every guard check: the verdict with the numbers, and the queries behind them.
CREATE TABLE IF NOT EXISTS rollout_checks (
    rollout_id text NOT NULL REFERENCES rollouts (id),
    seq        integer NOT NULL,
    step       integer NOT NULL,
    attempt    integer NOT NULL,
    at         timestamptz NOT NULL,
    phase      text NOT NULL,
    verdict    text NOT NULL,
    decision   text NOT NULL,
    result     jsonb NOT NULL,
    evidence   jsonb NOT NULL,
    PRIMARY KEY (rollout_id, seq)
);

-- Outcome events that services report; the events guard source aggregates
-- them per cohort over a step's window.
CREATE TABLE IF NOT EXISTS rollout_events (
    id            bigserial PRIMARY KEY,
    rollout_id    text NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    targeting_key text NOT NULL,
    variant       text NOT NULL,
    error         boolean NOT NULL,
    latency_ms    double precision
);
CREATE INDEX IF NOT EXISTS rollout_events_window ON rollout_events (rollout_id, variant, at);
