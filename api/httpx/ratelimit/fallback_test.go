package ratelimit

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/testenv"
)

const (
	switchedLine   = "redis unavailable; using in-process limits"
	recoveredLine  = "redis is back; using redis again"
	fallbackMetric = "ratelimit_fallback_total"
)

// TestMain silences go-redis's own logging: these tests break connections on
// purpose, and the pool's dial errors would bury the test output.
func TestMain(m *testing.M) {
	goredis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestLimiter_RedisUnreachableFallsBackToInProcessLimits(t *testing.T) {
	// Nothing listens on port 1: every connection is refused.
	dead, err := redis.Open("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Close() })
	_, keys := testenv.Redis(t)
	f := newFixture(t, dead, keys)
	f.l.health.cooldown = 0 // ask the dead Redis on every request: still one log line
	f.l.timeout = 100 * time.Millisecond

	var rs []result
	for range 4 {
		res, rec := serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
		if res.Status >= 500 {
			t.Fatalf("status %d: %s", res.Status, rec.Body)
		}
		if len(rs) == 3 {
			checkLimited(t, res, rec, wantPolicy("write", 3), 20)
			break
		}
		if diff := cmp.Diff(wantPolicy("write", 3), res.Policy); diff != "" {
			t.Errorf("RateLimit-Policy (-want +got):\n%s", diff)
		}
		rs = append(rs, res)
	}
	if diff := cmp.Diff([]int{2, 1, 0}, remaining(t, rs, 20)); diff != "" {
		t.Errorf("r from the fallback (-want +got):\n%s", diff)
	}
	// Each subject has its own bucket in the fallback too.
	got := statuses(t, f.l.Principal,
		request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"),
		request(http.MethodPost, "/v1/jobs", "beta", "192.0.2.1"),
		request(http.MethodGet, "/v1/public", "", "192.0.2.9"),
	)
	if diff := cmp.Diff([]int{200, 200, 200}, got); diff != "" {
		t.Errorf("other quotas in the fallback (-want +got):\n%s", diff)
	}
	if n := f.log.count(switchedLine); n != 1 {
		t.Errorf("%q logged %d times, want once", switchedLine, n)
	}
	if diff := cmp.Diff(map[string]float64{"": 1}, metricValues(t, f.reg, fallbackMetric)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", fallbackMetric, diff)
	}
}

func TestLimiter_SkipsRedisDuringTheCooldown(t *testing.T) {
	rdb, keys, outage := flakyRedis(t)
	calls := &commandCounter{}
	rdb.AddHook(calls)
	f := newFixture(t, rdb, keys)
	f.l.health.cooldown = time.Hour
	f.l.timeout = 100 * time.Millisecond
	outage.Store(true)
	serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
	before := calls.Load()
	for range 10 {
		serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("%d Redis commands during the cool-down, want none", n)
	}
}

// commandCounter counts the commands a client is asked to run.
type commandCounter struct{ atomic.Int64 }

func (c *commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func TestLimiter_RedisOutageMidTestSwitchesOnceAndRecovers(t *testing.T) {
	rdb, keys, outage := flakyRedis(t)
	f := newFixture(t, rdb, keys)
	f.l.health.cooldown = 50 * time.Millisecond
	f.l.timeout = 100 * time.Millisecond
	get := func() result {
		res, rec := serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
		if res.Status != http.StatusOK || res.RateLimit.Name != "read" {
			t.Fatalf("status %d, RateLimit %+v: %s", res.Status, res.RateLimit, rec.Body)
		}
		return res
	}

	get() // Redis: r=4
	outage.Store(true)
	for range 3 {
		get() // the fallback starts its own bucket
	}
	time.Sleep(60 * time.Millisecond)
	get() // a probe after the cool-down fails again: no second log line
	if n := f.log.count(switchedLine); n != 1 {
		t.Errorf("%q logged %d times during the outage, want once", switchedLine, n)
	}
	if diff := cmp.Diff(map[string]float64{"": 1}, metricValues(t, f.reg, "ratelimit_fallback_active")); diff != "" {
		t.Errorf("ratelimit_fallback_active during the outage (-want +got):\n%s", diff)
	}

	outage.Store(false)
	time.Sleep(60 * time.Millisecond)
	res := get()
	get()
	if r := res.RateLimit.Params["r"]; r != 3 {
		t.Errorf("first answer after recovery r=%d, want 3 (Redis's bucket, charged once before the outage)", r)
	}
	if n := f.log.count(recoveredLine); n != 1 {
		t.Errorf("%q logged %d times, want once", recoveredLine, n)
	}
	if diff := cmp.Diff(map[string]float64{"": 1}, metricValues(t, f.reg, fallbackMetric)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", fallbackMetric, diff)
	}
}

func TestLimiter_CanceledRequestDoesNotMarkRedisDown(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	r := request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1")
	ctx, cancel := context.WithCancel(r.Context())
	cancel()
	if res, _ := serve(t, f.l.Principal, r.WithContext(ctx)); res.Status >= 500 {
		t.Fatalf("status %d", res.Status)
	}
	if f.log.count(switchedLine) != 0 || !f.l.health.tryRedis(time.Now()) {
		t.Error("a canceled request switched the limiter to its fallback")
	}
}

// outage makes a real Redis connection fail on demand.
type outage struct{ atomic.Bool }

var errOutage = errors.New("test outage: connection refused")

// flakyRedis returns a client of the test Redis whose connections fail while
// the returned outage is set, as they would if the server went away.
func flakyRedis(t *testing.T) (*goredis.Client, redis.Keys, *outage) {
	t.Helper()
	_, keys := testenv.Redis(t)
	o := &outage{}
	opts, err := goredis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = 500*time.Millisecond, 500*time.Millisecond, 1
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o.Load() {
			return nil, errOutage
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return flakyConn{Conn: c, o: o}, nil
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, keys, o
}

type flakyConn struct {
	net.Conn
	o *outage
}

func (c flakyConn) Read(p []byte) (int, error) {
	if c.o.Load() {
		return 0, errOutage
	}
	return c.Conn.Read(p)
}

func (c flakyConn) Write(p []byte) (int, error) {
	if c.o.Load() {
		return 0, errOutage
	}
	return c.Conn.Write(p)
}

func TestLimiter_ClientClosedMidTestFallsBackWithout500(t *testing.T) {
	_, keys := testenv.Redis(t)
	rdb, err := redis.Open(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, rdb, keys)
	before, _ := serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
	_ = rdb.Close()
	var got []int
	for range 6 {
		res, rec := serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
		if res.RateLimit.Name != "read" || res.Policy.Name != "read" {
			t.Errorf("status %d without RateLimit fields: %s", res.Status, rec.Body)
		}
		got = append(got, res.Status)
	}
	// The fallback knows nothing of Redis's state: it starts a full bucket.
	if diff := cmp.Diff([]int{200, 200, 200, 200, 200, 429}, got); diff != "" {
		t.Errorf("statuses after close (-want +got):\n%s", diff)
	}
	if before.Status != 200 || f.log.count(switchedLine) != 1 {
		t.Errorf("before close %d; %q logged %d times, want once", before.Status, switchedLine, f.log.count(switchedLine))
	}
}
