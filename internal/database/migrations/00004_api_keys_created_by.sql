-- +goose Up
-- Revoking a key revokes the keys it minted, down the created_by chain
-- (security review L4); each step of that walk looks keys up by creator.
CREATE INDEX IF NOT EXISTS api_keys_created_by ON api_keys (created_by) WHERE created_by IS NOT NULL;
