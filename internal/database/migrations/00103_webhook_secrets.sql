-- +goose Up
-- Standard Webhooks signing secrets, one current secret per principal
-- (expires_at NULL); a rotated-out secret stays valid until expires_at.
-- Kept in clear: signing needs the secret itself, not a hash.
CREATE TABLE IF NOT EXISTS webhook_secrets (
    principal  text NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_secrets_current ON webhook_secrets (principal) WHERE expires_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_secrets_principal ON webhook_secrets (principal, created_at DESC);
