package job

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/jobs/egress"
	"github.com/acme/platform/jobs/signing"
	"github.com/acme/platform/workflows/job"
)

// Webhook delivers webhook jobs.
type Webhook struct {
	DB     *pgxpool.Pool
	Client *http.Client // from NewWebhookClient
	Inputs InputSource  // StartEvents in the worker
	Limits *Limiter     // per-principal delivery limits; nil: none
}

// Error types of webhook attempts, as shown in the Temporal UI.
const (
	WebhookRetryableErrorType = "WebhookRetryable"
	WebhookRejectedErrorType  = "WebhookRejected"
	WebhookRefusedErrorType   = "WebhookTargetRefused"
)

// maxBodyKept is how much of a receiver's response body an attempt keeps.
const maxBodyKept = 2048

// NewWebhookClient returns the HTTP client of webhook deliveries. It dials
// through the egress guard, checking the address actually connected to;
// it uses no proxy, since a proxy would connect on our behalf past the
// guard; it follows no redirects, which could lead anywhere; and it gives up
// after timeout (10 s when not positive). Public addresses are dialled on
// ports 80 and 443 only, unless ports names others; the allowed networks
// may be dialled on any port.
func NewWebhookClient(allowed []netip.Prefix, timeout time.Duration, ports ...uint16) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	guard := egress.New(allowed, egress.AllowPorts(ports...))
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: guard.Control}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     telemetry.TracedTransport(transport, false),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// WebhookMessageID is the webhook-id of job jobID's deliveries: the same on
// every attempt, so receivers can drop duplicates.
func WebhookMessageID(jobID string) string { return ids.Derive(ids.Delivery, jobID) }

// Deliver makes one delivery attempt: it POSTs the payload, signed with
// every valid secret of the job's principal. 2xx is delivered; 408, 429,
// 5xx, timeouts and connection errors are retryable (with the receiver's
// Retry-After); a refused target, a redirect and other 4xx are not.
func (a *Webhook) Deliver(ctx context.Context, in job.AttemptInput) (job.AttemptResult, error) {
	var hook job.WebhookInput
	raw, err := a.Inputs.JobInput(ctx, in)
	if err != nil {
		return job.AttemptResult{}, err
	}
	if err := decodeInput(raw, &hook); err != nil {
		return job.AttemptResult{}, err
	}
	target, err := url.Parse(hook.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return job.AttemptResult{}, notRetryable(WebhookRejectedErrorType, "invalid webhook url "+strconv.Quote(hook.URL), job.AttemptFailure{})
	}
	secrets, err := a.secrets(ctx, in.Principal)
	if err != nil {
		return job.AttemptResult{}, err
	}
	release, err := a.admit(ctx, in)
	if err != nil {
		return job.AttemptResult{}, err
	}
	defer release()
	msgID := WebhookMessageID(in.JobID)
	return heartbeating(ctx, func(ctx context.Context) (job.AttemptResult, error) {
		return a.send(ctx, target.String(), []byte(hook.Payload), msgID, secrets)
	})
}

// admit takes one of the principal's delivery slots, or answers
// job.ThrottledErrorType with when to try again: the attempt gives its
// worker slot back at once rather than wait in it, so one principal's
// backlog holds no slot another principal's delivery could use.
func (a *Webhook) admit(ctx context.Context, in job.AttemptInput) (func(), error) {
	if a.Limits == nil {
		return func() {}, nil
	}
	token := in.JobID + ":" + activity.GetInfo(ctx).ActivityID
	release, wait, throttled := a.Limits.Acquire(ctx, in.Principal, token)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !throttled {
		return release, nil
	}
	if wait <= 0 { // waiting for a slot to be released: about a second, spread out
		wait = 500*time.Millisecond + rand.N(time.Second)
	}
	return nil, temporal.NewApplicationErrorWithOptions("delivery deferred: the principal is over its webhook delivery limits",
		job.ThrottledErrorType, temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}

func (a *Webhook) send(ctx context.Context, target string, body []byte, msgID string, secrets []string) (job.AttemptResult, error) {
	now := time.Now()
	sig, err := signing.Header(secrets, msgID, now.Unix(), body)
	if err != nil {
		return job.AttemptResult{}, fmt.Errorf("sign webhook %s: %w", msgID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return job.AttemptResult{}, notRetryable(WebhookRejectedErrorType, "invalid webhook url: "+err.Error(), job.AttemptFailure{})
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "acme-platform-webhooks/1")
	req.Header.Set(signing.HeaderID, msgID)
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(signing.HeaderSignature, sig)
	resp, err := a.Client.Do(req)
	latency := time.Since(now)
	if err != nil {
		return job.AttemptResult{}, transportError(ctx, err, latency)
	}
	defer resp.Body.Close()
	ex := exchange(resp, latency)
	return verdict(resp, ex, msgID, time.Now())
}

// transportError classifies a delivery that got no response. What a
// tenant sees is a category that names no address, host or resolver
// answer: a refused destination and a name that does not resolve are both
// "unreachable", and both retryable, so neither the message nor the retry
// tells a tenant what an internal name resolves to (review L6). The cause
// goes to the worker's log for operators.
func transportError(ctx context.Context, err error, latency time.Duration) error {
	if canceled(ctx, err) {
		return ctx.Err() // the attempt was canceled: no verdict
	}
	category := egress.Category(err)
	activity.GetLogger(ctx).Warn("webhook delivery failed", "category", category, "error", err)
	switch category {
	case egress.PortNotAllowed:
		return notRetryable(WebhookRefusedErrorType, "could not deliver: "+category, job.AttemptFailure{})
	case egress.Timeout:
		return temporal.NewApplicationError(fmt.Sprintf("no response within %s", latency.Round(time.Millisecond)), WebhookRetryableErrorType)
	}
	return temporal.NewApplicationError("could not deliver: "+category, WebhookRetryableErrorType)
}

// verdict turns the receiver's response into the attempt's outcome.
func verdict(resp *http.Response, ex *job.HTTPExchange, msgID string, now time.Time) (job.AttemptResult, error) {
	code := resp.StatusCode
	failure := job.AttemptFailure{Exchange: ex}
	answered := fmt.Sprintf("receiver answered %d %s", code, http.StatusText(code))
	switch {
	case code >= 200 && code < 300:
		result, err := json.Marshal(job.WebhookResult{MessageID: msgID, Status: code, LatencyMS: ex.LatencyMS})
		return job.AttemptResult{Result: result, Exchange: ex}, err
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return job.AttemptResult{}, temporal.NewApplicationErrorWithOptions(answered, WebhookRetryableErrorType,
			temporal.ApplicationErrorOptions{NextRetryDelay: RetryAfter(resp.Header.Get("Retry-After"), now), Details: []any{failure}})
	case code >= 300 && code < 400:
		return job.AttemptResult{}, notRetryable(WebhookRejectedErrorType,
			fmt.Sprintf("%s (redirect to %q); redirects are not followed", answered, resp.Header.Get("Location")), failure)
	}
	return job.AttemptResult{}, notRetryable(WebhookRejectedErrorType, answered+"; not retried", failure)
}

// exchange keeps the status, the latency and the start of the body.
func exchange(resp *http.Response, latency time.Duration) *job.HTTPExchange {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyKept+1))
	truncated := len(b) > maxBodyKept
	if truncated {
		b = b[:maxBodyKept]
		for len(b) > 0 && !utf8.Valid(b) { // do not cut a character in two
			b = b[:len(b)-1]
		}
	}
	return &job.HTTPExchange{
		Status:        resp.StatusCode,
		LatencyMS:     float64(latency.Microseconds()) / 1000,
		Body:          strings.ToValidUTF8(string(b), "\uFFFD"),
		BodyTruncated: truncated,
	}
}

// maxRetryAfter caps a receiver's Retry-After; the job's TTL caps it further.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After value, delay-seconds or an HTTP-date, as a
// wait from now; 0 when absent or invalid.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

const validWebhookSecrets = `
SELECT secret FROM webhook_secrets
WHERE principal = $1 AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at DESC`

// ensureWebhookSecret creates the principal's first secret; a concurrent
// creation wins and this one is dropped (the unique index on the current
// secret). The API runs the same statement for GET /v1/webhook-secret.
const ensureWebhookSecret = `
INSERT INTO webhook_secrets (principal, secret) VALUES ($1, $2)
ON CONFLICT (principal) WHERE expires_at IS NULL DO NOTHING`

// secrets returns the principal's valid secrets, newest first, creating the
// first one when the principal has never asked for it.
func (a *Webhook) secrets(ctx context.Context, principal string) ([]string, error) {
	for range 2 {
		rows, err := a.DB.Query(ctx, validWebhookSecrets, principal)
		if err != nil {
			return nil, fmt.Errorf("load signing secrets of %s: %w", principal, err)
		}
		secrets, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("load signing secrets of %s: %w", principal, err)
		}
		if len(secrets) > 0 {
			return secrets, nil
		}
		if _, err := a.DB.Exec(ctx, ensureWebhookSecret, principal, signing.NewSecret()); err != nil {
			return nil, fmt.Errorf("create signing secret of %s: %w", principal, err)
		}
	}
	return nil, fmt.Errorf("no signing secret of %s after creating one", principal)
}
