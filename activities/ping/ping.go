// Package ping holds the ping workflow's side effect: a row and a Redis key.
package ping

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/workflows/ping"
)

// Activities writes the ping workflow's proof: a row and a key.
type Activities struct {
	DB    *pgxpool.Pool
	Redis goredis.UniversalClient
	Keys  redis.Keys
}

const upsertPing = `
INSERT INTO pings (id, message, workflow_id, run_id, principal)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET message = EXCLUDED.message, run_id = EXCLUDED.run_id, principal = EXCLUDED.principal
RETURNING created_at`

// Record upserts the ping row, with its owner, and sets its Redis key; both
// are keyed by the ping id, so a retry rewrites the same values.
func (a *Activities) Record(ctx context.Context, in ping.RecordInput) (ping.RecordResult, error) {
	var at time.Time
	if err := a.DB.QueryRow(ctx, upsertPing, in.ID, in.Message, in.WorkflowID, in.RunID, in.Principal).Scan(&at); err != nil {
		return ping.RecordResult{}, fmt.Errorf("record ping %s: %w", in.ID, err)
	}
	key := a.Keys.Key("ping", in.ID)
	if err := a.Redis.Set(ctx, key, in.Message, 24*time.Hour).Err(); err != nil {
		return ping.RecordResult{}, fmt.Errorf("set ping key %s: %w", key, err)
	}
	return ping.RecordResult{RedisKey: key, At: at.UTC()}, nil
}
