-- +goose Up
-- API keys: only the SHA-256 of the secret is kept. Each key belongs to a
-- principal (a tenant) and carries scopes.
CREATE TABLE IF NOT EXISTS api_keys (
    id           text PRIMARY KEY,
    principal    text NOT NULL,
    name         text NOT NULL,
    scopes       text[] NOT NULL,
    hash         bytea NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_hash ON api_keys (hash);
-- Keyset pagination, newest first, for admins (all) and per principal.
CREATE INDEX IF NOT EXISTS api_keys_page ON api_keys (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS api_keys_principal_page ON api_keys (principal, created_at DESC, id DESC);
