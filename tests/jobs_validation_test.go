package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/api/workflowservice/v1"
)

func TestJobs_InvalidInputIsAClearProblemAndChangesNothing(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	var secretBefore struct{ Secret string }
	s.do(http.MethodGet, "/v1/webhook-secret", nil, auth...).JSON(t, &secretBefore)
	hook := func(input string) string { return `{"type":"webhook","input":` + input + `}` }
	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		pointers     []string
	}{
		{"empty job", "POST", "/v1/jobs", `{}`, 400, "validation_failed", []string{"#/type", "#/input"}},
		{"unknown type", "POST", "/v1/jobs", `{"type":"email","input":{}}`, 400, "validation_failed", []string{"#/type"}},
		{"input not an object", "POST", "/v1/jobs", hook(`[1]`), 400, "validation_failed", []string{"#/input"}},
		{"webhook without url and payload", "POST", "/v1/jobs", hook(`{}`), 400, "validation_failed", []string{"#/input/url", "#/input/payload"}},
		{"webhook url not http", "POST", "/v1/jobs", hook(`{"url":"ftp://example.com/x","payload":{}}`), 400, "validation_failed", []string{"#/input/url"}},
		{"webhook url with credentials", "POST", "/v1/jobs", hook(`{"url":"https://u:p@example.com/","payload":{}}`), 400, "validation_failed", []string{"#/input/url"}},
		{"webhook url a number", "POST", "/v1/jobs", hook(`{"url":5,"payload":{}}`), 400, "validation_failed", []string{"#/input/url"}},
		{"webhook payload not an object", "POST", "/v1/jobs", hook(`{"url":"https://example.com/","payload":"hi"}`), 400, "validation_failed", []string{"#/input/payload"}},
		{"webhook unknown input field", "POST", "/v1/jobs", hook(`{"url":"https://example.com/","payload":{},"headers":{}}`), 400, "validation_failed", []string{"#/input/headers"}},
		{"rollup bad times", "POST", "/v1/jobs", `{"type":"analytics.rollup","input":{"from":"yesterday"}}`, 400, "validation_failed", []string{"#/input/from", "#/input/to"}},
		{"rollup backwards", "POST", "/v1/jobs", `{"type":"analytics.rollup","input":{"from":"2020-01-02T00:00:00Z","to":"2020-01-01T00:00:00Z"}}`, 400, "validation_failed", []string{"#/input/to"}},
		{"rollup too long", "POST", "/v1/jobs", `{"type":"analytics.rollup","input":{"from":"2020-01-01T00:00:00Z","to":"2020-03-01T00:00:00Z"}}`, 400, "validation_failed", []string{"#/input/to"}},
		{"upload id malformed", "POST", "/v1/jobs", `{"type":"upload.process","input":{"upload_id":"x"}}`, 400, "validation_failed", []string{"#/input/upload_id"}},
		{"upload unknown", "POST", "/v1/jobs", `{"type":"upload.process","input":{"upload_id":"upl_nope"}}`, 400, "validation_failed", []string{"#/input/upload_id"}},
		{"every retry field out of range", "POST", "/v1/jobs",
			`{"type":"webhook","input":{"url":"https://example.com/","payload":{}},"retry":{"max_attempts":0,"initial_interval_seconds":0,"max_interval_seconds":100000,"backoff_coefficient":0.5,"ttl_seconds":0}}`,
			400, "validation_failed", []string{"#/retry/max_attempts", "#/retry/initial_interval_seconds", "#/retry/max_interval_seconds", "#/retry/backoff_coefficient", "#/retry/ttl_seconds"}},
		{"retry attempts beyond 100", "POST", "/v1/jobs", `{"type":"webhook","input":{"url":"https://example.com/","payload":{}},"retry":{"max_attempts":101}}`,
			400, "validation_failed", []string{"#/retry/max_attempts"}},
		{"retry field misspelt", "POST", "/v1/jobs", `{"type":"webhook","input":{"url":"https://example.com/","payload":{}},"retry":{"max_attempt":3}}`, 400, "validation_failed", []string{"#/retry/max_attempt"}},
		{"retry field a string", "POST", "/v1/jobs", `{"type":"webhook","input":{"url":"https://example.com/","payload":{}},"retry":{"max_attempts":"3"}}`, 400, "validation_failed", []string{"#/retry/max_attempts"}},
		{"not JSON", "POST", "/v1/jobs", `{"type":`, 400, "invalid_json", nil},
		{"list filters", "GET", "/v1/jobs?status=done&type=email&limit=0", nil, 400, "validation_failed", []string{"#/status", "#/type", "#/limit"}},
		{"list unknown parameter", "GET", "/v1/jobs?state=failed", nil, 400, "validation_failed", []string{"#/state"}},
		{"list by principal without admin", "GET", "/v1/jobs?principal=beta", nil, 400, "validation_failed", []string{"#/principal"}},
		{"list tampered cursor", "GET", "/v1/jobs?cursor=abc", nil, 400, "invalid_cursor", nil},
		{"unknown job", "GET", "/v1/jobs/job_nope", nil, 404, "not_found", nil},
		{"not a job id", "GET", "/v1/jobs/key_abc", nil, 404, "not_found", nil},
		{"attempts take no parameters", "GET", "/v1/jobs/job_nope/attempts?limit=5", nil, 400, "validation_failed", []string{"#"}},
		{"cancel unknown job", "POST", "/v1/jobs/job_nope/cancel", nil, 404, "not_found", nil},
		{"usage without range", "GET", "/v1/usage", nil, 400, "validation_failed", []string{"#/from", "#/to"}},
		{"usage range backwards", "GET", "/v1/usage?from=2020-01-02T00:00:00Z&to=2020-01-01T00:00:00Z&limit=101", nil, 400, "validation_failed", []string{"#/to", "#/limit"}},
		{"usage bad time", "GET", "/v1/usage?from=today&to=2020-01-01T00:00:00Z", nil, 400, "validation_failed", []string{"#/from"}},
		{"upload process not a boolean", "POST", "/v1/uploads?process=maybe", "a,b\n", 400, "validation_failed", []string{"#/process"}},
		{"upload unknown parameter", "POST", "/v1/uploads?name=x.csv", "a,b\n", 400, "validation_failed", []string{"#/name"}},
		{"upload empty", "POST", "/v1/uploads", "", 400, "validation_failed", []string{"#"}},
		{"rotate with a body field", "POST", "/v1/webhook-secret/rotate", `{"now":true}`, 400, "validation_failed", []string{"#/now"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != nil {
				body = c.body
			}
			res := s.do(c.method, c.path, body, auth...)
			p := checkProblem(t, res, c.status, c.code)
			if c.pointers != nil {
				if diff := cmp.Diff(c.pointers, pointers(p)); diff != "" {
					t.Errorf("pointers (-want +got):\n%s", diff)
				}
			}
		})
	}
	res := s.do("POST", "/v1/jobs", strings.Repeat(" ", 2<<20)+"{}", auth...)
	checkProblem(t, res, 413, "payload_too_large")
	for table, query := range map[string]string{"jobs": `SELECT count(*) FROM jobs`, "uploads": `SELECT count(*) FROM uploads`} {
		if n := s.count(t, query); n != 0 {
			t.Errorf("invalid requests left %d rows in %s", n, table)
		}
	}
	var secretAfter struct{ Secret string }
	s.do(http.MethodGet, "/v1/webhook-secret", nil, auth...).JSON(t, &secretAfter)
	if secretAfter.Secret != secretBefore.Secret {
		t.Error("an invalid rotation rotated the secret")
	}
}

func TestJobs_ScopesAreEnforced(t *testing.T) {
	s := newStack(t)
	reader := bearer(s.key("acme", "jobs:read"))
	body := webhookJob("https://example.com/", map[string]any{}, nil)
	checkProblem(t, s.do(http.MethodPost, "/v1/jobs", body, reader...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/webhook-secret", nil, reader...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs", nil), 401, "unauthenticated")
}

// runsOf counts the workflow executions with id, as Temporal's visibility
// sees them.
func (s *stack) runsOf(t *testing.T, id string) int {
	t.Helper()
	resp, err := s.Temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowId = '" + id + "'"})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetExecutions())
}

func TestJobs_IdempotencyKeyNeverStartsASecondWorkflow(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	key := []string{"Idempotency-Key", "notify-order-42"}
	body := webhookJob(rc.URL, map[string]any{"order": 42}, nil)
	first := s.createJob(t, body, with(auth, key)...)
	replay := s.do(http.MethodPost, "/v1/jobs", body, with(auth, key)...)
	if replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("second POST was not a replay: %d %s", replay.Status, replay.Body)
	}
	s.waitJob(t, first.ID, 15*time.Second, auth...)

	// The idempotency store is lost: the derived id finds the same job, whose
	// workflow has finished, and nothing runs again.
	s.flushRedis(t)
	again := s.createJob(t, body, with(auth, key)...)
	if again.ID != first.ID {
		t.Errorf("after losing the idempotency store: job %s, want %s", again.ID, first.ID)
	}
	s.flushRedis(t)
	different := s.do(http.MethodPost, "/v1/jobs", webhookJob(rc.URL, map[string]any{"order": 43}, nil), with(auth, key)...)
	checkProblem(t, different, 422, "idempotency_key_reused")

	if n := s.count(t, `SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d job rows, want 1", n)
	}
	if n := len(rc.got()); n != 1 {
		t.Errorf("the receiver got %d deliveries, want 1", n)
	}
	eventually(t, 5*time.Second, "visibility to list the run", func() bool { return s.runsOf(t, first.ID) >= 1 })
	if n := s.runsOf(t, first.ID); n != 1 {
		t.Errorf("%d workflow runs with id %s, want 1", n, first.ID)
	}
}
