package tests

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// TestBenchScaling (make bench-scaling) drains the same burst of slow
// webhook jobs twice in one run: with one fixed worker process (two slots),
// and with a pool under the autoscaler (min 1, max 4, local driver), each on
// a stack of its own. It prints both drain times and their ratio; the goal
// is the autoscaled pool at most half the fixed time. It is a measurement,
// not an assertion.
func TestBenchScaling(t *testing.T) {
	if os.Getenv("PLATFORM_BENCH_SCALING") == "" {
		t.Skip("set PLATFORM_BENCH_SCALING=1 (make bench-scaling)")
	}
	n := 60
	if v, err := strconv.Atoi(os.Getenv("PLATFORM_BENCH_SCALING_N")); err == nil && v > 0 {
		n = v
	}
	drain := func(t *testing.T, autoscale bool) time.Duration {
		dir := t.TempDir()
		s := newAPIStack(t, func(c *config.Config) { c.ScalingLocalDir = dir })
		s.workerPool(t, dir, 1)
		auth := bearer(s.key("ops", "scaling:write", "scaling:read", "jobs:write", "jobs:read"))
		eventually(t, 60*time.Second, "the first worker", func() bool { _, r := workerCount(t, dir); return r == 1 })
		if autoscale {
			policy := map[string]any{"driver": "local", "min_replicas": 1, "max_replicas": 4, "interval_seconds": 2,
				"signals": map[string]any{"backlog_per_replica": 2}, "scale_down": map[string]any{"stabilization_seconds": 30}}
			if r := s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, auth...); r.Status != 201 {
				t.Fatalf("put: %d %s", r.Status, r.Body)
			}
		}
		rc := slowReceiver(t, time.Second)
		start := time.Now()
		jobs := s.burst(t, rc, n, auth...)
		s.exactlyOnce(t, rc, jobs, auth...)
		return time.Since(start)
	}
	var fixed, auto time.Duration
	t.Run("fixed", func(t *testing.T) { fixed = drain(t, false) })
	t.Run("autoscaled", func(t *testing.T) { auto = drain(t, true) })
	fmt.Printf("bench-scaling: %d jobs of 1 s, 2 slots per worker\n  fixed 1 worker: %s\n  autoscaled 1..4: %s\n  ratio autoscaled/fixed: %.2f\n",
		n, fixed.Round(time.Millisecond), auto.Round(time.Millisecond), auto.Seconds()/fixed.Seconds())
}
