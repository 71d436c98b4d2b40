package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/drills/invariants"
	"github.com/acme/platform/internal/validation"
)

// CapacityActivity runs the capacity experiment: with a key it mints for
// the run (and revokes after), it ramps a request mix against the
// platform's own API (PLATFORM_DRILL_API_URL, never a parameter), measures
// each step per endpoint class, reads the API's resources at the knee from
// its /metrics (PLATFORM_DRILL_METRICS_URL) and checks the invariants. It
// heartbeats; it is never retried, being an experiment with side effects.
const CapacityActivity = "platform.drill.capacity"

// CapacityStep is the capacity drill's step in the timeline.
const CapacityStep = "capacity"

// Bounds and defaults of capacity's params.
const (
	MinRampRate, MaxRampRate                      = 1, 5000
	DefaultStartRate, DefaultStepRate, DefaultMax = 20, 20, 200
	MinStepSeconds, MaxStepSeconds, DefaultStepS  = 2, 60, 5
	// MaxRampSteps bounds the ramp's work whatever the params.
	MaxRampSteps = 40
)

// capacityFields are capacity's params, in the order they are checked.
var capacityFields = []string{"start_rate", "step_rate", "max_rate", "step_seconds"}

// CapacityParams are capacity's parameters: a ramp from StartRate to
// MaxRate requests per second in steps of StepRate, StepSeconds each.
type CapacityParams struct {
	StartRate   int `json:"start_rate"`
	StepRate    int `json:"step_rate"`
	MaxRate     int `json:"max_rate"`
	StepSeconds int `json:"step_seconds"`
}

// Rates are the ramp's offered rates.
func (p CapacityParams) Rates() []int {
	var out []int
	for r := p.StartRate; r <= p.MaxRate && len(out) < MaxRampSteps; r += p.StepRate {
		out = append(out, r)
	}
	return out
}

// CapacityInput is CapacityActivity's input.
type CapacityInput struct {
	DrillID string         `json:"drill_id"`
	Params  CapacityParams `json:"params"`
}

// CapacityResult is what the ramp measured. A class that never held its
// bound, or a broken invariant, is a finding the workflow judges.
type CapacityResult struct {
	Steps []experiment.Step `json:"steps"`
	Knees []experiment.Knee `json:"knees"`
	// AtKnee are the API's resources during the step of the lowest knee:
	// cpu_seconds_per_second, rss_bytes, goroutines, pool_acquire_waits.
	AtKnee     map[string]float64  `json:"at_knee,omitempty"`
	Invariants []invariants.Result `json:"invariants"`
	// Stopped says why the ramp ended early (every class past its knee).
	Stopped string `json:"stopped,omitempty"`
}

// DecodeCapacityParams decodes capacity's params, filling the defaults.
func DecodeCapacityParams(raw json.RawMessage) (CapacityParams, []validation.FieldError) {
	p := CapacityParams{StartRate: DefaultStartRate, StepRate: DefaultStepRate, MaxRate: DefaultMax, StepSeconds: DefaultStepS}
	fields, errs := objectFields(raw, capacityFields, "capacity")
	if len(errs) > 0 {
		return p, errs
	}
	errs.intIn(fields, "start_rate", &p.StartRate, MinRampRate, MaxRampRate)
	errs.intIn(fields, "step_rate", &p.StepRate, MinRampRate, MaxRampRate)
	errs.intIn(fields, "max_rate", &p.MaxRate, MinRampRate, MaxRampRate)
	errs.intIn(fields, "step_seconds", &p.StepSeconds, MinStepSeconds, MaxStepSeconds)
	if len(errs) == 0 && p.MaxRate < p.StartRate {
		errs.add("#/params/max_rate", "out_of_range", "must be at least start_rate")
	}
	return p, errs
}

// objectFields decodes raw as an object of known members; absent or null
// is an empty object.
func objectFields(raw json.RawMessage, known []string, scenario string) (map[string]json.RawMessage, fieldErrors) {
	var errs fieldErrors
	fields := map[string]json.RawMessage{}
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return fields, nil
	}
	if trimmed[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		errs.add("#/params", "invalid_type", "must be an object")
		return fields, errs
	}
	for _, name := range sortedKeys(fields) {
		if !containsString(known, name) {
			errs.add("#/params/"+pointerToken(name), "unknown_field", "is not a parameter of the "+scenario+" scenario")
		}
	}
	return fields, errs
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// capacity runs the ramp and judges it: the drill fails when a class has
// no knee at all (it broke its bound at the lowest rate) or an invariant
// broke; a class that held through the whole ramp is reported as "at
// least" the top rate.
func (d *drill) capacity(ctx workflow.Context) error {
	p, _ := DecodeCapacityParams(d.in.Params)
	return d.step(ctx, CapacityStep, func(ctx workflow.Context) (string, error) {
		var res CapacityResult
		err := workflow.ExecuteActivity(capacityOptions(ctx, p), CapacityActivity, CapacityInput{DrillID: d.st.ID, Params: p}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		d.measure(capacityMeasurements(res))
		return capacityVerdict(res)
	})
}

func capacityMeasurements(res CapacityResult) map[string]float64 {
	out := experiment.StepMeasurements(res.Steps)
	for _, k := range res.Knees {
		if k.OK {
			out[experiment.KneeKey(k.Class)] = k.Rate
		}
	}
	for name, v := range res.AtKnee {
		out["at_knee_"+name] = v
	}
	out["ramp_steps"] = float64(len(res.Steps))
	invariantMeasurements(out, res.Invariants)
	return out
}

// invariantMeasurements records each invariant as invariant_<name>: 1 held, 0 broken.
func invariantMeasurements(out map[string]float64, rs []invariants.Result) {
	for _, r := range rs {
		v := 0.0
		if r.Held {
			v = 1
		}
		out["invariant_"+r.Name] = v
	}
}

func capacityVerdict(res CapacityResult) (string, error) {
	var knees, problems []string
	for _, k := range res.Knees {
		switch {
		case !k.OK:
			problems = append(problems, k.Class+" broke its bound at the lowest rate of the ramp")
		case k.Reached:
			knees = append(knees, fmt.Sprintf("%s %.0f/s", k.Class, k.Rate))
		default:
			knees = append(knees, fmt.Sprintf("%s ≥ %.0f/s", k.Class, k.Rate))
		}
	}
	problems = append(problems, brokenInvariants(res.Invariants)...)
	summary := fmt.Sprintf("%d steps; knees: %s", len(res.Steps), strings.Join(knees, ", "))
	if res.Stopped != "" {
		summary += "; ramp stopped: " + res.Stopped
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; ") + " — " + summary)
	}
	return summary, nil
}

func brokenInvariants(rs []invariants.Result) []string {
	var out []string
	for _, r := range rs {
		if !r.Held {
			out = append(out, "invariant "+r.Name+" broken: "+r.Detail)
		}
	}
	return out
}

// experimentHeartbeat: an abort must reach the load soon (the SDK sends
// heartbeats, which carry the cancellation, at most every 0.8 of the
// timeout), and a lost worker is noticed as soon, so the compensation that
// removes the toxics runs soon after. 10 s timed out under make chaos on a
// saturated 2-core machine (load, API, worker and Temporal in one box).
const experimentHeartbeat = 30 * time.Second

// capacityOptions: one attempt; the load's length bounds it.
func capacityOptions(ctx workflow.Context, p CapacityParams) workflow.Context {
	ramp := time.Duration(len(p.Rates())*p.StepSeconds) * time.Second
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2*ramp + 5*time.Minute, HeartbeatTimeout: experimentHeartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}
