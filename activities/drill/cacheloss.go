package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/workflows/drill"
)

// CacheLossPrincipal owns the drill's short-lived key and the jobs its
// writes create. It is the platform's reserved "system" principal, which no
// API-made key may carry, so the drill never acts as a tenant.
const CacheLossPrincipal = "system"

// keyGrace is how long the drill's key outlives the load: it expires by
// itself even if the revocation below never runs (a lost worker).
const keyGrace = 2 * time.Minute

// CacheLoss mints a short-lived key, sends load to the platform's API,
// empties or pauses the platform's Redis half-way through and reports what
// the load saw. Its clean-up runs in defers, whatever happens: the key is
// revoked and a pause is lifted. The key's secret lives only in this
// activity's memory.
func (a *Activities) CacheLoss(ctx context.Context, in drill.CacheLossInput) (drill.CacheLossResult, error) {
	p := in.Params
	if p.Mode == drill.CacheLossFlush && a.Config.RedisPrefix == "" {
		return drill.CacheLossResult{}, temporal.NewNonRetryableApplicationError(
			"mode flush needs PLATFORM_REDIS_PREFIX: without a prefix it would empty the whole Redis database", "BadInput", nil)
	}
	load := time.Duration(p.DurationSeconds) * time.Second
	keyID, secret, err := a.mintKey(ctx, "cache_loss drill "+in.DrillID, []string{"jobs:read", "jobs:write"}, load+keyGrace)
	if err != nil {
		return drill.CacheLossResult{}, err
	}
	defer a.revokeDrillKey(ctx, keyID)
	defer keepAlive(ctx)()

	g := newLoadGen(a.Config.DrillAPIURL, secret, in.DrillID, p.RatePerSecond)
	f := &fault{rdb: a.Redis, keys: redis.Keys(a.Config.RedisPrefix), mode: p.Mode, pause: time.Duration(p.PauseSeconds) * time.Second}
	defer f.lift(ctx)

	loadCtx, stop := context.WithTimeout(ctx, load)
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); g.run(loadCtx) }()

	res := drill.CacheLossResult{LimitingBackSeconds: -1}
	faultErr := f.inject(loadCtx, load/2, &res)
	if faultErr == nil {
		res.LimitingBackSeconds = f.watchLimiter(loadCtx, res.FaultStartedAt)
	}
	<-done
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if faultErr != nil {
		return res, fmt.Errorf("inject the fault: %w", faultErr)
	}
	g.summarise(&res)
	return res, nil
}

// revokeDrillKey revokes the key at once; it runs after the activity's
// context may have ended. API processes that cached the key stop accepting
// it within their key-cache TTL, and it expires soon after anyway.
func (a *Activities) revokeDrillKey(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := a.DB.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id); err != nil {
		a.Log.Error("cache_loss drill: could not revoke its API key; it expires by itself", "key_id", id, "error", err)
	}
}

func clipName(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}

// fault is the cache loss: a flush of the platform's keys or a pause of
// the Redis server's writes.
type fault struct {
	rdb    goredis.UniversalClient
	keys   redis.Keys
	mode   string
	pause  time.Duration
	paused bool
}

// inject waits for after, then empties or pauses Redis, and records when.
func (f *fault) inject(ctx context.Context, after time.Duration, res *drill.CacheLossResult) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(after):
	}
	res.FaultStartedAt = time.Now().UTC()
	var err error
	switch f.mode {
	case drill.CacheLossPause:
		err = f.rdb.Do(ctx, "CLIENT", "PAUSE", f.pause.Milliseconds(), "WRITE").Err()
		f.paused = err == nil
		if err == nil {
			select {
			case <-ctx.Done():
			case <-time.After(f.pause):
			}
			f.lift(ctx)
		}
	default:
		res.KeysDeleted, err = f.flush(ctx)
	}
	res.FaultEndedAt = time.Now().UTC()
	return err
}

// flush deletes every key under the platform's prefix, in batches, and
// nothing else on the server.
func (f *fault) flush(ctx context.Context) (int64, error) {
	var deleted int64
	iter := f.rdb.Scan(ctx, 0, globEscape(string(f.keys))+"*", 1000).Iterator()
	batch := make([]string, 0, 500)
	drop := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := f.rdb.Unlink(ctx, batch...).Result()
		deleted += n
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := drop(); err != nil {
				return deleted, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return deleted, err
	}
	return deleted, drop()
}

// lift ends a pause early (the drill was cancelled) or confirms its end.
func (f *fault) lift(ctx context.Context) {
	if !f.paused {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := f.rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err == nil {
		f.paused = false
	}
}

// limiterKeys are the rate limiter's Redis keys of the drill's principal
// (see api/httpx/ratelimit: prefix, "ratelimit", policy, subject).
func (f *fault) limiterKeys() []string {
	return []string{f.keys.Key("ratelimit", "read", CacheLossPrincipal), f.keys.Key("ratelimit", "write", CacheLossPrincipal)}
}

// watchLimiter measures when Redis-backed limiting is back: once the fault
// has ended, it deletes the limiter's keys of the drill's principal (a
// flush already did), and limiting is back when the API writes one of them
// again, which it does only when it decided a request from Redis. It
// returns seconds since start, or -1 if that was not seen before ctx ends.
func (f *fault) watchLimiter(ctx context.Context, start time.Time) float64 {
	keys := f.limiterKeys()
	if err := f.rdb.Del(ctx, keys...).Err(); err != nil {
		return -1
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := f.rdb.Exists(ctx, keys...).Result()
		if err == nil && n > 0 {
			return seconds(time.Since(start))
		}
		select {
		case <-ctx.Done():
			return -1
		case <-t.C:
		}
	}
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// globEscape escapes SCAN MATCH's pattern characters in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
