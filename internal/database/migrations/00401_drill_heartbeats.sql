-- +goose Up
-- Heartbeat writes of failover drills: the drill writes one row per
-- interval through the platform's read-write pool while it fences the
-- primary and promotes the standby, then looks for every acknowledged row
-- on the new primary (RPO). Rows are evidence of one drill and small.
CREATE TABLE IF NOT EXISTS drill_heartbeats (
    drill_id text NOT NULL,
    seq      bigint NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (drill_id, seq)
);

-- +goose Down
DROP TABLE IF EXISTS drill_heartbeats;
