package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/jobs"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/worker"
	"github.com/acme/platform/workflows"
)

// TestBenchJobs compares starting webhook jobs through POST /v1/jobs (auth,
// rate limit, Idempotency-Key, Update-With-Start waiting for the job's row)
// with a raw client.ExecuteWorkflow of the same workflow and input on the
// same dev server and worker, and measures end-to-end completions per
// second for both. It prints both ratios.
//
// Two loads: closed loop, CONCURRENCY clients starting N jobs as fast as
// they can (saturation: a raw start only enqueues, while the API's start
// waits for a worker to write the row, so there the API accepts at the rate
// the platform completes jobs); and open loop, RATE starts per second for
// 10 s, a load the platform sustains, where both paths should keep pace.
//
// Run it with make bench-jobs; PLATFORM_BENCH_JOBS_N (default 400),
// PLATFORM_BENCH_JOBS_CONCURRENCY (default 32) and PLATFORM_BENCH_JOBS_RATE
// (default 25) size it, and the PLATFORM_WORKER_* variables tune the worker.
func TestBenchJobs(t *testing.T) {
	if os.Getenv("PLATFORM_BENCH_JOBS") == "" {
		t.Skip("a benchmark: run make bench-jobs (PLATFORM_BENCH_JOBS=1)")
	}
	n, conc := jobsBenchEnv("PLATFORM_BENCH_JOBS_N", 400), jobsBenchEnv("PLATFORM_BENCH_JOBS_CONCURRENCY", 32)
	s := newAPIStack(t, func(c *config.Config) {
		unlimited := config.Rate{Limit: 1_000_000, Period: time.Minute}
		c.RateLimitRead, c.RateLimitWrite, c.RateLimitAnon = unlimited, unlimited, unlimited
	})
	s.startTunedWorker(t)
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	auth := s.key("bench", "jobs:read", "jobs:write")
	api := &apiJobStarter{s: s, auth: "Bearer " + auth, url: rc.URL,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	raw := &rawJobStarter{s: s, url: rc.URL}

	// Warm every path (connections, caches, the worker's sticky cache).
	for _, start := range []func(int) (string, error){raw.start, raw.updateWithStart, api.start} {
		runJobsPhase(t, s, min(50, n), conc, start)
	}
	rawRes := runJobsPhase(t, s, n, conc, raw.start)
	uwsRes := runJobsPhase(t, s, n, conc, raw.updateWithStart)
	apiRes := runJobsPhase(t, s, n, conc, api.start)
	rate := float64(jobsBenchEnv("PLATFORM_BENCH_JOBS_RATE", 25))
	rawPaced := runJobsAtRate(t, s, rate, 10*time.Second, raw.start)
	apiPaced := runJobsAtRate(t, s, rate, 10*time.Second, api.start)

	fmt.Printf("\nbench-jobs: %d webhook jobs per path, %d concurrent clients, worker: %d workflow pollers, %d activity pollers, %d max activities\n",
		n, conc, s.cfg.WorkerWorkflowPollers, s.cfg.WorkerActivityPollers, s.cfg.WorkerMaxActivities)
	fmt.Printf("%-34s %12s %14s %14s\n", "path", "accepted/s", "completed/s", "p50 start ms")
	fmt.Printf("%-34s %12.1f %14.1f %14.1f\n", "raw client.ExecuteWorkflow", rawRes.acceptRate, rawRes.completeRate, rawRes.p50)
	fmt.Printf("%-34s %12.1f %14.1f %14.1f\n", "raw client.UpdateWithStartWorkflow", uwsRes.acceptRate, uwsRes.completeRate, uwsRes.p50)
	fmt.Printf("%-34s %12.1f %14.1f %14.1f\n", "POST /v1/jobs (Update-With-Start)", apiRes.acceptRate, apiRes.completeRate, apiRes.p50)
	fmt.Printf("ratio accepted  (API / raw ExecuteWorkflow): %.2f  (goal >= 0.80)\n", apiRes.acceptRate/rawRes.acceptRate)
	fmt.Printf("ratio completed (API / raw ExecuteWorkflow): %.2f\n", apiRes.completeRate/rawRes.completeRate)
	fmt.Printf("ratio accepted  (API / raw UpdateWithStart): %.2f  (the API's own overhead)\n", apiRes.acceptRate/uwsRes.acceptRate)
	fmt.Printf("\nopen loop: %.0f starts/s offered for 10 s\n", rate)
	fmt.Printf("%-34s %12s %14s %14s %14s\n", "path", "accepted/s", "completed/s", "p50 start ms", "p99 start ms")
	fmt.Printf("%-34s %12.1f %14.1f %14.1f %14.1f\n", "raw client.ExecuteWorkflow", rawPaced.acceptRate, rawPaced.completeRate, rawPaced.p50, rawPaced.p99)
	fmt.Printf("%-34s %12.1f %14.1f %14.1f %14.1f\n", "POST /v1/jobs (Update-With-Start)", apiPaced.acceptRate, apiPaced.completeRate, apiPaced.p50, apiPaced.p99)
	fmt.Printf("ratio accepted  (API / raw ExecuteWorkflow): %.2f\n", apiPaced.acceptRate/rawPaced.acceptRate)
	fmt.Printf("ratio completed (API / raw ExecuteWorkflow): %.2f\n\n", apiPaced.completeRate/rawPaced.completeRate)
}

func jobsBenchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startTunedWorker runs the worker with the configuration's pollers and
// concurrency (PLATFORM_WORKER_* from the environment, else the defaults).
func (s *stack) startTunedWorker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Deps{Temporal: s.Temporal, TaskQueue: s.cfg.TaskQueue, DB: s.DB,
			Redis: s.Redis, Keys: s.Keys, Log: testenv.Logger(t), DrainTimeout: 2 * time.Second,
			ActivityPollers: s.cfg.WorkerActivityPollers, WorkflowPollers: s.cfg.WorkerWorkflowPollers,
			MaxActivities: s.cfg.WorkerMaxActivities, WebhookAllowedNetworks: s.cfg.WebhookAllowedNetworks})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

type jobsPhase struct {
	acceptRate, completeRate, p50, p99 float64
}

// runJobsPhase starts n jobs from conc goroutines, then waits for every one to
// finish. Accepted/s counts until the last start returned; completed/s
// until the last job finished.
func runJobsPhase(t *testing.T, s *stack, n, conc int, start func(i int) (string, error)) jobsPhase {
	t.Helper()
	jobIDs := make([]string, n)
	latencies := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	began := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				id, err := start(i)
				if err != nil {
					failed.Store(err)
					return
				}
				jobIDs[i], latencies[i] = id, time.Since(t0)
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(began)
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitJobsDone(t, s, jobIDs)
	completed := time.Since(began)
	return jobsPhase{acceptRate: float64(n) / accepted.Seconds(), completeRate: float64(n) / completed.Seconds(),
		p50: quantileMS(latencies, 0.5), p99: quantileMS(latencies, 0.99)}
}

// runJobsAtRate offers rate starts per second for d, each in its own
// goroutine, then waits for every job to finish.
func runJobsAtRate(t *testing.T, s *stack, rate float64, d time.Duration, start func(i int) (string, error)) jobsPhase {
	t.Helper()
	n := int(rate * d.Seconds())
	jobIDs := make([]string, n)
	latencies := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	began := time.Now()
	for i := range n {
		time.Sleep(time.Until(began.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			id, err := start(i)
			if err != nil {
				failed.Store(err)
				return
			}
			jobIDs[i], latencies[i] = id, time.Since(t0)
		}()
	}
	wg.Wait()
	accepted := time.Since(began)
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitJobsDone(t, s, jobIDs)
	completed := time.Since(began)
	return jobsPhase{acceptRate: float64(n) / accepted.Seconds(), completeRate: float64(n) / completed.Seconds(),
		p50: quantileMS(latencies, 0.5), p99: quantileMS(latencies, 0.99)}
}

// waitJobsDone waits for every workflow's result.
func waitJobsDone(t *testing.T, s *stack, jobIDs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, id := range jobIDs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.Temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
				t.Errorf("job %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
}

func quantileMS(ds []time.Duration, q float64) float64 {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}

// rawJobStarter starts the webhook job workflow directly, as a client of
// Temporal that skips the API would.
type rawJobStarter struct {
	s   *stack
	url string
}

func (r *rawJobStarter) start(i int) (string, error) {
	input, _ := json.Marshal(workflows.WebhookInput{URL: r.url, Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
	id := ids.New(ids.Job)
	_, err := r.s.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: id, TaskQueue: r.s.cfg.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.WebhookJobWorkflowName, workflows.JobInput{ID: id, Principal: "bench", Type: workflows.JobTypeWebhook,
		Input: input, Retry: retry.Defaults()})
	return id, err
}

// updateWithStart starts the job as the API does, without HTTP: it returns
// once the workflow has written the job's row.
func (r *rawJobStarter) updateWithStart(i int) (string, error) {
	input, _ := json.Marshal(workflows.WebhookInput{URL: r.url, Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
	id := ids.New(ids.Job)
	starter := &jobs.Starter{Temporal: r.s.Temporal, TaskQueue: r.s.cfg.TaskQueue, Store: &jobs.Store{DB: r.s.DB}}
	_, err := starter.Start(context.Background(), workflows.JobInput{ID: id, Principal: "bench", Type: workflows.JobTypeWebhook,
		Input: input, Retry: retry.Defaults()})
	return id, err
}

// apiJobStarter starts jobs through POST /v1/jobs, each with its own
// Idempotency-Key, as a careful client would.
type apiJobStarter struct {
	s      *stack
	auth   string
	url    string
	client *http.Client
	round  atomic.Int64
}

func (a *apiJobStarter) start(i int) (string, error) {
	body, _ := json.Marshal(webhookJob(a.url, map[string]any{"i": i}, map[string]any{}))
	req, _ := http.NewRequest(http.MethodPost, a.s.URL+"/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(a.round.Add(1), 10))
	resp, err := a.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j jobJSON
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /v1/jobs = %d (%v)", resp.StatusCode, err)
	}
	return j.ID, nil
}
