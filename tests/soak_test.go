package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/acme/platform/internal/testenv"
)

// TestSoak is `make soak`: steady load (SOAK_RATE requests/s, default
// 1000, for SOAK_DURATION, default 10m) of GET /v1/jobs/{id} and
// GET /v1/jobs?limit=20 against a separate "platform api" process, with
// its RSS and goroutines printed at the start, the middle and the end
// (goal: RSS under 150 MiB at 1 k req/s, no growth). It fails when more
// than 0.1 % of the requests got no answer or a 5xx. Skipped unless
// PLATFORM_SOAK=1: it is load, not a unit test.
func TestSoak(t *testing.T) {
	if os.Getenv("PLATFORM_SOAK") != "1" {
		t.Skip("set PLATFORM_SOAK=1 (make soak)")
	}
	duration, rate := soakSettings(t)
	s := newAPIStack(t)
	secret := s.key("acme", "jobs:read", "jobs:write")
	job := s.createJob(t, webhookJob("http://127.0.0.1:9/", map[string]any{"n": 1}, nil), bearer(secret)...)
	base, metrics := startAPIProcess(t, s, s.DBURL, testenv.RedisURL())

	header := http.Header{"Authorization": {"Bearer " + secret}}
	targets := []vegeta.Target{
		{Method: http.MethodGet, URL: base + "/v1/jobs/" + job.ID, Header: header},
		{Method: http.MethodGet, URL: base + "/v1/jobs?limit=20", Header: header},
	}
	atk := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Connections(64), vegeta.MaxWorkers(256), vegeta.Timeout(10*time.Second))
	printResources(t, "start", metrics)
	var total, bad int
	var lat vegeta.Metrics
	mid := time.Now().Add(duration / 2)
	midDone := false
	for r := range atk.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, duration, "soak") {
		total++
		if r.Code == 0 || r.Code >= 500 {
			bad++
		}
		lat.Add(r)
		if !midDone && time.Now().After(mid) {
			midDone = true
			go printResources(t, "middle", metrics)
		}
	}
	lat.Close()
	printResources(t, "end", metrics)
	fmt.Printf("soak: %d requests in %s (%.0f/s offered, %.0f/s achieved), %d without answer or 5xx, p50 %s p99 %s, status codes %v\n",
		total, duration, float64(rate), lat.Rate, bad, lat.Latencies.P50, lat.Latencies.P99, lat.StatusCodes)
	if total == 0 || float64(bad)/float64(total) > 0.001 {
		t.Errorf("%d of %d requests got no answer or a 5xx", bad, total)
	}
}

func soakSettings(t *testing.T) (time.Duration, int) {
	duration, rate := 10*time.Minute, 1000
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	if v := os.Getenv("SOAK_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r <= 0 {
			t.Fatalf("SOAK_RATE=%q: want a positive integer", v)
		}
		rate = r
	}
	return duration, rate
}

// printResources prints the API process's RSS and goroutines from its
// /metrics.
func printResources(t *testing.T, when, url string) {
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("scrape %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	var rss, goroutines float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "process_resident_memory_bytes":
			rss = v
		case "go_goroutines":
			goroutines = v
		}
	}
	fmt.Printf("soak %-6s %s: API RSS %.1f MiB, goroutines %.0f\n", when, time.Now().UTC().Format("15:04:05"), rss/(1<<20), goroutines)
}
