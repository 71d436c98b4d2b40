package tests

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPing_WorkflowWritesRowAndKey(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("ops", "jobs:read"))
	res := s.do(http.MethodPost, "/v1/ping", map[string]string{"message": "hello"}, auth...)
	if res.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/ping = %d %s", res.Status, res.Body)
	}
	var started struct{ ID, WorkflowID string }
	res.JSON(t, &started)
	if !strings.HasPrefix(started.ID, "png_") || res.Header.Get("Location") != "/v1/ping/"+started.ID {
		t.Fatalf("started = %+v, Location %q", started, res.Header.Get("Location"))
	}
	var view struct {
		Status                 string
		RowWritten, KeyWritten bool `json:"-"`
		Row                    bool `json:"row_written"`
		Key                    bool `json:"key_written"`
		Message                string
	}
	eventually(t, 20*time.Second, "the ping workflow to complete", func() bool {
		s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, auth...).JSON(t, &view)
		return view.Status == "completed"
	})
	if !view.Row || !view.Key || view.Message != "hello" {
		t.Errorf("view = %+v", view)
	}
	var message string
	if err := s.DB.QueryRow(t.Context(), `SELECT message FROM pings WHERE id = $1`, started.ID).Scan(&message); err != nil || message != "hello" {
		t.Errorf("row: %q, %v", message, err)
	}
	if v, err := s.Redis.Get(t.Context(), s.Keys.Key("ping", started.ID)).Result(); err != nil || v != "hello" {
		t.Errorf("redis key: %q, %v", v, err)
	}
}

func TestOps_ReadyHealthAndMetrics(t *testing.T) {
	s := newStack(t)
	if res := s.do(http.MethodGet, "/healthz", nil); res.Status != 200 {
		t.Errorf("healthz = %d", res.Status)
	}
	res := s.do(http.MethodGet, "/readyz", nil)
	if res.Status != 200 {
		t.Fatalf("readyz = %d %s", res.Status, res.Body)
	}
	// /metrics is on the ops listener only (PLATFORM_OPS_ADDR).
	if res := s.do(http.MethodGet, "/metrics", nil); res.Status != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", res.Status)
	}
	rec := httptest.NewRecorder()
	s.API.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", `http_requests_total{class="none",method="GET",route="/readyz",status="200"}`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestOps_ReadyzNamesWhatFailed(t *testing.T) {
	s := newStack(t)
	_ = s.APIRedis.Close() // Redis "down" for this server only
	res := s.do(http.MethodGet, "/readyz", nil)
	if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz = %d (Retry-After %q)", res.Status, res.Header.Get("Retry-After"))
	}
	body := res.Map(t)
	checks, _ := body["checks"].(map[string]any)
	if checks["redis"] == "ok" || checks["postgres"] != "ok" || !strings.Contains(body["detail"].(string), "redis") {
		t.Errorf("body = %s", res.Body)
	}
}
