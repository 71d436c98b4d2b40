package idempotency

import (
	"context"
	"time"
)

// SetMaxBody lowers the stored-body cap so tests need not write a MiB.
func SetMaxBody(s *Store, n int) { s.maxBody = n }

// LockTTL exposes how long a claim stays in progress for ctx.
func LockTTL(s *Store, ctx context.Context) time.Duration { return s.lockTTL(ctx) }

// RedisKeys are the keys one script call touches for the given scope.
func RedisKeys(s *Store, principal, keyID, method, route, key string) []string {
	return s.redisKeys(scope{principal: principal, keyID: keyID, method: method, route: route, key: key})
}
