package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/temporal"

	rolloutacts "github.com/acme/platform/activities/rollout"
	"github.com/acme/platform/flags/guard"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/rollout"
)

// demoService is a scrape target that serves two cohorts of flag "search"
// all the time: the treatment ("on") fails 20% of its requests and takes
// 200 ms, the control ("off") never fails and takes 100 ms.
func demoService(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "demo_requests_total", Help: "requests"}, []string{"flag", "variant"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "demo_errors_total", Help: "failed requests"}, []string{"flag", "variant"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "demo_latency_seconds", Help: "latency",
		Buckets: []float64{.05, .1, .15, .2, .25, .5}}, []string{"flag", "variant"})
	reg.MustRegister(requests, failures, latency)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for i := range 10 {
				requests.WithLabelValues("search", "on").Inc()
				requests.WithLabelValues("search", "off").Inc()
				latency.WithLabelValues("search", "on").Observe(0.2)
				latency.WithLabelValues("search", "off").Observe(0.1)
				if i < 2 {
					failures.WithLabelValues("search", "on").Inc()
				}
			}
			failures.WithLabelValues("search", "off").Add(0) // the series exists, at 0
			time.Sleep(20 * time.Millisecond)
		}
	}()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return strings.TrimPrefix(srv.URL, "http://")
}

// startPrometheus runs a real Prometheus on a free port with its own
// configuration and data directory, scraping target every 250 ms, and
// returns its URL once it has scraped a few times. rules are rule files it
// loads and evaluates every 250 ms too.
func startPrometheus(t *testing.T, target string, rules ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian: apt-get install prometheus); the Prometheus guard source is tested against a real one")
	}
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n  evaluation_interval: 250ms\n"+
		"rule_files: %s\nscrape_configs:\n"+
		"  - job_name: demo\n    static_configs:\n      - targets: [%q]\n", yamlList(rules), target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	query := base + "/api/v1/query?" + neturl.Values{"query": {`count_over_time(up{job="demo"}[10s]) >= 8`}}.Encode()
	eventually(t, 30*time.Second, "prometheus to have scraped the demo service for 2s", func() bool {
		resp, err := http.Get(query)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var answer struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		return json.NewDecoder(resp.Body).Decode(&answer) == nil && len(answer.Data.Result) == 1
	})
	return base
}

// yamlList is a flow-style YAML list of quoted strings.
func yamlList(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// demoGuard reads the demo service's cohorts. The server is not the
// guard's: the worker has it from PLATFORM_PROMETHEUS_URL.
func demoGuard() *rollout.PrometheusGuard {
	return &rollout.PrometheusGuard{
		ErrorRateQuery: `sum(increase(demo_errors_total{flag="{{flag}}",variant="{{variant}}"}[{{window}}])) / sum(increase(demo_requests_total{flag="{{flag}}",variant="{{variant}}"}[{{window}}]))`,
		LatencyQuery:   `1000 * histogram_quantile(0.95, sum by (le) (rate(demo_latency_seconds_bucket{flag="{{flag}}",variant="{{variant}}"}[{{window}}])))`,
		SamplesQuery:   `sum(increase(demo_requests_total{flag="{{flag}}",variant="{{variant}}"}[{{window}}]))`,
	}
}

// TestPrometheusGuard runs the Prometheus guard source against a real
// Prometheus: the observe activity alone, then a whole rollout. One server
// serves both, since a fresh Prometheus scrapes nothing for its first ~5s
// (target discovery is throttled).
func TestPrometheusGuard(t *testing.T) {
	url := startPrometheus(t, demoService(t))
	t.Run("ObservesBothCohorts", func(t *testing.T) { observeBothCohorts(t, url) })
	t.Run("RollsBackARegression", func(t *testing.T) { rollBackOnPrometheus(t, url) })
}

// observeBothCohorts runs the observe activity.
func observeBothCohorts(t *testing.T, url string) {
	db, _ := testenv.Postgres(t)
	ctx := context.Background()
	rec, _, err := (&store.Store{DB: db}).Put(ctx, "search", mustFlag(t, boolFlagDef("off")), store.Cond{}, store.Change{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := rolloutacts.New(db, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.PrometheusURL = url
	g := rollout.GuardInput{Source: rollout.GuardSourcePrometheus, Prometheus: demoGuard()}.Effective()
	g.MinSamples = 20
	in := rollout.ObserveInput{ID: "rol_test", Flag: "search", Variant: "on", Control: "off", Percent: 50,
		Since: time.Now().Add(-2 * time.Second), Guard: g, FlagVersion: rec.Version}
	res, err := a.Observe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	o := res.Observation
	rate := float64(o.Treatment.Errors) / float64(o.Treatment.Samples)
	if o.Treatment.Samples < 100 || rate < 0.15 || rate > 0.25 || o.Control.Samples < 100 || o.Control.Errors != 0 {
		t.Errorf("cohorts %+v (treatment error rate %.3f), want about 20%% and 0%%", o, rate)
	}
	if o.Treatment.P95LatencyMs < 150 || o.Treatment.P95LatencyMs > 200 || o.Control.P95LatencyMs < 50 || o.Control.P95LatencyMs > 100 {
		t.Errorf("p95 latencies %.1f and %.1f ms, want about 200 and 100", o.Treatment.P95LatencyMs, o.Control.P95LatencyMs)
	}
	q := res.Evidence.Queries["treatment_error_rate"]
	if !strings.Contains(q, `variant="on"`) || !strings.Contains(q, "[2s]") && !strings.Contains(q, "[3s]") || len(res.Evidence.Values) != 6 {
		t.Errorf("evidence %+v", res.Evidence)
	}
	if c := guard.Judge(g.Guard, o); c.Verdict != guard.Fail {
		t.Errorf("verdict %s %v, want fail", c.Verdict, c.Reasons)
	}

	// No data is no samples (inconclusive), and an unreachable Prometheus an
	// error the activity retries.
	none := in
	none.Guard.Prometheus = &rollout.PrometheusGuard{ErrorRateQuery: `sum(nothing_total{v="{{variant}}"})`, LatencyQuery: `vector(1)`}
	if res, err := a.Observe(ctx, none); err != nil || res.Observation.Treatment.Samples != 0 || len(res.Evidence.Notes) == 0 {
		t.Errorf("no data: %+v %v", res, err)
	}
	a.PrometheusURL = "http://" + freeAddr(t)
	var app *temporal.ApplicationError
	if _, err := a.Observe(ctx, in); !errors.As(err, &app) || app.Type() != rollout.ErrTypeObserveFailed || app.Message() != "prometheus: unreachable" {
		t.Errorf("an unreachable Prometheus: %v, want %s prometheus: unreachable", err, rollout.ErrTypeObserveFailed)
	}
}

// rollBackOnPrometheus runs a rollout whose guard reads Prometheus.
func rollBackOnPrometheus(t *testing.T, url string) {
	s := newStack(t, func(c *config.Config) { c.PrometheusURL = url })
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "search", boolFlagDef("off"))
	p := demoGuard()
	id := s.startRollout(t, admin, map[string]any{"flag": "search", "variant": "on", "steps": steps(50, 20, 100, 2),
		"guard": map[string]any{"source": "prometheus", "interval_seconds": 2, "min_samples": 20, "prometheus": map[string]any{
			"error_rate_query": p.ErrorRateQuery, "latency_query": p.LatencyQuery, "samples_query": p.SamplesQuery}}})
	v := s.waitForStatus(t, admin, id, "rolled_back", 20*time.Second)
	if v.Evidence == nil || v.Evidence.Evidence == nil || v.Evidence.Evidence.Source != "prometheus" ||
		!strings.Contains(v.Evidence.Evidence.Queries["control_error_rate"], `variant="off"`) {
		t.Errorf("evidence %+v", v.Evidence)
	}
	if def, _, _ := s.flagDefinition(t, "search"); def["targeting"] != nil || def["defaultVariant"] != "off" {
		t.Errorf("flag not back to control: %v", def)
	}
}
