-- +goose Up
-- Feature flags: Postgres is the source of truth. One row per flag holding its
-- flagd definition. Every write bumps flag_revision in the same transaction,
-- so flag writes are serialised, each flag's version is unique and only
-- grows (also across a delete and re-create), and a process that loaded the
-- flags at revision N knows exactly whether it is current.
CREATE TABLE IF NOT EXISTS flag_revision (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision bigint NOT NULL
);
INSERT INTO flag_revision (id, revision) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS flags (
    key        text PRIMARY KEY,
    definition jsonb NOT NULL,
    -- the flag_revision of the flag's last write
    version    bigint NOT NULL,
    -- the HTTP entity tag, derived from the version so the two never disagree
    etag       text GENERATED ALWAYS AS ('"' || version::text || '"') STORED,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- who wrote the current version: "<principal>/<key id>", "rollout:<id>" or "cli"
    updated_by text NOT NULL
);
-- Keyset pagination of GET /v1/flags, newest first.
CREATE INDEX IF NOT EXISTS flags_page ON flags (created_at DESC, key DESC);

-- Every change: who, when, before, after and why. Deletes keep after NULL.
CREATE TABLE IF NOT EXISTS flag_audit (
    id      bigserial PRIMARY KEY,
    key     text NOT NULL,
    version bigint NOT NULL,
    action  text NOT NULL,
    actor   text NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    before  jsonb,
    after   jsonb,
    reason  text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS flag_audit_key ON flag_audit (key, id DESC);
