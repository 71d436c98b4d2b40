package idempotency

import (
	"context"
	"time"
)

// SetMaxBody lowers the stored-body cap so tests need not write a MiB.
func SetMaxBody(s *Store, n int) { s.maxBody = n }

// LockTTL exposes how long a claim stays in progress for ctx.
func LockTTL(s *Store, ctx context.Context) time.Duration { return s.lockTTL(ctx) }
