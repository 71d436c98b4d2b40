package tests

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/config"
)

// newDrillAPIStack starts the API, points cache_loss drills at it (its
// address is known only once it listens) and starts the worker.
func newDrillAPIStack(t *testing.T) *stack {
	t.Helper()
	s := newAPIStack(t)
	s.cfg.DrillAPIURL = s.URL
	s.startWorker()
	return s
}

// TestDrills_CacheLossUnderLoadIsMet empties the platform's Redis half-way
// through the drill's own load: no 5xx, no duplicate job from a replayed
// Idempotency-Key, limiting back in Redis, and the drill's key revoked.
func TestDrills_CacheLossUnderLoadIsMet(t *testing.T) {
	s := newDrillAPIStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	d := s.startDrill(t, map[string]any{"scenario": "cache_loss", "objectives": map[string]any{"rto_seconds": 5},
		"params": map[string]any{"mode": "flush", "duration_seconds": 6, "rate_per_second": 20}}, ops...)
	d = s.waitDrill(t, d.ID, 90*time.Second, ops...)
	m := d.Measurements
	t.Logf("measurements: %v", m)
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" {
		t.Fatalf("drill = %s %v %v, timeline %+v, measurements %v", d.Status, d.Verdict, d.Reasons, d.Timeline, m)
	}
	if m["errors_5xx"] != 0 || m["duplicates"] != 0 || m["requests"] <= 50 || m["idempotency_keys"] < 1 || m["redis_keys_deleted"] < 1 {
		t.Errorf("measurements = %v", m)
	}
	if _, ok := m["limiting_back_seconds"]; !ok || m["rto_seconds"] != m["limiting_back_seconds"] {
		t.Errorf("limiting back not measured: %v", m)
	}
	var live int
	err := s.DB.QueryRow(context.Background(), `
SELECT count(*) FROM api_keys WHERE principal = 'system' AND name LIKE 'cache_loss drill %' AND revoked_at IS NULL`).Scan(&live)
	if err != nil || live != 0 {
		t.Errorf("drill keys left unrevoked: %d (%v)", live, err)
	}
	var jobs int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE principal = 'system'`).Scan(&jobs); err != nil ||
		jobs < 1 || float64(jobs) > m["idempotency_keys"] {
		t.Errorf("jobs of the drill = %d (%v), idempotency keys %v", jobs, err, m["idempotency_keys"])
	}
}

// privateRedis starts a redis-server of the test's own on a free loopback
// port: CLIENT PAUSE holds a whole server, and the shared one serves other
// tests.
func privateRedis(t *testing.T) (url string, rdb *goredis.Client) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Skipf("no redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url = "redis://127.0.0.1:" + port + "/0"
	opts, _ := goredis.ParseURL(url)
	rdb = goredis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	eventually(t, 10*time.Second, "the private redis-server to answer", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return url, rdb
}

// TestDrills_CacheLossPauseIsMet pauses Redis's writes instead, on a
// private server: the API answers from its fallbacks, and limiting returns
// to Redis after.
func TestDrills_CacheLossPauseIsMet(t *testing.T) {
	url, rdb := privateRedis(t)
	s := newAPIStack(t, func(c *config.Config) { c.RedisURL = url })
	s.Redis = rdb // the worker's, which the drill pauses
	s.cfg.DrillAPIURL = s.URL
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	d := s.startDrill(t, map[string]any{"scenario": "cache_loss",
		"params": map[string]any{"mode": "pause", "duration_seconds": 6, "rate_per_second": 20, "pause_seconds": 2}}, ops...)
	d = s.waitDrill(t, d.ID, 90*time.Second, ops...)
	m := d.Measurements
	t.Logf("measurements: %v", m)
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" || m["errors_5xx"] != 0 || m["duplicates"] != 0 {
		t.Fatalf("drill = %s %v %v, timeline %+v, measurements %v", d.Status, d.Verdict, d.Reasons, d.Timeline, m)
	}
	if m["limiting_back_seconds"] < 2 {
		t.Errorf("limiting back after %v s, before the 2 s pause ended", m["limiting_back_seconds"])
	}
}

// TestDrills_CacheLossAbortLiftsThePause aborts a drill while Redis is
// paused: the activity's compensation lifts the pause long before it would
// have ended and revokes the drill's key; the drill ends aborted.
func TestDrills_CacheLossAbortLiftsThePause(t *testing.T) {
	url, rdb := privateRedis(t)
	s := newAPIStack(t, func(c *config.Config) { c.RedisURL = url })
	s.Redis = rdb
	s.cfg.DrillAPIURL = s.URL
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	d := s.startDrill(t, map[string]any{"scenario": "cache_loss",
		"params": map[string]any{"mode": "pause", "duration_seconds": 45, "rate_per_second": 5, "pause_seconds": 20}}, ops...)
	writable := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		return rdb.Set(ctx, "pause-probe", "1", time.Minute).Err() == nil
	}
	eventually(t, 60*time.Second, "the pause to begin", func() bool { return !writable() })
	if a := s.do(http.MethodPost, "/v1/drills/"+d.ID+"/abort", map[string]any{"reason": "test"}, ops...); a.Status != 202 {
		t.Fatalf("abort = %d %s", a.Status, a.Body)
	}
	aborted := time.Now()
	eventually(t, 15*time.Second, "the pause to be lifted", writable)
	t.Logf("pause lifted %s after the abort", time.Since(aborted))
	d = s.waitDrill(t, d.ID, 30*time.Second, ops...)
	if d.Status != "aborted" || d.step("cache_loss") != "aborted" {
		t.Fatalf("drill = %+v", d)
	}
	var live int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE principal = 'system' AND revoked_at IS NULL`).Scan(&live); err != nil || live != 0 {
		t.Errorf("drill keys left unrevoked: %d (%v)", live, err)
	}
}

// TestDrills_CacheLossRefusesBadParams: the API's 400 points into params,
// and the target URL is not a parameter.
func TestDrills_CacheLossRefusesBadParams(t *testing.T) {
	s := newAPIStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	r := s.do(http.MethodPost, "/v1/drills", map[string]any{"scenario": "cache_loss",
		"params": map[string]any{"rate_per_second": 1000, "api_url": "http://169.254.169.254/"}}, ops...)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("POST = %d %s", r.Status, r.Body)
	}
	var p struct {
		Errors []struct{ Pointer string } `json:"errors"`
	}
	r.JSON(t, &p)
	if len(p.Errors) != 1 || p.Errors[0].Pointer != "#/params/api_url" {
		t.Errorf("errors = %+v", p.Errors)
	}
}
