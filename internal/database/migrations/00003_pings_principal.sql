-- +goose Up
-- A ping belongs to the principal that started it (security review L3).
-- Pings from before this column have no owner: '' is nobody's name, so
-- only admin keys see them.
ALTER TABLE pings ADD COLUMN IF NOT EXISTS principal text NOT NULL DEFAULT '';
