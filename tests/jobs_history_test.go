package tests

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/acme/platform/workflows/job"
)

// TestJobsHistory_BigPayloadFailing50TimesKeepsTheHistorySmall sends a
// webhook job with a payload of about 1 MiB to a receiver that always
// answers 500, with 50 attempts at the shortest interval. The payload is
// in the workflow's history once (the start event), not once per attempt:
// the run fails on its own after 50 attempts, well under Temporal's history
// limit, and its row says so.
func TestJobsHistory_BigPayloadFailing50TimesKeepsTheHistorySmall(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	var hits atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(rc.Close)
	const attempts = 50
	payload := map[string]any{"blob": strings.Repeat("x", 1_000_000)}
	created := s.createJob(t, webhookJob(rc.URL, payload, map[string]any{"max_attempts": attempts,
		"initial_interval_seconds": 0.1, "max_interval_seconds": 0.1, "backoff_coefficient": 1}), auth...)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_ = s.Temporal.GetWorkflow(ctx, job.WorkflowID(created.ID), "").Get(ctx, nil) // the job fails
	d, err := s.Temporal.DescribeWorkflow(ctx, job.WorkflowID(created.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	info := d.RawResponse.GetWorkflowExecutionInfo()
	t.Logf("%d deliveries; history: %d events, %d bytes; run %s", hits.Load(), info.GetHistoryLength(),
		info.GetHistorySizeBytes(), info.GetStatus())
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
		t.Errorf("run ended %s, want failed (by the job's own policy)", info.GetStatus())
	}
	if size := info.GetHistorySizeBytes(); size >= 5_000_000 {
		t.Errorf("history is %d bytes after %d attempts, want under 5 MB", size, attempts)
	}
	j := s.job(t, created.ID, auth...)
	if j.Status != "failed" || j.Attempts != attempts || int(hits.Load()) != attempts {
		t.Errorf("job %s after %d attempts, %d deliveries; want failed after %d", j.Status, j.Attempts, hits.Load(), attempts)
	}
}
