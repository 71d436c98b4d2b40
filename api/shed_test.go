package api

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestShed_BeyondTheLimitIs503AtOnce holds two requests inside a handler
// (as a slow database would) with a limit of two: the third is answered
// 503 with Retry-After without reaching the handler, probes still pass,
// and once a slot frees the next request is served.
func TestShed_BeyondTheLimitIs503AtOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(2)
	reached := 0
	var mu sync.Mutex
	h := shed(2, reg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		if r.URL.Path == "/slow" {
			entered.Done()
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	var done sync.WaitGroup
	for range 2 {
		done.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/slow", nil)) })
	}
	entered.Wait()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("third request = %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if probe.Code != http.StatusOK {
		t.Fatalf("probe = %d", probe.Code)
	}
	close(release)
	done.Wait()
	after := httptest.NewRecorder()
	h.ServeHTTP(after, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil))
	if after.Code != http.StatusOK || reached != 4 {
		t.Fatalf("after = %d, handler reached %d times", after.Code, reached)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "platform_http_shed_total" || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("shed metrics %v, %v", mfs, err)
	}
}
