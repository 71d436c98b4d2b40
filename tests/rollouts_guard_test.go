package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// guardQueries are Prometheus guard queries for flag-labelled metrics.
func guardQueries() map[string]any {
	return map[string]any{
		"error_rate_query": `sum(errors{flag="{{flag}}",variant="{{variant}}"})`,
		"latency_query":    `max(p95{flag="{{flag}}",variant="{{variant}}"})`,
	}
}

// TestRolloutPrometheusGuard_ServerIsConfigurationOnly: a rollout names
// queries only; the server is PLATFORM_PROMETHEUS_URL, and without one a
// Prometheus guard is refused.
func TestRolloutPrometheusGuard_ServerIsConfigurationOnly(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.PrometheusURL = "http://127.0.0.1:9" })
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "menu", boolFlagDef("off"))
	p := guardQueries()
	p["url"] = "http://169.254.169.254/latest/meta-data/#"
	withURL := s.do("POST", "/v1/rollouts", map[string]any{"flag": "menu", "variant": "on", "steps": steps(10, 60, 100, 60),
		"guard": map[string]any{"source": "prometheus", "prometheus": p}}, bearer(admin)...)
	if got := problemPointers(t, withURL); len(got) != 1 || got[0] != "#/guard/prometheus/url" {
		t.Errorf("pointers %v, want #/guard/prometheus/url", got)
	}

	none := newAPIStack(t)
	admin = none.key("acme", "flags:write", "rollouts:write")
	none.putFlag(admin, "menu", boolFlagDef("off"))
	r := none.do("POST", "/v1/rollouts", map[string]any{"flag": "menu", "variant": "on", "steps": steps(10, 60, 100, 60),
		"guard": map[string]any{"source": "prometheus", "prometheus": guardQueries()}}, bearer(admin)...)
	if got := problemPointers(t, r); len(got) != 1 || got[0] != "#/guard/source" || !strings.Contains(string(r.Body), "no Prometheus") {
		t.Errorf("without a configured server: pointers %v, %s", got, r.Body)
	}
}

// TestRolloutPrometheusGuard_HidesWhatTheServerSaid: redirects are not
// followed, and neither their target nor an error body reaches the
// rollout's checks; the notes say a category.
func TestRolloutPrometheusGuard_HidesWhatTheServerSaid(t *testing.T) {
	const secret = "SECRET-body-91c2"
	const target = "/redirect-target"
	var followed atomic.Bool
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		switch {
		case r.URL.Path != "/api/v1/query":
			followed.Store(true)
		case strings.Contains(q, `flag="redirect"`):
			http.Redirect(w, r, target, http.StatusFound)
		case strings.Contains(q, `flag="failing"`):
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"unavailable","error":"`+secret+`"}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"`+secret+`"}`)
		}
	}))
	defer prom.Close()
	s := newStack(t, func(c *config.Config) { c.PrometheusURL = prom.URL })
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	for flag, note := range map[string]string{
		"redirect": "observation failed: prometheus: http_status_3xx",
		"failing":  "observation failed: prometheus: http_status_5xx",
		"refused":  "treatment_error_rate: prometheus refused the query (bad_data)",
	} {
		t.Run(flag, func(t *testing.T) {
			s.putFlag(admin, flag, boolFlagDef("off"))
			id := s.startRollout(t, admin, map[string]any{"flag": flag, "variant": "on", "steps": steps(10, 60, 100, 60),
				"guard": map[string]any{"source": "prometheus", "interval_seconds": 1, "prometheus": guardQueries()}})
			var body string
			eventually(t, 20*time.Second, "a check of rollout "+id, func() bool {
				r := s.do("GET", "/v1/rollouts/"+id, nil, bearer(admin)...)
				body = string(r.Body)
				return strings.Contains(body, `"notes"`)
			})
			for _, leak := range []string{secret, "redirect-target", prom.URL[len("http://"):]} {
				if strings.Contains(body, leak) {
					t.Errorf("GET /v1/rollouts/%s shows %q: %s", id, leak, body)
				}
			}
			if !strings.Contains(body, note) {
				t.Errorf("notes do not say %q: %s", note, body)
			}
		})
	}
	if followed.Load() {
		t.Error("the worker followed a redirect")
	}
}
