package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/internal/validation"
)

// CacheLossActivity runs the cache_loss experiment: it mints a short-lived
// API key, sends load to the platform's own API (PLATFORM_DRILL_API_URL),
// empties or pauses the platform's Redis half-way, measures the answers and
// revokes the key. One activity, because the load and the fault must
// overlap; it is never retried, being an experiment with side effects.
const CacheLossActivity = "platform.drill.cache_loss"

// CacheLossStep is the cache_loss drill's one step in the timeline.
const CacheLossStep = "cache_loss"

// Cache-loss modes: flush deletes every key under the platform's Redis
// prefix; pause holds every write to the Redis server (CLIENT PAUSE WRITE).
const (
	CacheLossFlush = "flush"
	CacheLossPause = "pause"
)

// Bounds and defaults of cache_loss's params.
const (
	MinLoadSeconds, MaxLoadSeconds, DefaultLoadSeconds    = 5, 300, 10
	MinRatePerSecond, MaxRatePerSecond, DefaultRate       = 1, 200, 20
	MinPauseSeconds, MaxPauseSeconds, DefaultPauseSeconds = 1, 60, 3
)

// cacheLossFields are cache_loss's params, in the order they are checked.
var cacheLossFields = []string{"mode", "duration_seconds", "rate_per_second", "pause_seconds"}

// CacheLossParams are cache_loss's parameters. The API the load targets is
// the server's configuration, never a parameter.
type CacheLossParams struct {
	Mode            string `json:"mode"`
	DurationSeconds int    `json:"duration_seconds"`
	RatePerSecond   int    `json:"rate_per_second"`
	PauseSeconds    int    `json:"pause_seconds"`
}

// CacheLossInput is CacheLossActivity's input.
type CacheLossInput struct {
	DrillID string          `json:"drill_id"`
	Params  CacheLossParams `json:"params"`
}

// CacheLossResult is CacheLossActivity's result: what the load saw. A 5xx
// or a duplicate is a finding, not an activity error: the workflow fails
// the step with the numbers.
type CacheLossResult struct {
	// Requests counts requests sent; Skipped, ticks of the load that sent
	// nothing because too many requests were already in flight.
	Requests int `json:"requests"`
	Skipped  int `json:"skipped,omitempty"`
	// Statuses counts answers per class ("2xx", "4xx", "429", "5xx") and
	// requests that got no answer ("transport").
	Statuses map[string]int `json:"statuses"`
	// Errors5xx counts 5xx answers; TransportErrors, requests that got none.
	Errors5xx       int `json:"errors_5xx"`
	TransportErrors int `json:"transport_errors"`
	// IdempotencyKeys is how many keys the writes cycled through;
	// Duplicates, how many of them answered 201 with more than one job id.
	IdempotencyKeys int `json:"idempotency_keys"`
	Duplicates      int `json:"duplicates"`
	// KeysDeleted is how many Redis keys the flush deleted.
	KeysDeleted    int64     `json:"keys_deleted"`
	FaultStartedAt time.Time `json:"fault_started_at"`
	FaultEndedAt   time.Time `json:"fault_ended_at"`
	// LimitingBackSeconds is from the fault's start until the API wrote a
	// rate-limit decision for the drill's principal to Redis again after
	// the fault ended; negative when that was not seen.
	LimitingBackSeconds float64 `json:"limiting_back_seconds"`
	// Latency holds p50/p95/p99 in milliseconds per phase, named like
	// p99_ms_during (phases: before, during, after).
	Latency map[string]float64 `json:"latency"`
}

// DecodeCacheLossParams decodes cache_loss's params strictly, filling the
// defaults; raw must be an object whose members are all cache_loss's (see
// DecodeParams, which checks that first).
func DecodeCacheLossParams(raw json.RawMessage) (CacheLossParams, []validation.FieldError) {
	p := CacheLossParams{Mode: CacheLossFlush, DurationSeconds: DefaultLoadSeconds, RatePerSecond: DefaultRate, PauseSeconds: DefaultPauseSeconds}
	var fields map[string]json.RawMessage
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return p, []validation.FieldError{{Pointer: "#/params", Code: "invalid_type", Detail: "must be an object"}}
		}
	}
	var errs fieldErrors
	if v, ok := fields["mode"]; ok {
		if json.Unmarshal(v, &p.Mode) != nil || (p.Mode != CacheLossFlush && p.Mode != CacheLossPause) {
			errs.add("#/params/mode", "invalid", "must be one of "+CacheLossFlush+", "+CacheLossPause)
		}
	}
	errs.intIn(fields, "duration_seconds", &p.DurationSeconds, MinLoadSeconds, MaxLoadSeconds)
	errs.intIn(fields, "rate_per_second", &p.RatePerSecond, MinRatePerSecond, MaxRatePerSecond)
	errs.intIn(fields, "pause_seconds", &p.PauseSeconds, MinPauseSeconds, MaxPauseSeconds)
	if _, ok := fields["pause_seconds"]; ok && p.Mode != CacheLossPause && len(errs) == 0 {
		errs.add("#/params/pause_seconds", "unsupported", "applies only to mode pause")
	}
	if p.Mode == CacheLossPause && 2*p.PauseSeconds >= p.DurationSeconds && len(errs) == 0 {
		errs.add("#/params/pause_seconds", "out_of_range", "must be under half of duration_seconds, so that the load sees the recovery")
	}
	return p, errs
}

// intIn reads the whole number fields[name] into dst when present.
func (e *fieldErrors) intIn(fields map[string]json.RawMessage, name string, dst *int, lo, hi int) {
	v, ok := fields[name]
	if !ok {
		return
	}
	var n int
	if json.Unmarshal(v, &n) != nil || n < lo || n > hi {
		e.add("#/params/"+name, "out_of_range", fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return
	}
	*dst = n
}

// cacheLoss runs the experiment and judges it: any 5xx, unanswered request
// or duplicate fails the step, and so does a limiter that never went back
// to Redis. RTO is the time until Redis-backed limiting was back.
func (d *drill) cacheLoss(ctx workflow.Context) error {
	p, _ := DecodeCacheLossParams(d.in.Params)
	return d.step(ctx, CacheLossStep, func(ctx workflow.Context) (string, error) {
		var res CacheLossResult
		err := workflow.ExecuteActivity(cacheLossOptions(ctx, p), CacheLossActivity, CacheLossInput{DrillID: d.st.ID, Params: p}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		d.measure(cacheLossMeasurements(res))
		return cacheLossVerdict(p, res)
	})
}

// cacheLossMeasurements are the result as the drill's measurements.
func cacheLossMeasurements(res CacheLossResult) map[string]float64 {
	out := map[string]float64{
		"requests": float64(res.Requests), "errors_5xx": float64(res.Errors5xx), "transport_errors": float64(res.TransportErrors),
		"duplicates": float64(res.Duplicates), "idempotency_keys": float64(res.IdempotencyKeys), "redis_keys_deleted": float64(res.KeysDeleted),
		"requests_skipped": float64(res.Skipped),
	}
	for class, n := range res.Statuses {
		out["responses_"+class] = float64(n)
	}
	for k, v := range res.Latency {
		out[k] = v
	}
	if res.LimitingBackSeconds >= 0 {
		out["limiting_back_seconds"] = res.LimitingBackSeconds
		out[drills.RTOSeconds] = res.LimitingBackSeconds
	}
	return out
}

// cacheLossVerdict is the step's detail, or its failure.
func cacheLossVerdict(p CacheLossParams, res CacheLossResult) (string, error) {
	var problems []string
	if res.Errors5xx > 0 {
		problems = append(problems, fmt.Sprintf("%d responses were 5xx (objective 0)", res.Errors5xx))
	}
	if res.TransportErrors > 0 {
		problems = append(problems, fmt.Sprintf("%d requests got no answer (objective 0)", res.TransportErrors))
	}
	if res.Duplicates > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d idempotency keys created more than one job (objective 0)", res.Duplicates, res.IdempotencyKeys))
	}
	if res.LimitingBackSeconds < 0 {
		problems = append(problems, "Redis-backed rate limiting was not seen back before the load ended")
	}
	summary := fmt.Sprintf("%s of the platform's Redis at %s under %d requests/s for %d s: %d requests, %d 5xx, %d duplicates, p99 %s ms during",
		p.Mode, utc(res.FaultStartedAt), p.RatePerSecond, p.DurationSeconds, res.Requests, res.Errors5xx, res.Duplicates,
		formatMs(res.Latency["p99_ms_during"]))
	if res.Skipped > 0 {
		summary += fmt.Sprintf(" (%d ticks skipped: the drill's own limit of requests in flight)", res.Skipped)
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; ") + " — " + summary)
	}
	return fmt.Sprintf("%s; rate limiting back in Redis after %.3f s", summary, res.LimitingBackSeconds), nil
}

func formatMs(v float64) string { return fmt.Sprintf("%.1f", v) }

// cacheLossHeartbeat is shorter than other drill activities' heartbeat
// timeout: the SDK sends heartbeats (which carry an abort to the activity)
// at most every 0.8 of it, and an aborted drill must stop its load and lift
// a pause within seconds, not a minute.
const cacheLossHeartbeat = 10 * time.Second

// cacheLossOptions: one attempt, since the experiment has side effects;
// it heartbeats, and a cancelled one is waited for so that its key is
// revoked and its pause lifted before the drill ends.
func cacheLossOptions(ctx workflow.Context, p CacheLossParams) workflow.Context {
	load := time.Duration(p.DurationSeconds) * time.Second
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2*load + 5*time.Minute, HeartbeatTimeout: cacheLossHeartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}
