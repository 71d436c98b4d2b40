package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/internal/testenv"
)

// BenchmarkAPIKeysGet measures GET /v1/keys/{id} through the whole middleware
// stack (request id, tracing, metrics, recovery, deadline, auth, Redis rate
// limit) against a bare handler running the same Postgres query, in one run,
// at 32 concurrent connections. Run it with make bench-api.
func BenchmarkAPIKeysGet(b *testing.B) {
	const conns = 32
	duration := benchDuration()
	tp, exported := benchTracing(b)
	db, dbURL := testenv.Postgres(b)
	var traced trace.TracerProvider // nil unless exporting: no typed nil
	if tp != nil {
		traced = tp
	}
	s := newAPIStackTraced(b, db, dbURL, traced, func(c *config.Config) {
		c.RateLimitRead = config.Rate{Limit: 1_000_000, Period: time.Minute}
	})
	s.startWorker()
	secret := s.key("bench", "admin")
	var created struct{ ID string }
	res := s.do("POST", "/v1/keys", map[string]any{"name": "target", "scopes": []string{"jobs:read"}}, bearer(secret)...)
	if err := json.Unmarshal(res.Body, &created); err != nil || created.ID == "" {
		b.Fatalf("create target key: %d %s", res.Status, res.Body)
	}
	store := &keys.Store{DB: s.DB}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := store.Get(r.Context(), created.ID)
		if err != nil {
			http.Error(w, "error", 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(k)
	}))
	defer bare.Close()

	// Rounds alternate between the two servers and the medians are kept, so
	// a change in machine load during the run hits both sides alike. Five
	// rather than three: on two shared cores one round of either side can
	// be 20% off its neighbours.
	const rounds = 5
	b.ResetTimer()
	var fulls, bases []loadResult
	for round := range rounds {
		if round%2 == 0 {
			fulls = append(fulls, load(b, s.URL+"/v1/keys/"+created.ID, secret, conns, duration))
			bases = append(bases, load(b, bare.URL, "", conns, duration))
		} else {
			bases = append(bases, load(b, bare.URL, "", conns, duration))
			fulls = append(fulls, load(b, s.URL+"/v1/keys/"+created.ID, secret, conns, duration))
		}
	}
	b.StopTimer()
	full, base := median(fulls), median(bases)
	ratio := full.rps / base.rps
	b.ReportMetric(full.rps, "full_req/s")
	b.ReportMetric(base.rps, "bare_req/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(full.p50.Microseconds()), "full_p50_us")
	b.ReportMetric(float64(full.p99.Microseconds()), "full_p99_us")
	b.ReportMetric(float64(base.p50.Microseconds()), "bare_p50_us")
	b.ReportMetric(float64(base.p99.Microseconds()), "bare_p99_us")
	fmt.Printf("\nGET /v1/keys/{id}, %d connections, %d alternating rounds of %s, medians:\n", conns, rounds, duration)
	fmt.Printf("  full stack  %8.0f req/s  p50 %7s  p99 %7s  (%d errors)\n", full.rps, full.p50, full.p99, full.errors)
	fmt.Printf("  bare query  %8.0f req/s  p50 %7s  p99 %7s  (%d errors)\n", base.rps, base.p50, base.p99, base.errors)
	fmt.Printf("  ratio full/bare throughput: %.2f (goal >= 0.60)\n", ratio)
	if tp != nil {
		_ = tp.ForceFlush(b.Context())
		fmt.Printf("  spans exported (OTLP/HTTP, ratio 1): %d requests, %d bytes\n", exported.requests.Load(), exported.bytes.Load())
	}
	fmt.Println()
}

// otlpSink counts what an OTLP/HTTP exporter sends it.
type otlpSink struct{ requests, bytes atomic.Int64 }

// benchTracing returns, when PLATFORM_BENCH_TRACE_EXPORT=1, the process's
// tracing as the platform builds it from OTEL_* (ratio 1, batched OTLP/HTTP
// export) pointed at a receiver in the test that reads and counts every
// export; else nil (the stack's default, nothing exported).
func benchTracing(b *testing.B) (*sdktrace.TracerProvider, *otlpSink) {
	if os.Getenv("PLATFORM_BENCH_TRACE_EXPORT") != "1" {
		return nil, nil
	}
	sink := &otlpSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		sink.requests.Add(1)
		sink.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	b.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	tr, err := telemetry.NewTracing(b.Context(), 1)
	if err != nil || !tr.Exporting {
		b.Fatalf("tracing: exporting %v, %v", tr != nil && tr.Exporting, err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr.Provider, sink
}

// median returns the round with the median throughput.
func median(rs []loadResult) loadResult {
	slices.SortFunc(rs, func(a, b loadResult) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

func benchDuration() time.Duration {
	if testing.Short() {
		return time.Second
	}
	return 4 * time.Second
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// load sends GETs to url from conns workers for d (after a short warm-up)
// and returns the throughput and latency percentiles of the 200s.
func load(b *testing.B, url, secret string, conns int, d time.Duration) loadResult {
	b.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	run := func(d time.Duration) ([]time.Duration, int) {
		var mu sync.Mutex
		var all []time.Duration
		errs := 0
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat, e := loadWorker(client, url, secret, deadline)
				mu.Lock()
				all, errs = append(all, lat...), errs+e
				mu.Unlock()
			}()
		}
		wg.Wait()
		return all, errs
	}
	run(d / 5) // warm up connections, caches and the statement cache
	lat, errs := run(d)
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatalf("no successful requests to %s", url)
	}
	return loadResult{rps: float64(len(lat)) / d.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], errors: errs}
}

func loadWorker(client *http.Client, url, secret string, deadline time.Time) ([]time.Duration, int) {
	var lat []time.Duration
	errs := 0
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			errs++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			errs++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, errs
}
