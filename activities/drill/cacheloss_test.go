package drill

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/platform/workflows/drill"
)

func TestSummarise_CountsClassesDuplicatesAndPhases(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	g := &loadGen{samples: []sample{
		{at: at(0), latency: 2 * time.Millisecond, status: 200, key: -1},
		{at: at(0.1), latency: 3 * time.Millisecond, status: 201, key: 0, jobID: "job_a"},
		{at: at(5), latency: 50 * time.Millisecond, status: 201, key: 0, jobID: "job_a"},
		{at: at(5.1), latency: 60 * time.Millisecond, status: 503, key: -1},
		{at: at(5.2), latency: 0, status: 0, key: 1},
		{at: at(6), latency: 4 * time.Millisecond, status: 201, key: 1, jobID: "job_b"},
		{at: at(6.1), latency: 5 * time.Millisecond, status: 201, key: 1, jobID: "job_c"},
		{at: at(6.2), latency: 5 * time.Millisecond, status: 429, key: 2},
		{at: at(6.3), key: 2, skipped: true},
	}}
	res := drill.CacheLossResult{FaultStartedAt: at(5), FaultEndedAt: at(5.05), LimitingBackSeconds: 0.5}
	g.summarise(&res)
	if res.Requests != 8 || res.Skipped != 1 || res.Errors5xx != 1 || res.TransportErrors != 1 || res.Duplicates != 1 || res.IdempotencyKeys != 2 {
		t.Errorf("result = %+v", res)
	}
	if res.Statuses["2xx"] != 5 || res.Statuses["5xx"] != 1 || res.Statuses["429"] != 1 || res.Statuses["transport"] != 1 {
		t.Errorf("statuses = %v", res.Statuses)
	}
	if res.Latency["p99_ms_before"] != 3 || res.Latency["p50_ms_during"] != 50 || res.Latency["p99_ms_during"] != 60 || res.Latency["p99_ms_after"] != 5 {
		t.Errorf("latency = %v", res.Latency)
	}
}

func TestPercentile_NearestRank(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	if p50, p99 := percentile(ds, 50), percentile(ds, 99); p50 != 50 || p99 != 99 {
		t.Errorf("p50 %v p99 %v", p50, p99)
	}
	if percentile(nil, 99) != 0 {
		t.Error("empty")
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`t:a*b?[c]\`); got != `t:a\*b\?\[c\]\\` {
		t.Errorf("globEscape = %q", got)
	}
}

// TestLoadGen_SendsReadsAndReplayedWrites runs the load against a fake API
// and checks the mix: reads, writes with keys of the pool sent more than
// once, the bearer key on every request.
func TestLoadGen_SendsReadsAndReplayedWrites(t *testing.T) {
	var reads, writes, unauth atomic.Int32
	keys := make(chan string, 1000)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer plk_test" {
			unauth.Add(1)
		}
		if r.Method == http.MethodGet {
			reads.Add(1)
			return
		}
		writes.Add(1)
		keys <- r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"job_` + r.Header.Get("Idempotency-Key") + `"}`))
	}))
	defer api.Close()
	g := newLoadGen(api.URL, "plk_test", "drl_t", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	g.run(ctx)
	close(keys)
	seen := map[string]int{}
	for k := range keys {
		seen[k]++
	}
	var res drill.CacheLossResult
	g.summarise(&res)
	if reads.Load() < 10 || writes.Load() < 10 || unauth.Load() != 0 || len(seen) > idempotencyPool || res.Duplicates != 0 {
		t.Errorf("reads %d writes %d unauthenticated %d keys %v result %+v", reads.Load(), writes.Load(), unauth.Load(), seen, res)
	}
	for k, n := range seen {
		if n < 2 {
			t.Errorf("key %s sent %d times", k, n)
		}
	}
}
