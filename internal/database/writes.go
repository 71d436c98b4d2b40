package database

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// WritePositions keeps each principal's last write position (a WAL LSN)
// for a while, shared by every API process.
type WritePositions interface {
	// Last is principal's last remembered position, 0 when none.
	Last(ctx context.Context, principal string) (uint64, error)
	// Remember raises principal's position to lsn, kept for ttl.
	Remember(ctx context.Context, principal string, lsn uint64, ttl time.Duration) error
}

// RedisWrites keeps write positions in Redis, one key per principal under
// Prefix (which ends in a separator), each expiring after its TTL: the
// number of keys is bounded by the principals that wrote within one TTL.
type RedisWrites struct {
	Client goredis.Cmdable
	Prefix string
}

// raise keeps the larger of the stored and the new position: positions are
// fixed-width hex, so string order is numeric order, and one key keeps the
// script on one slot of a cluster.
var raise = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or ARGV[1] > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`)

func (w RedisWrites) key(principal string) string { return w.Prefix + "ryw:" + principal }

// Last implements WritePositions.
func (w RedisWrites) Last(ctx context.Context, principal string) (uint64, error) {
	v, err := w.Client.Get(ctx, w.key(principal)).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read write position: %w", err)
	}
	n, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("read write position %q: %w", v, err)
	}
	return n, nil
}

// Remember implements WritePositions.
func (w RedisWrites) Remember(ctx context.Context, principal string, lsn uint64, ttl time.Duration) error {
	err := raise.Run(ctx, w.Client, []string{w.key(principal)}, fmt.Sprintf("%016x", lsn), ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("record write position: %w", err)
	}
	return nil
}
