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

	apijobs "github.com/acme/platform/api/jobs"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/worker"
	"github.com/acme/platform/workflows/job"
)

// TestBenchJobs compares starting webhook jobs through POST /v1/jobs (auth,
// rate limit, Idempotency-Key, usage event, then client.ExecuteWorkflow with
// the job's memo, answering without waiting for a worker) with a raw
// client.ExecuteWorkflow of the same workflow and input on the same dev
// server and worker, and measures end-to-end completions per second for
// both. It prints both ratios, and the API's start without HTTP
// (jobs.Starter) to separate Temporal's cost from the HTTP layer's.
//
// Two loads: closed loop, CONCURRENCY clients starting N jobs as fast as
// they can (saturation: every path only enqueues, so accepts measure how
// fast the dev server stores starts while the worker drains the queue); and
// open loop, RATE starts per second for 10 s, a load the platform sustains,
// where both paths should keep pace.
//
// Run it with make bench-jobs; PLATFORM_BENCH_JOBS_N (default 400),
// PLATFORM_BENCH_JOBS_CONCURRENCY (default 32), PLATFORM_BENCH_JOBS_ROUNDS
// (default 3) and PLATFORM_BENCH_JOBS_RATE (default 25) size it, and the
// PLATFORM_WORKER_* variables tune the worker.
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
	for _, start := range []func(int) (string, error){raw.start, raw.starter, api.start} {
		runJobsPhase(t, s, min(50, n), conc, start)
	}
	// A closed-loop phase accepts n jobs in about a second, so one phase per
	// path is at the mercy of a GC pause or a burst of other work on the
	// machine: the paths take turns for several rounds, in a rotating order,
	// and each path's rates are over all its rounds.
	rounds := jobsBenchEnv("PLATFORM_BENCH_JOBS_ROUNDS", 3)
	paths := []struct {
		start func(int) (string, error)
		res   jobsPhase
	}{{start: raw.start}, {start: raw.starter}, {start: api.start}}
	for r := range rounds {
		for k := range paths {
			p := &paths[(r+k)%len(paths)]
			p.res = p.res.plus(runJobsPhase(t, s, n, conc, p.start))
		}
	}
	rawRes, starterRes, apiRes := paths[0].res, paths[1].res, paths[2].res
	rate := float64(jobsBenchEnv("PLATFORM_BENCH_JOBS_RATE", 25))
	rawPaced := runJobsAtRate(t, s, rate, 10*time.Second, raw.start)
	apiPaced := runJobsAtRate(t, s, rate, 10*time.Second, api.start)

	fmt.Printf("\nbench-jobs: %d rounds of %d webhook jobs per path, %d concurrent clients, worker: %d workflow pollers, %d activity pollers, %d max activities\n",
		rounds, n, conc, s.cfg.WorkerWorkflowPollers, s.cfg.WorkerActivityPollers, s.cfg.WorkerMaxActivities)
	fmt.Printf("%-34s %12s %14s %14s %14s\n", "path", "accepted/s", "completed/s", "p50 start ms", "p99 start ms")
	for _, row := range []struct {
		name string
		res  jobsPhase
	}{{"raw client.ExecuteWorkflow", rawRes}, {"jobs.Starter (API start, no HTTP)", starterRes}, {"POST /v1/jobs", apiRes}} {
		fmt.Printf("%-34s %12.1f %14.1f %14.1f %14.1f\n", row.name, row.res.acceptRate(), row.res.completeRate(), row.res.p50(), row.res.p99())
	}
	fmt.Printf("ratio accepted  (API / raw ExecuteWorkflow): %.2f  (goal >= 0.80)\n", apiRes.acceptRate()/rawRes.acceptRate())
	fmt.Printf("ratio completed (API / raw ExecuteWorkflow): %.2f\n", apiRes.completeRate()/rawRes.completeRate())
	fmt.Printf("ratio accepted  (API / jobs.Starter):        %.2f  (the HTTP layer's cost)\n", apiRes.acceptRate()/starterRes.acceptRate())
	fmt.Printf("\nopen loop: %.0f starts/s offered for 10 s\n", rate)
	fmt.Printf("%-34s %12s %14s %14s %14s\n", "path", "accepted/s", "completed/s", "p50 start ms", "p99 start ms")
	fmt.Printf("%-34s %12.1f %14.1f %14.1f %14.1f\n", "raw client.ExecuteWorkflow", rawPaced.acceptRate(), rawPaced.completeRate(), rawPaced.p50(), rawPaced.p99())
	fmt.Printf("%-34s %12.1f %14.1f %14.1f %14.1f\n", "POST /v1/jobs", apiPaced.acceptRate(), apiPaced.completeRate(), apiPaced.p50(), apiPaced.p99())
	fmt.Printf("ratio accepted  (API / raw ExecuteWorkflow): %.2f\n", apiPaced.acceptRate()/rawPaced.acceptRate())
	fmt.Printf("ratio completed (API / raw ExecuteWorkflow): %.2f\n\n", apiPaced.completeRate()/rawPaced.completeRate())
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
			MaxActivities: s.cfg.WorkerMaxActivities, WebhookAllowedNetworks: s.cfg.WebhookAllowedNetworks,
			ControlTaskQueue: s.cfg.ControlTaskQueue, ControlMaxActivities: s.cfg.WorkerControlMaxActivities})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// jobsPhase is what one or more phases measured: jobs started, the time
// until the last start returned and until the last job finished, and every
// start's latency.
type jobsPhase struct {
	n                   int
	accepted, completed time.Duration
	latencies           []time.Duration
}

func (p jobsPhase) plus(q jobsPhase) jobsPhase {
	return jobsPhase{n: p.n + q.n, accepted: p.accepted + q.accepted, completed: p.completed + q.completed,
		latencies: append(slices.Clone(p.latencies), q.latencies...)}
}

func (p jobsPhase) acceptRate() float64   { return float64(p.n) / p.accepted.Seconds() }
func (p jobsPhase) completeRate() float64 { return float64(p.n) / p.completed.Seconds() }
func (p jobsPhase) p50() float64          { return quantileMS(p.latencies, 0.5) }
func (p jobsPhase) p99() float64          { return quantileMS(p.latencies, 0.99) }

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
	return jobsPhase{n: n, accepted: accepted, completed: time.Since(began), latencies: latencies}
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
	return jobsPhase{n: n, accepted: accepted, completed: time.Since(began), latencies: latencies}
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
	input, _ := json.Marshal(job.WebhookInput{URL: r.url, Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
	id := ids.New(ids.Job)
	_, err := r.s.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: id, TaskQueue: r.s.cfg.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, job.WebhookName, job.Input{ID: id, Principal: "bench", Type: jobs.TypeWebhook,
		Input: input, Retry: retry.Defaults()})
	return id, err
}

// starter starts the job as the API does, without HTTP: jobs.Starter, which
// returns once Temporal has stored the start.
func (r *rawJobStarter) starter(i int) (string, error) {
	input, _ := json.Marshal(job.WebhookInput{URL: r.url, Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
	id := ids.New(ids.Job)
	starter := &apijobs.Starter{Temporal: r.s.Temporal, TaskQueue: r.s.cfg.TaskQueue, Store: &apijobs.Store{DB: r.s.DB}}
	_, err := starter.Start(context.Background(), job.Input{ID: id, Principal: "bench", Type: jobs.TypeWebhook,
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
