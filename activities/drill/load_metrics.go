package drill

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acme/platform/drills/invariants"
)

// Metrics the experiments read from the API's /metrics.
const (
	metricCPU        = "process_cpu_seconds_total"
	metricRSS        = "process_resident_memory_bytes"
	metricGoroutines = "go_goroutines"
	metricHeap       = "go_memstats_heap_inuse_bytes"
	metricPoolWaits  = "platform_db_pool_empty_acquire_total"
	metricShed       = "platform_http_shed_total"
)

// scrape reads url's Prometheus text exposition and sums each metric's
// samples by name. An unset url or an unreachable one is an empty map: the
// resources are then reported as not measured, never an experiment error.
func scrape(ctx context.Context, url string) map[string]float64 {
	out := map[string]float64{}
	if url == "" {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseMetrics sums the samples of each metric name in a text exposition.
func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// resources are the API's resources between two scrapes seconds apart.
func resources(before, after map[string]float64, seconds float64) map[string]float64 {
	out := map[string]float64{}
	if len(after) == 0 {
		return out
	}
	if seconds > 0 {
		out["cpu_seconds_per_second"] = (after[metricCPU] - before[metricCPU]) / seconds
	}
	out["rss_bytes"] = after[metricRSS]
	out["goroutines"] = after[metricGoroutines]
	out["heap_bytes"] = after[metricHeap]
	out["pool_acquire_waits"] = after[metricPoolWaits] - before[metricPoolWaits]
	out["shed"] = after[metricShed] - before[metricShed]
	return out
}

func resourcesOf(m map[string]float64) invariants.Resources {
	return invariants.Resources{Goroutines: m[metricGoroutines], HeapBytes: m[metricHeap]}
}
