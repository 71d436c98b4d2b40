// Package activities holds the platform's side effects: each activity is a
// method on a struct holding its dependencies, idempotent so Temporal may
// retry it.
package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/workflows"
)

// Ping writes the ping workflow's proof: a row and a key.
type Ping struct {
	DB    *pgxpool.Pool
	Redis *goredis.Client
	Keys  redis.Keys
}

const upsertPing = `
INSERT INTO pings (id, message, workflow_id, run_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET message = EXCLUDED.message, run_id = EXCLUDED.run_id
RETURNING created_at`

// Record upserts the ping row and sets its Redis key; both are keyed by the
// ping id, so a retry rewrites the same values.
func (a *Ping) Record(ctx context.Context, in workflows.RecordPingInput) (workflows.RecordPingResult, error) {
	var at time.Time
	if err := a.DB.QueryRow(ctx, upsertPing, in.ID, in.Message, in.WorkflowID, in.RunID).Scan(&at); err != nil {
		return workflows.RecordPingResult{}, fmt.Errorf("record ping %s: %w", in.ID, err)
	}
	key := a.Keys.Key("ping", in.ID)
	if err := a.Redis.Set(ctx, key, in.Message, 24*time.Hour).Err(); err != nil {
		return workflows.RecordPingResult{}, fmt.Errorf("set ping key %s: %w", key, err)
	}
	return workflows.RecordPingResult{RedisKey: key, At: at.UTC()}, nil
}
