package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

// newDegradedStack starts an API whose Postgres and Redis connections go
// through an in-process Toxiproxy (proxies platform-postgres and
// platform-redis), and a worker connected directly: the faults reach the
// API, and the drill's own bookkeeping is unaffected.
func newDegradedStack(t *testing.T) (*stack, *toxiproxy.Client) {
	t.Helper()
	s, tp := newDegradedStackOn(t, false)
	s.startWorker()
	return s, tp
}

// newDegradedStackOn is newDegradedStack; with apart, the drills' load and
// /metrics scrapes go to a separate "platform api" process on the same
// proxies, so latency, goroutines and RSS are the API's alone, not those
// of a test process that also runs the load generator and the worker. It
// starts no worker.
func newDegradedStackOn(t *testing.T, apart bool) (*stack, *toxiproxy.Client) {
	t.Helper()
	adminURL, tp := testenv.Toxiproxy(t)
	direct, dbURL := testenv.Postgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = testenv.Proxy(t, tp, drill.PostgresProxy, u.Host)
	proxied, err := database.Open(context.Background(), u.String(), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxied.Close)
	ru, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	ru.Host = testenv.Proxy(t, tp, drill.RedisProxy, ru.Host)
	s := newAPIStackOn(t, proxied, u.String(), func(c *config.Config) {
		c.RedisURL = ru.String()
		c.ToxiproxyURL = adminURL
		c.RateLimitRead = config.Rate{Limit: 100000, Period: time.Minute}
		c.RateLimitWrite = config.Rate{Limit: 100000, Period: time.Minute}
	})
	s.DB = direct // the worker's
	metrics := httptest.NewServer(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	s.cfg.DrillAPIURL, s.cfg.DrillMetricsURL = s.URL, metrics.URL
	if apart {
		s.cfg.DrillAPIURL, s.cfg.DrillMetricsURL = startAPIProcess(t, s, u.String(), ru.String())
	}
	return s, tp
}

// waitDegraded waits for a drill to end, reading it through an API whose
// database may be cut meanwhile: a 503 (the degraded mode) is retried.
func (s *stack) waitDegraded(t *testing.T, id string, timeout time.Duration, auth ...string) drillJSON {
	t.Helper()
	var d drillJSON
	eventually(t, timeout, "drill "+id+" to end", func() bool {
		d = drillJSON{}
		r := s.do(http.MethodGet, "/v1/drills/"+id, nil, auth...)
		if r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "" {
			return false
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET drill = %d %s", r.Status, r.Body)
		}
		r.JSON(t, &d)
		return d.Status == "succeeded" || d.Status == "failed" || d.Status == "aborted"
	})
	return d
}

// clean fails the test if a proxy still has a toxic or is disabled.
func clean(t *testing.T, tp *toxiproxy.Client) {
	t.Helper()
	for _, name := range []string{drill.PostgresProxy, drill.RedisProxy} {
		p, err := tp.Proxy(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.ActiveToxics) != 0 || !p.Enabled {
			t.Errorf("proxy %s after the drill: toxics %v, enabled %v", name, p.ActiveToxics, p.Enabled)
		}
	}
}

// TestDrills_DegradedNeverAnswers500 runs db_degraded and cache_degraded,
// each with every fault for a short while under load: no fault makes the
// API answer 500, and every toxic is gone afterwards.
func TestDrills_DegradedNeverAnswers500(t *testing.T) {
	s, tp := newDegradedStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	for _, scenario := range []string{"db_degraded", "cache_degraded"} {
		d := s.startDrill(t, map[string]any{"scenario": scenario,
			"params": map[string]any{"fault_seconds": 2, "rate_per_second": 20}}, ops...)
		d = s.waitDegraded(t, d.ID, 3*time.Minute, ops...)
		t.Logf("%s: %s, reasons %v, timeline %+v", scenario, d.Status, d.Reasons, d.Timeline)
		m := d.Measurements
		for _, f := range drill.Faults {
			if _, ok := m[f+"_requests"]; !ok {
				t.Errorf("%s: fault %s not measured: %v", scenario, f, m)
			}
			if m[f+"_errors_500"] != 0 {
				t.Errorf("%s: %v 500s under %s", scenario, m[f+"_errors_500"], f)
			}
		}
		if last := d.Timeline[len(d.Timeline)-1]; last.Name != "remove_toxics" || last.Status != "succeeded" {
			t.Errorf("%s: last step %+v", scenario, last)
		}
		clean(t, tp)
	}
}

// TestDrills_DegradedAbortRemovesToxics aborts a db_degraded drill while its
// latency toxic is on: the drill ends aborted, the toxic is gone and the
// drill's key is revoked.
func TestDrills_DegradedAbortRemovesToxics(t *testing.T) {
	s, tp := newDegradedStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	d := s.startDrill(t, map[string]any{"scenario": "db_degraded",
		"params": map[string]any{"faults": []string{"latency", "cut"}, "fault_seconds": 60, "rate_per_second": 10}}, ops...)
	eventually(t, 30*time.Second, "the latency toxic", func() bool {
		p, err := tp.Proxy(drill.PostgresProxy)
		return err == nil && len(p.ActiveToxics) > 0
	})
	if a := s.do(http.MethodPost, "/v1/drills/"+d.ID+"/abort", map[string]any{"reason": "test"}, ops...); a.Status != 202 {
		t.Fatalf("abort = %d %s", a.Status, a.Body)
	}
	d = s.waitDegraded(t, d.ID, time.Minute, ops...)
	if d.Status != "aborted" {
		t.Fatalf("drill = %s %+v", d.Status, d.Timeline)
	}
	clean(t, tp)
	var live int
	err := s.DB.QueryRow(context.Background(), `
SELECT count(*) FROM api_keys WHERE principal = 'system' AND name LIKE 'degraded drill %' AND revoked_at IS NULL`).Scan(&live)
	if err != nil || live != 0 {
		t.Errorf("drill keys left unrevoked: %d (%v)", live, err)
	}
	if !strings.Contains(d.Timeline[len(d.Timeline)-1].Name, "remove_toxics") {
		t.Errorf("timeline %+v", d.Timeline)
	}
}

// TestDrills_DegradedWorkerKilledToxicsGone kills the worker process
// (SIGKILL) while a db_degraded drill's latency toxic is on, starts a new
// worker, and finds the drill ended with every toxic gone: the load's
// heartbeats stop, Temporal times the activity out and the new worker runs
// the compensation.
func TestDrills_DegradedWorkerKilledToxicsGone(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a heartbeat timeout")
	}
	s, tp := newDegradedStackOn(t, false)
	worker := s.startWorkerProcess(t, "PLATFORM_DATABASE_URL="+s.DB.Config().ConnString(), "PLATFORM_WORKER_OPS_ADDR=127.0.0.1:0",
		"PLATFORM_TOXIPROXY_URL="+s.cfg.ToxiproxyURL,
		"PLATFORM_DRILL_API_URL="+s.cfg.DrillAPIURL, "PLATFORM_DRILL_METRICS_URL="+s.cfg.DrillMetricsURL)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	d := s.startDrill(t, map[string]any{"scenario": "db_degraded",
		"params": map[string]any{"faults": []string{"latency"}, "fault_seconds": 120, "rate_per_second": 10}}, ops...)
	eventually(t, 60*time.Second, "the latency toxic", func() bool {
		p, err := tp.Proxy(drill.PostgresProxy)
		return err == nil && len(p.ActiveToxics) > 0
	})
	if err := worker.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = worker.Wait()
	s.startWorker()
	d = s.waitDegraded(t, d.ID, 3*time.Minute, ops...)
	t.Logf("after the kill: %s, reasons %v", d.Status, d.Reasons)
	if d.Status == "succeeded" {
		t.Errorf("a drill whose load died mid-fault succeeded: %+v", d.Timeline)
	}
	clean(t, tp)
}
