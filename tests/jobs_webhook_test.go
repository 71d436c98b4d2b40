package tests

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/acme/platform/internal/config"
)

// verifySignature checks a delivery the way a receiver following the
// Standard Webhooks specification does, independently of the platform's
// signing code: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the
// base64-decoded secret, compared with each "v1," signature of the header.
func verifySignature(t *testing.T, secret string, d delivery) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.Header.Get("webhook-id") + "." + d.Header.Get("webhook-timestamp") + "."))
	mac.Write(d.Body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(d.Header.Get("webhook-signature")) {
		version, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestJobsWebhook_FailsTwiceThenDeliversSigned(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	var secret struct{ Secret string }
	s.do(http.MethodGet, "/v1/webhook-secret", nil, auth...).JSON(t, &secret)
	if !strings.HasPrefix(secret.Secret, "whsec_") {
		t.Fatalf("secret = %q", secret.Secret)
	}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "1") // longer than the 0.4 s backoff
			http.Error(w, "still busy", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	payload := map[string]any{"event": "order.paid", "order": 42}
	job := s.createJob(t, webhookJob(rc.URL+"/hook", payload, nil), auth...)
	if job.Status != "queued" || job.Workflow.ID != job.ID || job.Workflow.RunID == "" ||
		job.Workflow.URL != "http://localhost:8233/namespaces/default/workflows/"+job.ID+"/"+job.Workflow.RunID+"/history" {
		t.Errorf("created job = %+v", job)
	}
	// One writer, yet the row is there as soon as the 201 is.
	if got := s.job(t, job.ID, auth...); got.ID != job.ID {
		t.Fatalf("GET right after 201 = %+v", got)
	}

	// While it waits for the receiver's Retry-After, the API shows the
	// attempts so far and the last error.
	var retrying jobJSON
	eventually(t, 10*time.Second, "the job to wait before its third attempt", func() bool {
		retrying = s.job(t, job.ID, auth...)
		return retrying.Status == "retrying" && retrying.Attempts == 2
	})
	if e := retrying.LastError; e == nil || e.Attempt != 2 || !e.Retryable || e.Message != "receiver answered 503 Service Unavailable" {
		t.Errorf("last_error while retrying = %+v", retrying.LastError)
	}

	done := s.waitJob(t, job.ID, 20*time.Second, auth...)
	if done.Status != "succeeded" || done.Attempts != 3 || done.StartedAt == nil || done.FinishedAt == nil {
		t.Fatalf("job = %+v", done)
	}
	var result struct {
		WebhookID string `json:"webhook_id"`
		Status    int
	}
	if err := json.Unmarshal(done.Result, &result); err != nil || result.Status != 200 || !strings.HasPrefix(result.WebhookID, "msg_") {
		t.Errorf("result %s (%v)", done.Result, err)
	}

	attempts := s.attempts(t, job.ID, auth...)
	if len(attempts) != 3 {
		t.Fatalf("%d attempts recorded, want 3: %+v", len(attempts), attempts)
	}
	for i, want := range []struct {
		status   string
		response int
		body     string
	}{{"succeeded", 200, ""}, {"failed", 503, "still busy\n"}, {"failed", 503, "busy\n"}} {
		a := attempts[i]
		if a.Status != want.status || a.Response == nil || a.Response.Status != want.response || a.Response.Body != want.body {
			t.Errorf("attempt %d = %+v (response %+v), want %+v", a.Attempt, a, a.Response, want)
		}
	}

	got := rc.got()
	if len(got) != 3 {
		t.Fatalf("receiver got %d deliveries", len(got))
	}
	for i, d := range got {
		if !verifySignature(t, secret.Secret, d) {
			t.Errorf("delivery %d: signature %q does not verify with the published secret", i+1, d.Header.Get("webhook-signature"))
		}
		if d.Header.Get("webhook-id") != result.WebhookID {
			t.Errorf("delivery %d: webhook-id %q, want the same id on every attempt (%s)", i+1, d.Header.Get("webhook-id"), result.WebhookID)
		}
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil || body["event"] != "order.paid" {
			t.Errorf("delivery %d body %s", i+1, d.Body)
		}
	}
	if gap := got[2].At.Sub(got[1].At); gap < time.Second {
		t.Errorf("third attempt came %s after the second, before the receiver's Retry-After of 1s", gap)
	}

	// The Temporal run tells the same story: three attempt activities.
	scheduled := 0
	iter := s.Temporal.GetWorkflowHistory(context.Background(), job.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			scheduled++
		}
	}
	if scheduled != 3 {
		t.Errorf("%d activities scheduled in the workflow's history, want 3 (one per attempt)", scheduled)
	}
}

func TestJobsWebhook_RotatedSecretSignsWithBoth(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	var old, rotated struct {
		Secret             string
		PreviousValidUntil *time.Time `json:"previous_valid_until"`
	}
	s.do(http.MethodGet, "/v1/webhook-secret", nil, auth...).JSON(t, &old)
	res := s.do(http.MethodPost, "/v1/webhook-secret/rotate", nil, auth...)
	if res.Status != http.StatusOK {
		t.Fatalf("rotate = %d %s", res.Status, res.Body)
	}
	res.JSON(t, &rotated)
	if rotated.Secret == old.Secret || rotated.PreviousValidUntil == nil ||
		time.Until(*rotated.PreviousValidUntil) < 23*time.Hour {
		t.Fatalf("rotation = %+v (old %s)", rotated, old.Secret)
	}
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	job := s.createJob(t, webhookJob(rc.URL, map[string]any{"a": 1}, nil), auth...)
	if done := s.waitJob(t, job.ID, 15*time.Second, auth...); done.Status != "succeeded" {
		t.Fatalf("job = %+v", done)
	}
	d := rc.got()[0]
	if !verifySignature(t, old.Secret, d) || !verifySignature(t, rotated.Secret, d) ||
		len(strings.Fields(d.Header.Get("webhook-signature"))) != 2 {
		t.Errorf("signature %q must verify with the new and the previous secret", d.Header.Get("webhook-signature"))
	}
}

func TestJobsWebhook_SSRFTargetsAreRefusedBeforeConnecting(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.WebhookAllowedNetworks = nil })
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	loopbackByName := strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)
	// Every refusal reads like a name that does not resolve: the tenant
	// learns nothing of what an internal name or address holds (review L6).
	once := map[string]any{"max_attempts": 1}
	for _, url := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/hook",
		loopbackByName + "/hook", // a name, refused on the address it resolves to
		"http://nothere.invalid/hook",
	} {
		job := s.createJob(t, webhookJob(url, map[string]any{}, once), auth...)
		done := s.waitJob(t, job.ID, 15*time.Second, auth...)
		if done.Status != "failed" || done.Attempts != 1 || done.LastError == nil || !done.LastError.Retryable ||
			done.LastError.Message != "could not deliver: unreachable" {
			t.Errorf("%s: job = %+v, last_error %+v", url, done, done.LastError)
		}
	}
	if n := len(rc.got()); n != 0 {
		t.Errorf("the loopback receiver was reached %d times", n)
	}
}

func TestJobsWebhook_VerdictsByStatus(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			http.Error(w, strings.Repeat("g", 3000), http.StatusNotFound)
		case "/moved":
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
		case "/slow-down":
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	cases := []struct {
		path, status string
		retryable    bool
		message      string
		retry        map[string]any
	}{
		{"/gone", "failed", false, "receiver answered 404 Not Found; not retried", nil},
		{"/moved", "failed", false, "redirects are not followed", nil},
		// The receiver asks for 60 s, beyond the job's 5 s TTL: it times out
		// at once instead of sleeping into certain failure.
		{"/slow-down", "timed_out", true, "receiver answered 429 Too Many Requests", map[string]any{"ttl_seconds": 5}},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = s.createJob(t, webhookJob(rc.URL+c.path, map[string]any{}, c.retry), auth...).ID
	}
	for i, c := range cases {
		done := s.waitJob(t, ids[i], 15*time.Second, auth...)
		if done.Status != c.status || done.Attempts != 1 || done.LastError == nil ||
			done.LastError.Retryable != c.retryable || !strings.Contains(done.LastError.Message, c.message) {
			t.Errorf("%s: job = %+v, last_error %+v", c.path, done, done.LastError)
		}
	}
	gone := s.attempts(t, ids[0], auth...)[0]
	if gone.Response == nil || len(gone.Response.Body) != 2048 || !gone.Response.BodyTruncated {
		t.Errorf("404 attempt kept %+v, want the body truncated to 2048 bytes", gone.Response)
	}
}

func TestJobsWebhook_CancelStopsTheRunningDelivery(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.WebhookTimeout = time.Minute })
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	abandoned := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the worker closed the connection
			close(abandoned)
		case <-time.After(30 * time.Second):
		}
	})
	job := s.createJob(t, webhookJob(rc.URL, map[string]any{}, nil), auth...)
	eventually(t, 10*time.Second, "the delivery to be in flight", func() bool { return len(rc.got()) == 1 })
	res := s.do(http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil, auth...)
	if res.Status != http.StatusAccepted {
		t.Fatalf("cancel = %d %s", res.Status, res.Body)
	}
	select {
	case <-abandoned:
	case <-time.After(10 * time.Second):
		t.Fatal("the running delivery did not stop after the cancellation")
	}
	done := s.waitJob(t, job.ID, 10*time.Second, auth...)
	attempts := s.attempts(t, job.ID, auth...)
	if done.Status != "canceled" || done.FinishedAt == nil || len(attempts) != 1 || attempts[0].Status != "canceled" {
		t.Errorf("job = %+v, attempts %+v", done, attempts)
	}
	desc, err := s.Temporal.DescribeWorkflow(context.Background(), job.ID, "")
	if err != nil || desc.RawResponse.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("workflow %v (%v), want canceled", desc, err)
	}
	again := s.do(http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil, auth...)
	checkProblem(t, again, http.StatusConflict, "conflict")
}
