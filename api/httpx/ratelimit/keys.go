package ratelimit

import (
	"context"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
)

// redisRatePrefix is what redis_rate puts in front of every key it is given.
const redisRatePrefix = "rate:"

// prefixedKeys is the client redis_rate talks to. It removes the "rate:"
// that redis_rate prepends to our keys, so that they live under the
// configured prefix like every other key of the platform: tests and
// deployments sharing a server stay apart, and the prefix's cleanup finds them.
type prefixedKeys struct {
	goredis.UniversalClient
	keys redis.Keys
}

func (c prefixedKeys) strip(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		if rest, ok := strings.CutPrefix(k, redisRatePrefix); ok && strings.HasPrefix(rest, string(c.keys)) {
			k = rest
		}
		out[i] = k
	}
	return out
}

func (c prefixedKeys) Eval(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return c.UniversalClient.Eval(ctx, script, c.strip(keys), args...)
}

func (c prefixedKeys) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return c.UniversalClient.EvalSha(ctx, sha1, c.strip(keys), args...)
}

func (c prefixedKeys) EvalRO(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return c.UniversalClient.EvalRO(ctx, script, c.strip(keys), args...)
}

func (c prefixedKeys) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return c.UniversalClient.EvalShaRO(ctx, sha1, c.strip(keys), args...)
}

func (c prefixedKeys) Del(ctx context.Context, keys ...string) *goredis.IntCmd {
	return c.UniversalClient.Del(ctx, c.strip(keys)...)
}
