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
	"github.com/acme/platform/drills/invariants"
	"github.com/acme/platform/internal/validation"
)

// DegradedActivity runs db_degraded or cache_degraded: under steady load
// against the platform's own API it applies each fault in turn through
// Toxiproxy (PLATFORM_TOXIPROXY_URL) to the proxy in front of Postgres or
// Redis, measures the answers, and stops early (removing every toxic and
// the load) when the stop condition trips. One attempt, heartbeating.
const DegradedActivity = "platform.drill.degraded"

// RemoveToxicsActivity removes every toxic from a proxy and re-enables it:
// the experiments' compensation. It is idempotent and runs in a
// disconnected context after success, failure, abort, cancellation and a
// lost worker, retried until it succeeds (on any worker).
const RemoveToxicsActivity = "platform.drill.remove_toxics"

// Steps of the degraded drills' timeline.
const (
	DegradedStep     = "degraded"
	RemoveToxicsStep = "remove_toxics"
)

// The Toxiproxy proxies the platform runs behind when experiments are
// enabled: the operator points PLATFORM_DATABASE_URL and PLATFORM_REDIS_URL
// at their listen addresses.
const (
	PostgresProxy = "platform-postgres"
	RedisProxy    = "platform-redis"
)

// Faults, applied in this order.
const (
	FaultLatency   = "latency"   // 200 ms ± 50 ms added downstream
	FaultBandwidth = "bandwidth" // downstream capped to 16 KB/s
	FaultTimeout   = "timeout"   // data stops; connections close after 2 s
	FaultCut       = "cut"       // the proxy is disabled: connections refused
)

// Faults lists every fault.
var Faults = []string{FaultLatency, FaultBandwidth, FaultTimeout, FaultCut}

// Bounds and defaults of the degraded drills' params.
const (
	MinFaultSeconds, MaxFaultSeconds, DefaultFaultSeconds = 2, 120, 4
	MinGraceSeconds, MaxGraceSeconds, DefaultGraceSeconds = 0, 60, 3
	MinAbortP99, MaxAbortP99, DefaultAbortP99             = 10, 60000, 15000
	DefaultDegradedRate                                   = 20
	// DefaultAbortErrorPercent: unexpected answers (5xx other than a 503
	// with Retry-After, or none) in a second's window above which the run
	// stops once the grace has passed.
	MinAbortErrorPercent, MaxAbortErrorPercent, DefaultAbortErrorPercent = 0, 100, 50
)

var degradedFields = []string{"faults", "rate_per_second", "fault_seconds", "abort_error_percent", "abort_p99_ms", "grace_seconds"}

// DegradedParams are db_degraded's and cache_degraded's parameters.
type DegradedParams struct {
	Faults            []string `json:"faults"`
	RatePerSecond     int      `json:"rate_per_second"`
	FaultSeconds      int      `json:"fault_seconds"`
	AbortErrorPercent int      `json:"abort_error_percent"`
	AbortP99Ms        int      `json:"abort_p99_ms"`
	GraceSeconds      int      `json:"grace_seconds"`
}

// DegradedInput is DegradedActivity's input. The proxy is the scenario's,
// never a parameter.
type DegradedInput struct {
	DrillID string         `json:"drill_id"`
	Proxy   string         `json:"proxy"`
	Params  DegradedParams `json:"params"`
}

// FaultResult is what the load saw during one fault (and the second after
// it was lifted, when the platform recovers).
type FaultResult struct {
	Fault    string         `json:"fault"`
	Requests int            `json:"requests"`
	Statuses map[string]int `json:"statuses"` // "2xx", "4xx", "429", "503", "500", "5xx", "transport"
	// Errors500 counts 500s: never expected. Unexpected counts every answer
	// outside the documented degraded mode: 500s, other 5xx, a 503 without
	// Retry-After, no answer.
	Errors500  int     `json:"errors_500"`
	Unexpected int     `json:"unexpected"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	// Shed counts 503s with Retry-After: the documented degraded answer.
	Shed int `json:"shed"`
}

// DegradedResult is DegradedActivity's result.
type DegradedResult struct {
	Faults     []FaultResult       `json:"faults"`
	Invariants []invariants.Result `json:"invariants"`
	// Stopped is why the run stopped early; empty when every fault ran.
	Stopped string `json:"stopped,omitempty"`
	// PoolWaitsMax is the largest number of requests waiting for a
	// database connection the API's /metrics showed (-1: not measured).
	PoolWaitsMax float64 `json:"pool_waits_max"`
}

// RemoveToxicsInput is RemoveToxicsActivity's input.
type RemoveToxicsInput struct {
	Proxy string `json:"proxy"`
}

// RemoveToxicsResult says what was removed.
type RemoveToxicsResult struct {
	Removed []string `json:"removed,omitempty"`
}

// DecodeDegradedParams decodes the params of db_degraded and cache_degraded.
func DecodeDegradedParams(scenario string, raw json.RawMessage) (DegradedParams, []validation.FieldError) {
	p := DegradedParams{Faults: Faults, RatePerSecond: DefaultDegradedRate, FaultSeconds: DefaultFaultSeconds,
		AbortErrorPercent: DefaultAbortErrorPercent, AbortP99Ms: DefaultAbortP99, GraceSeconds: DefaultGraceSeconds}
	fields, errs := objectFields(raw, degradedFields, scenario)
	if len(errs) > 0 {
		return p, errs
	}
	if v, ok := fields["faults"]; ok {
		var fs []string
		if json.Unmarshal(v, &fs) != nil || len(fs) == 0 || len(fs) > len(Faults) || !allKnown(fs) {
			errs.add("#/params/faults", "invalid", "must be a non-empty list of distinct faults among "+strings.Join(Faults, ", "))
		} else {
			p.Faults = fs
		}
	}
	errs.intIn(fields, "rate_per_second", &p.RatePerSecond, MinRatePerSecond, 500)
	errs.intIn(fields, "fault_seconds", &p.FaultSeconds, MinFaultSeconds, MaxFaultSeconds)
	errs.intIn(fields, "abort_error_percent", &p.AbortErrorPercent, MinAbortErrorPercent, MaxAbortErrorPercent)
	errs.intIn(fields, "abort_p99_ms", &p.AbortP99Ms, MinAbortP99, MaxAbortP99)
	errs.intIn(fields, "grace_seconds", &p.GraceSeconds, MinGraceSeconds, MaxGraceSeconds)
	return p, errs
}

func allKnown(fs []string) bool {
	seen := map[string]bool{}
	for _, f := range fs {
		if seen[f] || !containsString(Faults, f) {
			return false
		}
		seen[f] = true
	}
	return true
}

// proxyOf is the proxy a degraded scenario drives.
func proxyOf(scenario string) string {
	if scenario == drills.ScenarioCacheDegraded {
		return RedisProxy
	}
	return PostgresProxy
}

// degraded runs the faults and judges the platform against its documented
// degraded mode: never a 500, Postgres gone is 503 with Retry-After, Redis
// gone is served with in-process limiting (so 2xx and 429 go on). A stop
// condition that tripped fails the step with its reason. The toxics are
// removed by the compensation in finish, whatever happened here.
func (d *drill) degraded(ctx workflow.Context) error {
	p, _ := DecodeDegradedParams(d.in.Scenario, d.in.Params)
	in := DegradedInput{DrillID: d.st.ID, Proxy: proxyOf(d.in.Scenario), Params: p}
	return d.step(ctx, DegradedStep, func(ctx workflow.Context) (string, error) {
		var res DegradedResult
		if err := workflow.ExecuteActivity(degradedOptions(ctx, p), DegradedActivity, in).Get(ctx, &res); err != nil {
			return "", err
		}
		d.measure(degradedMeasurements(res))
		return degradedVerdict(in.Proxy, res)
	})
}

func degradedMeasurements(res DegradedResult) map[string]float64 {
	out := map[string]float64{"faults_run": float64(len(res.Faults))}
	if res.PoolWaitsMax >= 0 {
		out["pool_waits_max"] = res.PoolWaitsMax
	}
	for _, f := range res.Faults {
		out[f.Fault+"_requests"] = float64(f.Requests)
		out[f.Fault+"_errors_500"] = float64(f.Errors500)
		out[f.Fault+"_unexpected"] = float64(f.Unexpected)
		out[f.Fault+"_shed_503"] = float64(f.Shed)
		out[f.Fault+"_p50_ms"] = f.P50
		out[f.Fault+"_p99_ms"] = f.P99
	}
	if res.Stopped != "" {
		out["stopped"] = 1
	}
	invariantMeasurements(out, res.Invariants)
	return out
}

func degradedVerdict(proxy string, res DegradedResult) (string, error) {
	var parts, problems []string
	for _, f := range res.Faults {
		parts = append(parts, fmt.Sprintf("%s: %d requests, %d 503 shed, %d 500, p99 %.0f ms", f.Fault, f.Requests, f.Shed, f.Errors500, f.P99))
		if f.Unexpected > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d answers outside the degraded mode (%d of them 500)", f.Fault, f.Unexpected, f.Errors500))
		}
	}
	problems = append(problems, brokenInvariants(res.Invariants)...)
	if res.Stopped != "" {
		problems = append([]string{"stopped: " + res.Stopped + "; every toxic removed and the load stopped"}, problems...)
	}
	summary := proxy + " — " + strings.Join(parts, "; ")
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; ") + " — " + summary)
	}
	return summary, nil
}

// removeToxics is the compensation of the degraded drills.
func (d *drill) removeToxics(ctx workflow.Context) (string, error) {
	var res RemoveToxicsResult
	proxy := proxyOf(d.in.Scenario)
	if err := workflow.ExecuteActivity(cleanupOptions(ctx), RemoveToxicsActivity, RemoveToxicsInput{Proxy: proxy}).Get(ctx, &res); err != nil {
		return "", err
	}
	if len(res.Removed) == 0 {
		return "no toxic left on " + proxy, nil
	}
	return "removed from " + proxy + ": " + strings.Join(res.Removed, ", "), nil
}

// degradedScenario reports whether scenario injects faults that the
// compensation must remove.
func degradedScenario(scenario string) bool {
	return scenario == drills.ScenarioDBDegraded || scenario == drills.ScenarioCacheDegraded
}

// degradedOptions: one attempt; heartbeats so that a lost worker is seen
// within seconds and the compensation removes the toxics.
func degradedOptions(ctx workflow.Context, p DegradedParams) workflow.Context {
	run := time.Duration(len(p.Faults)*(p.FaultSeconds+3)) * time.Second
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2*run + 5*time.Minute, HeartbeatTimeout: experimentHeartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}
