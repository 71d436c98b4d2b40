package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/internal/testenv"
)

// startWorkerProcess runs "platform worker" against the stack's database and
// task queue, with env added, and returns the process.
func (s *stack) startWorkerProcess(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	bin, err := buildPlatform()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(os.Environ(),
		"PLATFORM_DATABASE_URL="+s.DBURL,
		"PLATFORM_REDIS_URL="+testenv.RedisURL(),
		"PLATFORM_REDIS_PREFIX="+string(s.Keys),
		"PLATFORM_TEMPORAL_ADDRESS="+s.cfg.TemporalAddress,
		"PLATFORM_TASK_QUEUE="+s.cfg.TaskQueue,
		"PLATFORM_CONTROL_TASK_QUEUE="+s.cfg.ControlTaskQueue,
		"PLATFORM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8",
		"PLATFORM_LOG_LEVEL=error",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestJobsFault_WorkerKilledMidAttemptStillFinishes kills a worker process
// (SIGKILL: no graceful stop) while its activity is delivering a webhook.
// The attempt's heartbeats stop, Temporal times it out, and a new worker
// makes the next attempt: the job ends with its row telling the story.
func TestJobsFault_WorkerKilledMidAttemptStillFinishes(t *testing.T) {
	s := newAPIStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	inFlight := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			close(inFlight)
			<-r.Context().Done() // hangs until the worker dies
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	worker := s.startWorkerProcess(t)
	job := s.createJob(t, webhookJob(rc.URL, map[string]any{"n": 1}, nil), auth...)
	select {
	case <-inFlight:
	case <-time.After(15 * time.Second):
		t.Fatal("the first attempt never reached the receiver")
	}
	if err := worker.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = worker.Wait()
	if j := s.job(t, job.ID, auth...); j.Status != "running" {
		t.Fatalf("after the kill the job is %s, want running", j.Status)
	}
	s.startWorker()
	done := s.waitJob(t, job.ID, 40*time.Second, auth...)
	attempts := s.attempts(t, job.ID, auth...)
	if done.Status != "succeeded" || done.Attempts != 2 || len(attempts) != 2 {
		t.Fatalf("job = %+v, attempts %+v", done, attempts)
	}
	if lost := attempts[1]; lost.Status != "failed" || lost.Error == nil || !strings.Contains(*lost.Error, "no heartbeat") {
		t.Errorf("the killed attempt is recorded as %+v", lost)
	}
}

// TestJobsFault_LostStartResponseStillYieldsARowAndAWorkflow cancels the
// client's request right after it is sent. The start still completes (it is
// detached from the client), the job runs to its end, and the client's retry
// with the same key finds that job instead of starting another.
func TestJobsFault_LostStartResponseStillYieldsARowAndAWorkflow(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	body, _ := json.Marshal(webhookJob(rc.URL, map[string]any{"lost": true}, nil))
	send := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/jobs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth[1])
		req.Header.Set("Idempotency-Key", "lost-response-1")
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { cancel() }})
	if resp, err := send(ctx); !errors.Is(err, context.Canceled) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("the request was not cut off: %v", err)
	}
	var id string
	eventually(t, 15*time.Second, "the job's row", func() bool {
		var p struct{ Data []jobJSON }
		s.do(http.MethodGet, "/v1/jobs", nil, auth...).JSON(t, &p)
		if len(p.Data) == 1 {
			id = p.Data[0].ID
		}
		return id != ""
	})
	if done := s.waitJob(t, id, 15*time.Second, auth...); done.Status != "succeeded" {
		t.Fatalf("job = %+v", done)
	}
	var retried *http.Response
	eventually(t, 15*time.Second, "the retry to get the job", func() bool {
		resp, err := send(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		retried = resp
		return resp.StatusCode == http.StatusCreated // 409 while the first request's claim is held
	})
	if loc := retried.Header.Get("Location"); loc != "/v1/jobs/"+id {
		t.Errorf("retry answered %s, want the same job %s", loc, id)
	}
	if n := s.count(t, `SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d job rows, want 1", n)
	}
	if n := s.runsOf(t, id); n != 1 {
		t.Errorf("%d workflow runs, want 1", n)
	}
}
