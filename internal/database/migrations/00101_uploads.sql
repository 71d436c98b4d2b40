-- +goose Up
-- Uploaded files. The bytes are a Postgres large object (oid): the api and
-- the worker may run on different hosts with no shared disk, and Postgres is
-- the one store both already reach, transactionally.
CREATE TABLE IF NOT EXISTS uploads (
    id           text PRIMARY KEY,
    principal    text NOT NULL,
    oid          oid NOT NULL,
    size         bigint NOT NULL,
    sha256       text NOT NULL,
    content_type text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
