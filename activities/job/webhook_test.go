package job

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs/signing"
	"github.com/acme/platform/workflows/job"
)

func TestRetryAfter_SecondsDatesAndGarbage(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"Thu, 01 Jan 2026 12:00:30 GMT", 30 * time.Second},
		{"Thu, 01 Jan 2026 11:00:00 GMT", 0}, // in the past
		{"-5", 0},
		{"soon", 0},
		{"999999999", maxRetryAfter},
	}
	for _, c := range cases {
		if got := RetryAfter(c.in, now); got != c.want {
			t.Errorf("RetryAfter(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// fixedInput is the input of every job: the test's start event.
type fixedInput json.RawMessage

func (f fixedInput) JobInput(context.Context, job.AttemptInput) (json.RawMessage, error) {
	return json.RawMessage(f), nil
}

// deliver runs one Deliver attempt in the SDK's activity test environment.
func deliver(t *testing.T, a *Webhook, url string) (job.AttemptResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.Deliver)
	input, _ := json.Marshal(job.WebhookInput{URL: url, Payload: json.RawMessage(`{"event":"x"}`)})
	a.Inputs = fixedInput(input)
	val, err := env.ExecuteActivity(a.Deliver, job.AttemptInput{JobID: "job_1", Principal: "acme", Attempt: 1})
	var res job.AttemptResult
	if err == nil {
		err = val.Get(&res)
	}
	return res, err
}

func TestDeliver_VerdictsByResponse(t *testing.T) {
	db, _ := testenv.Postgres(t)
	var hits atomic.Int32
	var signature, msgID, ts string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/ok":
			signature, msgID, ts = r.Header.Get(signing.HeaderSignature), r.Header.Get(signing.HeaderID), r.Header.Get(signing.HeaderTimestamp)
			w.WriteHeader(http.StatusAccepted)
		case "/busy":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "/nope":
			http.Error(w, "no such hook", http.StatusNotFound)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusMovedPermanently)
		case "/slow":
			time.Sleep(time.Second)
		}
	}))
	defer rc.Close()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	a := &Webhook{DB: db, Client: NewWebhookClient(loopback, 300*time.Millisecond)}

	res, err := deliver(t, a, rc.URL+"/ok")
	if err != nil || res.Exchange == nil || res.Exchange.Status != 202 || !strings.Contains(string(res.Result), `"status":202`) {
		t.Fatalf("ok: %+v, %v", res, err)
	}
	var secret string
	if err := db.QueryRow(t.Context(), `SELECT secret FROM webhook_secrets WHERE principal = 'acme'`).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	unix, _ := strconv.ParseInt(ts, 10, 64)
	want, _ := signing.Sign(secret, msgID, unix, []byte(`{"event":"x"}`))
	if signature != want || msgID != WebhookMessageID("job_1") {
		t.Errorf("signature %q id %q, want %q and %q", signature, msgID, want, WebhookMessageID("job_1"))
	}

	cases := []struct {
		path       string
		retryable  bool
		errType    string
		retryAfter time.Duration
		status     int
	}{
		{"/busy", true, WebhookRetryableErrorType, 7 * time.Second, 503},
		{"/nope", false, WebhookRejectedErrorType, 0, 404},
		{"/moved", false, WebhookRejectedErrorType, 0, 301},
		{"/slow", true, WebhookRetryableErrorType, 0, 0},
	}
	for _, c := range cases {
		_, err := deliver(t, a, rc.URL+c.path)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.NonRetryable() == c.retryable || appErr.Type() != c.errType || appErr.NextRetryDelay() != c.retryAfter {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		var f job.AttemptFailure
		if c.status != 0 && (appErr.Details(&f) != nil || f.Exchange == nil || f.Exchange.Status != c.status) {
			t.Errorf("%s: details %+v", c.path, f.Exchange)
		}
	}
}

func TestDeliver_RefusesInternalTargetsWithoutConnecting(t *testing.T) {
	db, _ := testenv.Postgres(t)
	var hits atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer rc.Close()
	a := &Webhook{DB: db, Client: NewWebhookClient(nil, time.Second)}
	// A refused destination reads exactly like a name that does not
	// resolve, so a tenant cannot map internal names (review L6).
	for _, url := range []string{rc.URL, strings.Replace(rc.URL, "127.0.0.1", "localhost", 1), "http://169.254.169.254/",
		"http://nothere.invalid/"} {
		_, err := deliver(t, a, url)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.Message() != "could not deliver: unreachable" {
			t.Errorf("%s: %v, want the generic retryable unreachable", url, err)
		}
	}
	// A public address on a port other than 80 and 443 is refused as such.
	_, err := deliver(t, a, "http://93.184.215.14:22/")
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Message() != "could not deliver: port_not_allowed" {
		t.Errorf("port 22: %v, want a non-retryable port_not_allowed", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the receiver was reached %d times", hits.Load())
	}
}
