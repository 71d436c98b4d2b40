package rollout

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/guard"
	"github.com/acme/platform/internal/validation"
)

// Guard sources.
const (
	GuardSourceEvents     = "events"
	GuardSourcePrometheus = "prometheus"
)

// Limits of a rollout spec.
const (
	DefaultIntervalSeconds = 30
	MaxSteps               = 20
	MaxHoldSeconds         = 7 * 24 * 3600
	MaxIntervalSeconds     = 3600
)

// Input is the platform.rollout workflow's input. It is plain JSON so
// that a rollout can be started from the Temporal UI:
//
//	{"flag": "checkout", "variant": "new",
//	 "steps": [{"percent": 10, "hold_seconds": 600}, {"percent": 100, "hold_seconds": 600}],
//	 "guard": {"source": "events"}}
//
// ID defaults to the workflow id; the guard's thresholds default as the
// guard package says.
type Input struct {
	ID        string     `json:"id,omitempty"`
	Principal string     `json:"principal,omitempty"`
	Flag      string     `json:"flag"`
	Variant   string     `json:"variant"`
	Control   string     `json:"control,omitempty"`
	Steps     []Step     `json:"steps"`
	Guard     GuardInput `json:"guard"`
	// ChecksPerRun bounds the guard checks of one run before the workflow
	// continues as new (sooner when Temporal suggests it), so that a rollout
	// holding for days keeps a short history. 0 means DefaultChecksPerRun;
	// the API never sets it, tests and operators starting from the UI may.
	ChecksPerRun int `json:"checks_per_run,omitempty"`
	// Carry is the state handed over by continue-as-new; never set it.
	Carry *State `json:"carry,omitempty"`
}

// DefaultChecksPerRun and MaxChecksPerRun bound Input.ChecksPerRun: 300
// checks are a few thousand history events, well under Temporal's limits.
const (
	DefaultChecksPerRun = 300
	MaxChecksPerRun     = 1000
)

// checksPerRun is ChecksPerRun with its default applied.
func (in Input) checksPerRun() int {
	if in.ChecksPerRun == 0 {
		return DefaultChecksPerRun
	}
	return in.ChecksPerRun
}

// Step is one step: serve Percent% of targeting keys the variant,
// hold HoldSeconds, then judge.
type Step struct {
	Percent     int `json:"percent"`
	HoldSeconds int `json:"hold_seconds"`
}

// GuardInput is the guard as a request gives it: every field but Source may
// be left out, and absent differs from zero (0 is a valid delta).
type GuardInput struct {
	Source                    string           `json:"source"`
	IntervalSeconds           *int             `json:"interval_seconds,omitempty"`
	MinSamples                *int             `json:"min_samples,omitempty"`
	MaxErrorRateDelta         *float64         `json:"max_error_rate_delta,omitempty"`
	MaxLatencyRatio           *float64         `json:"max_latency_ratio,omitempty"`
	MaxErrorRate              *float64         `json:"max_error_rate,omitempty"`
	MaxP95LatencyMs           *float64         `json:"max_p95_latency_ms,omitempty"`
	FailureLimit              *int             `json:"failure_limit,omitempty"`
	MaxInconclusiveExtensions *int             `json:"max_inconclusive_extensions,omitempty"`
	Prometheus                *PrometheusGuard `json:"prometheus,omitempty"`
}

// PrometheusGuard says how to read a cohort's numbers from Prometheus: the
// server is the platform's (PLATFORM_PROMETHEUS_URL), never the request's,
// so that a rollout cannot make the worker dial an address of its choosing.
// Each query is a PromQL template: {{variant}} becomes the cohort's variant
// (escaped for a PromQL string), {{flag}} the flag key and {{window}} the
// time since the step began, e.g. "90s". Every query must select its series
// with the matchers label="{{flag}}" and label="{{variant}}", so that the
// cohorts differ and flags sharing variant names (on, off) do not mix.
// ErrorRateQuery must give a fraction (0..1) and LatencyQuery the p95
// latency in milliseconds, each as a scalar or a one-series vector.
// SamplesQuery, optional, gives the cohort's request count; without it a
// cohort with an error rate counts as min_samples requests, and the query
// should then only answer when there is enough traffic.
type PrometheusGuard struct {
	ErrorRateQuery string `json:"error_rate_query"`
	LatencyQuery   string `json:"latency_query"`
	SamplesQuery   string `json:"samples_query,omitempty"`
}

// GuardSpec is the effective guard: thresholds with defaults applied, the
// source and how often it is checked.
type GuardSpec struct {
	Source          string `json:"source"`
	IntervalSeconds int    `json:"interval_seconds"`
	guard.Guard
	Prometheus *PrometheusGuard `json:"prometheus,omitempty"`
}

// Effective applies the defaults.
func (g GuardInput) Effective() GuardSpec {
	d := guard.Defaults()
	out := GuardSpec{Source: g.Source, IntervalSeconds: DefaultIntervalSeconds, Guard: d, Prometheus: g.Prometheus}
	setInt(&out.IntervalSeconds, g.IntervalSeconds)
	setInt(&out.MinSamples, g.MinSamples)
	setFloat(&out.MaxErrorRateDelta, g.MaxErrorRateDelta)
	setFloat(&out.MaxLatencyRatio, g.MaxLatencyRatio)
	setFloat(&out.MaxErrorRate, g.MaxErrorRate)
	setFloat(&out.MaxP95LatencyMs, g.MaxP95LatencyMs)
	setInt(&out.FailureLimit, g.FailureLimit)
	setInt(&out.MaxInconclusiveExtensions, g.MaxInconclusiveExtensions)
	return out
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setFloat(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

// Validate reports every problem of the input with a JSON pointer into it.
// The flag's existence and variants are checked where the flag can be read
// (the API and the workflow's first activity).
func (in Input) Validate() []validation.FieldError {
	var v specErrors
	if !flags.ValidKey(in.Flag) {
		v.add("#/flag", "invalid", "must be a flag key: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
	}
	if in.Variant == "" {
		v.add("#/variant", "required", "must name the variant to roll out")
	}
	if in.Control != "" && in.Control == in.Variant {
		v.add("#/control", "invalid", "must differ from variant")
	}
	if in.ChecksPerRun < 0 || in.ChecksPerRun > MaxChecksPerRun {
		v.add("#/checks_per_run", "out_of_range", "must be between 1 and %d, or left out", MaxChecksPerRun)
	}
	v.checkSteps(in.Steps)
	v.checkGuard(in.Guard)
	return v.errs
}

type specErrors struct{ errs []validation.FieldError }

func (v *specErrors) add(ptr, code, format string, args ...any) {
	v.errs = append(v.errs, validation.FieldError{Pointer: ptr, Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (v *specErrors) checkSteps(steps []Step) {
	if len(steps) == 0 || len(steps) > MaxSteps {
		v.add("#/steps", "out_of_range", "must list 1 to %d steps", MaxSteps)
		return
	}
	prev := 0
	for i, s := range steps {
		ptr := "#/steps/" + strconv.Itoa(i)
		switch {
		case s.Percent < 1 || s.Percent > 100:
			v.add(ptr+"/percent", "out_of_range", "must be between 1 and 100")
		case s.Percent <= prev:
			v.add(ptr+"/percent", "invalid", "must be greater than the previous step's %d", prev)
		}
		if s.HoldSeconds < 1 || s.HoldSeconds > MaxHoldSeconds {
			v.add(ptr+"/hold_seconds", "out_of_range", "must be between 1 and %d", MaxHoldSeconds)
		}
		prev = max(prev, s.Percent)
	}
	if last := steps[len(steps)-1].Percent; last != 100 {
		v.add("#/steps/"+strconv.Itoa(len(steps)-1)+"/percent", "invalid", "the last step must reach 100, not %d", last)
	}
	if steps[0].Percent >= 100 {
		// With everyone on the variant there is no control cohort to compare
		// with; later 100% steps compare with the last step's control.
		v.add("#/steps/0/percent", "invalid", "the first step must be below 100 so that the control cohort can be measured")
	}
}

func (v *specErrors) checkGuard(in GuardInput) {
	g := in.Effective()
	switch g.Source {
	case GuardSourceEvents:
		if g.Prometheus != nil {
			v.add("#/guard/prometheus", "invalid", "is only used with source %q", GuardSourcePrometheus)
		}
	case GuardSourcePrometheus:
		v.checkPrometheus(g.Prometheus)
	case "":
		v.add("#/guard/source", "required", "must be %q or %q", GuardSourceEvents, GuardSourcePrometheus)
	default:
		v.add("#/guard/source", "invalid", "must be %q or %q", GuardSourceEvents, GuardSourcePrometheus)
	}
	if g.IntervalSeconds < 1 || g.IntervalSeconds > MaxIntervalSeconds {
		v.add("#/guard/interval_seconds", "out_of_range", "must be between 1 and %d", MaxIntervalSeconds)
	}
	v.errs = append(v.errs, g.Guard.Validate()...)
}

func (v *specErrors) checkPrometheus(p *PrometheusGuard) {
	const base = "#/guard/prometheus"
	if p == nil {
		v.add(base, "required", "is required with source %q", GuardSourcePrometheus)
		return
	}
	for _, q := range []struct{ name, query string }{
		{"error_rate_query", p.ErrorRateQuery}, {"latency_query", p.LatencyQuery}, {"samples_query", p.SamplesQuery},
	} {
		switch {
		case q.name == "samples_query" && q.query == "":
		case strings.TrimSpace(q.query) == "":
			v.add(base+"/"+q.name, "required", "must be a PromQL template")
		case !flagMatcher.MatchString(q.query) || !variantMatcher.MatchString(q.query):
			v.add(base+"/"+q.name, "invalid", `must select its series with label="{{flag}}" and label="{{variant}}" matchers, so that treatment and control differ and other flags do not mix in`)
		}
	}
}

// flagMatcher and variantMatcher find an equality label matcher on the
// placeholder, e.g. flag="{{flag}}". They check a convention that keeps
// cohorts apart, not a security boundary: the server is the operator's.
var (
	flagMatcher    = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\s*=\s*"\{\{flag\}\}"`)
	variantMatcher = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\s*=\s*"\{\{variant\}\}"`)
)
