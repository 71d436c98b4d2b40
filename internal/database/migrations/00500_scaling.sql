-- +goose Up
-- Scaling: one policy per target (platform-wide, written by the API like
-- flags), the controller's decisions (one row per interval, written by its
-- record activity) and scaling actions (one row per action, written by the
-- action workflow's activities).
CREATE TABLE IF NOT EXISTS scaling_policies (
    target     text PRIMARY KEY,
    policy     jsonb NOT NULL,
    version    bigint NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS scaling_decisions (
    id         text PRIMARY KEY,
    target     text NOT NULL,
    created_at timestamptz NOT NULL,
    decision   jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS scaling_decisions_target_page ON scaling_decisions (target, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS scaling_decisions_page ON scaling_decisions (created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS scaling_actions (
    id         text PRIMARY KEY,
    target     text NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    action     jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS scaling_actions_page ON scaling_actions (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS scaling_actions_target_page ON scaling_actions (target, created_at DESC, id DESC);

-- +goose Down
DROP TABLE IF EXISTS scaling_actions;
DROP TABLE IF EXISTS scaling_decisions;
DROP TABLE IF EXISTS scaling_policies;
