package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/acme/platform/internal/testenv"
)

// TestJobs_AcceptedWhileNoWorkerRuns: a job queue accepts work while its
// consumers are down. With no worker polling, POST /v1/jobs answers 201 with
// the queued job; GET answers it from Temporal (memo and start event) until a
// worker writes the row, to its owner and admins only; a replay after the
// idempotency store is lost gets the same job, a different body under the
// same key a 422; a queued job can be canceled. Once a worker starts, every
// job gets its row and ends: the canceled one without an attempt.
func TestJobs_AcceptedWhileNoWorkerRuns(t *testing.T) {
	s := newAPIStack(t)
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	beta := bearer(s.key("beta", "jobs:read", "jobs:write"))
	admin := bearer(s.key("ops", "admin"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	// Unique per run: workflow ids derive from the key, and the dev server
	// outlives one run of the test (-count).
	key := []string{"Idempotency-Key", "while-no-worker-" + testenv.Suffix()}
	body := webhookJob(rc.URL, map[string]any{"n": 1}, nil)

	job := s.createJob(t, body, with(acme, key)...)
	if job.Status != "queued" || job.Attempts != 0 || job.Type != "webhook" || job.Workflow.ID != job.ID ||
		job.Workflow.RunID == "" || job.Workflow.URL == "" || job.CreatedAt.IsZero() || job.StartedAt != nil ||
		string(job.Input) != `{"payload":{"n":1},"url":"`+rc.URL+`"}` {
		t.Fatalf("201 = %+v", job)
	}

	// GET answers from Temporal: the same job as the 201.
	if diff := cmp.Diff(job, s.job(t, job.ID, acme...)); diff != "" {
		t.Errorf("GET of the queued job differs from the 201 (-201 +GET):\n%s", diff)
	}
	if got := s.job(t, job.ID, admin...); got.ID != job.ID || got.Status != "queued" {
		t.Errorf("admin GET = %+v", got)
	}
	if a := s.attempts(t, job.ID, acme...); len(a) != 0 {
		t.Errorf("attempts of a queued job = %+v", a)
	}
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs/"+job.ID, nil, beta...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs/"+job.ID+"/attempts", nil, beta...), 404, "not_found")
	checkProblem(t, s.do(http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil, beta...), 404, "not_found")
	// The list holds rows: a job appears there once a worker has started it.
	if ids := s.listJobs(t, "/v1/jobs", 10, acme...); len(ids) != 0 {
		t.Errorf("listed before any worker ran: %v", ids)
	}

	// The idempotency store is lost: a replay finds the queued job, a
	// different request under the key is refused.
	s.flushRedis(t)
	if again := s.createJob(t, body, with(acme, key)...); !cmp.Equal(again, job) {
		t.Errorf("replay after losing the idempotency store = %+v, want %+v", again, job)
	}
	s.flushRedis(t)
	checkProblem(t, s.do(http.MethodPost, "/v1/jobs", webhookJob(rc.URL, map[string]any{"n": 2}, nil), with(acme, key)...),
		422, "idempotency_key_reused")

	// A queued job is canceled: the 202 shows it still queued.
	doomed := s.createJob(t, webhookJob(rc.URL, map[string]any{"cancel": true}, nil), acme...)
	res := s.do(http.MethodPost, "/v1/jobs/"+doomed.ID+"/cancel", nil, acme...)
	var canceling jobJSON
	if res.JSON(t, &canceling); res.Status != http.StatusAccepted || canceling.ID != doomed.ID || canceling.Status != "queued" {
		t.Fatalf("cancel = %d %s", res.Status, res.Body)
	}
	if n := s.count(t, `SELECT count(*) FROM jobs`); n != 0 {
		t.Fatalf("%d job rows before any worker ran: the API wrote rows", n)
	}

	s.startWorker()
	done := s.waitJob(t, job.ID, 20*time.Second, acme...)
	if done.Status != "succeeded" || done.Attempts != 1 || done.Workflow.RunID != job.Workflow.RunID {
		t.Errorf("job = %+v", done)
	}
	canceled := s.waitJob(t, doomed.ID, 20*time.Second, acme...)
	if canceled.Status != "canceled" || canceled.Attempts != 0 || canceled.FinishedAt == nil ||
		len(s.attempts(t, doomed.ID, acme...)) != 0 {
		t.Errorf("canceled job = %+v", canceled)
	}
	desc, err := s.Temporal.DescribeWorkflow(context.Background(), doomed.ID, "")
	if err != nil || desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Errorf("the canceled job's workflow: %v (%v)", desc, err)
	}
	if got := rc.got(); len(got) != 1 {
		t.Errorf("the receiver got %d deliveries, want 1 (the canceled job delivers nothing)", len(got))
	}
	if n := s.count(t, `SELECT count(*) FROM jobs`); n != 2 {
		t.Errorf("%d job rows, want 2", n)
	}
	if ids := s.listJobs(t, "/v1/jobs", 10, acme...); len(ids) != 2 {
		t.Errorf("listed %v, want both jobs", ids)
	}
	if n := s.runsOf(t, job.ID); n != 1 {
		t.Errorf("%d workflow runs with id %s, want 1", n, job.ID)
	}
}

// TestJobs_TerminatedBeforeAnyWorkerRanShowsItsEnd: a job whose workflow an
// operator terminates while no worker runs never gets a row; GET still
// answers it, from Temporal, as failed with the reason.
func TestJobs_TerminatedBeforeAnyWorkerRanShowsItsEnd(t *testing.T) {
	s := newAPIStack(t)
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	job := s.createJob(t, webhookJob("http://127.0.0.1:9/hook", map[string]any{}, nil), acme...)
	if err := s.Temporal.TerminateWorkflow(context.Background(), job.ID, "", "operator"); err != nil {
		t.Fatal(err)
	}
	got := s.job(t, job.ID, acme...)
	if got.Status != "failed" || got.FinishedAt == nil || got.LastError == nil ||
		got.LastError.Message != "the job's workflow ended (terminated) before a worker ran it" ||
		got.Workflow.RunID != job.Workflow.RunID || !got.CreatedAt.Equal(job.CreatedAt) {
		t.Errorf("terminated job = %+v, last_error %+v", got, got.LastError)
	}
	checkProblem(t, s.do(http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil, acme...), 409, "conflict")
}

// TestJobs_RowIsCreatedAtTheAcceptanceTime: a job's created_at is when the
// API accepted it, in the 201, in GET before and after the row exists, and
// so in the list's order, however late a worker picks it up.
func TestJobs_RowIsCreatedAtTheAcceptanceTime(t *testing.T) {
	s := newAPIStack(t)
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	first := s.createJob(t, webhookJob(rc.URL, map[string]any{"n": 1}, nil), acme...)
	second := s.createJob(t, webhookJob(rc.URL, map[string]any{"n": 2}, nil), acme...)
	if queued := s.job(t, first.ID, acme...); !queued.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("queued job created_at %s, want the 201's %s", queued.CreatedAt, first.CreatedAt)
	}
	s.startWorker()
	for _, j := range []jobJSON{first, second} {
		if done := s.waitJob(t, j.ID, 20*time.Second, acme...); !done.CreatedAt.Equal(j.CreatedAt) {
			t.Errorf("job %s: the row's created_at %s, want the 201's %s (activities.Jobs.Create must insert "+
				"CreateJobInput.CreatedAt, not the time a worker first ran the job)", j.ID, done.CreatedAt, j.CreatedAt)
		}
	}
	if ids := s.listJobs(t, "/v1/jobs", 10, acme...); !cmp.Equal(ids, []string{second.ID, first.ID}) {
		t.Errorf("listed %v, want newest first %v", ids, []string{second.ID, first.ID})
	}
}
