package tests

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// BenchmarkOFREP measures OFREP evaluations through the API's whole handler
// stack (request id, tracing, metrics, recovery, deadline, body limit,
// authentication with its key cache, the Redis rate limiter, the OFREP
// handler), called in process so that the numbers are the server's cost
// without a network. Run it with make bench-flags.
func BenchmarkOFREP(b *testing.B) {
	s := newAPIStack(b, func(c *config.Config) {
		c.RateLimitRead = config.Rate{Limit: 100_000_000, Period: time.Minute}
		c.KeyCacheTTL = 5 * time.Second
	})
	writer := s.key("acme", "flags:write")
	reader := "Bearer " + s.key("web-app", "flags:read")
	for key, def := range ofrepFlags {
		s.putFlag(writer, key, def)
	}
	s.waitForRevision()
	handler := s.API.Handler()
	body := []byte(`{"context": {"targetingKey": "user-12345", "email": "ann@example.com", "version": "2.1.0"}}`)
	run := func(b *testing.B, path string) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", reader)
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("single-fractional", func(b *testing.B) { run(b, "/ofrep/v1/evaluate/flags/checkout") })
	b.Run("single-targeting", func(b *testing.B) { run(b, "/ofrep/v1/evaluate/flags/color") })
	b.Run("bulk-7-flags", func(b *testing.B) { run(b, "/ofrep/v1/evaluate/flags") })
}
