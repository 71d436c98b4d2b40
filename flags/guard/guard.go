// Package guard judges a rollout step: after each step's hold, the platform
// compares the treatment cohort (users on the new variant) with the control
// cohort and decides whether to advance, hold longer, or roll back. Both
// decisions are pure functions of their inputs, so they are easy to test and
// to replay from recorded observations.
package guard

import (
	"fmt"
	"math"

	"github.com/acme/platform/internal/validation"
)

// Guard holds the thresholds of a rollout step.
type Guard struct {
	// MinSamples is the number of requests each cohort needs before the
	// step can be judged at all.
	MinSamples int `json:"min_samples"`
	// MaxErrorRateDelta is how much higher the treatment's error rate may be
	// than the control's, as a fraction (0.01 = one percentage point).
	MaxErrorRateDelta float64 `json:"max_error_rate_delta"`
	// MaxLatencyRatio is how many times the control's p95 latency the
	// treatment's may be.
	MaxLatencyRatio float64 `json:"max_latency_ratio"`
	// MaxErrorRate caps the treatment's error rate whatever the control
	// does; 0 means no cap.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxP95LatencyMs caps the treatment's p95 latency whatever the control
	// does; 0 means no cap.
	MaxP95LatencyMs float64 `json:"max_p95_latency_ms"`
	// FailureLimit is how many failed checks in one step roll it back.
	FailureLimit int `json:"failure_limit"`
	// MaxInconclusiveExtensions is how many times an inconclusive check may
	// extend the hold before the step is stuck.
	MaxInconclusiveExtensions int `json:"max_inconclusive_extensions"`
}

// Defaults returns the platform's default thresholds.
func Defaults() Guard {
	return Guard{
		MinSamples:                200,
		MaxErrorRateDelta:         0.01,
		MaxLatencyRatio:           1.25,
		FailureLimit:              2,
		MaxInconclusiveExtensions: 3,
	}
}

// Validate reports every threshold that cannot be used. Judge treats a guard
// with errors as unable to pass anything.
func (g Guard) Validate() []validation.FieldError {
	var errs []validation.FieldError
	add := func(field, code, format string, args ...any) {
		errs = append(errs, validation.FieldError{Pointer: "#/guard/" + field, Code: code, Detail: fmt.Sprintf(format, args...)})
	}
	if g.MinSamples < 1 {
		// With no minimum, an empty cohort would have a 0% error rate and pass.
		add("min_samples", "out_of_range", "min_samples must be at least 1, not %d", g.MinSamples)
	}
	if !fraction(g.MaxErrorRateDelta) {
		add("max_error_rate_delta", "out_of_range", "max_error_rate_delta must be between 0 and 1, not %v", g.MaxErrorRateDelta)
	}
	if !finite(g.MaxLatencyRatio) || g.MaxLatencyRatio <= 0 {
		add("max_latency_ratio", "out_of_range", "max_latency_ratio must be a positive number, not %v", g.MaxLatencyRatio)
	}
	if !fraction(g.MaxErrorRate) {
		add("max_error_rate", "out_of_range", "max_error_rate must be between 0 and 1 (0 for no cap), not %v", g.MaxErrorRate)
	}
	if !finite(g.MaxP95LatencyMs) || g.MaxP95LatencyMs < 0 {
		add("max_p95_latency_ms", "out_of_range", "max_p95_latency_ms must be 0 (no cap) or positive, not %v", g.MaxP95LatencyMs)
	}
	if g.FailureLimit < 1 {
		add("failure_limit", "out_of_range", "failure_limit must be at least 1, not %d", g.FailureLimit)
	}
	if g.MaxInconclusiveExtensions < 0 {
		add("max_inconclusive_extensions", "out_of_range", "max_inconclusive_extensions must not be negative, not %d", g.MaxInconclusiveExtensions)
	}
	return errs
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func fraction(f float64) bool { return finite(f) && f >= 0 && f <= 1 }
