package guard

import (
	"fmt"
	"math"
)

// Cohort is what one side of the comparison did during the hold.
type Cohort struct {
	// Samples is the number of requests observed.
	Samples int `json:"samples"`
	// Errors is how many of them failed.
	Errors int `json:"errors"`
	// P95LatencyMs is the 95th percentile latency; 0 means none was measured.
	P95LatencyMs float64 `json:"p95_latency_ms"`
}

// Observation pairs the two cohorts of a check.
type Observation struct {
	Control   Cohort `json:"control"`
	Treatment Cohort `json:"treatment"`
}

// Verdict is the outcome of one check.
type Verdict string

// Verdicts.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Reason codes in a Check.
const (
	ReasonInvalidGuard        = "invalid_guard"
	ReasonInvalidObservation  = "invalid_observation"
	ReasonTooFewSamples       = "too_few_samples"
	ReasonErrorRateDelta      = "error_rate_delta_exceeded"
	ReasonErrorRateCap        = "error_rate_cap_exceeded"
	ReasonLatencyRatio        = "latency_ratio_exceeded"
	ReasonLatencyCap          = "p95_latency_cap_exceeded"
	ReasonLatencyRatioUnknown = "latency_ratio_undefined"
)

// Reason is one finding behind a verdict.
type Reason struct {
	// Code is one of the Reason constants.
	Code string `json:"code"`
	// Message states the numbers.
	Message string `json:"message"`
}

// Check is a verdict with the numbers behind it. Every number is finite, so
// a Check always encodes to JSON.
type Check struct {
	Verdict Verdict  `json:"verdict"`
	Reasons []Reason `json:"reasons,omitempty"`
	// ControlErrorRate and TreatmentErrorRate are Errors/Samples (0 when
	// there are no samples).
	ControlErrorRate   float64 `json:"control_error_rate"`
	TreatmentErrorRate float64 `json:"treatment_error_rate"`
	// ErrorRateDelta is TreatmentErrorRate - ControlErrorRate.
	ErrorRateDelta float64 `json:"error_rate_delta"`
	// LatencyRatio is treatment p95 / control p95. It is 1 when neither
	// cohort measured latency and 0 when only the control did not, which a
	// ReasonLatencyRatioUnknown reason then explains.
	LatencyRatio float64 `json:"latency_ratio"`
	// Observation and Guard are the inputs, kept for the audit trail.
	Observation Observation `json:"observation"`
	Guard       Guard       `json:"guard"`
}

// tolerance absorbs floating-point noise at the thresholds: a delta that is
// exactly the limit, give or take rounding, passes.
const tolerance = 1e-9

// Judge compares treatment with control.
//
// The verdict is fail if any threshold is exceeded (relative: error-rate
// delta and latency ratio; absolute: MaxErrorRate and MaxP95LatencyMs when
// set); otherwise inconclusive if the evidence is not enough to pass; else
// pass. Evidence is not enough when either cohort has fewer than MinSamples
// requests, when the inputs are invalid, or when the control has no latency
// measurement but the treatment does: the ratio is then undefined, and
// passing would accept any treatment latency. (If neither cohort measured
// latency, latency is simply not compared.) Too few samples is always
// inconclusive, never pass or fail: small cohorts are noise.
func Judge(g Guard, o Observation) Check {
	c := Check{Verdict: Pass, Observation: o, Guard: g, LatencyRatio: 1}
	if errs := g.Validate(); len(errs) > 0 {
		return c.inconclusive(ReasonInvalidGuard, "the guard is invalid: %s", errs[0])
	}
	if msg := invalid(o); msg != "" {
		return c.inconclusive(ReasonInvalidObservation, "%s", msg)
	}
	c.ControlErrorRate = rate(o.Control)
	c.TreatmentErrorRate = rate(o.Treatment)
	c.ErrorRateDelta = c.TreatmentErrorRate - c.ControlErrorRate
	if o.Control.Samples < g.MinSamples || o.Treatment.Samples < g.MinSamples {
		return c.inconclusive(ReasonTooFewSamples, "control has %d samples and treatment %d; each needs %d",
			o.Control.Samples, o.Treatment.Samples, g.MinSamples)
	}
	c.judgeErrors()
	c.judgeLatency()
	return c
}

func (c Check) inconclusive(code, format string, args ...any) Check {
	c.Verdict = Inconclusive
	c.Reasons = append(c.Reasons, Reason{code, fmt.Sprintf(format, args...)})
	return c
}

// fail records a threshold breach; fail outranks inconclusive.
func (c *Check) fail(code, format string, args ...any) {
	c.Verdict = Fail
	c.Reasons = append(c.Reasons, Reason{code, fmt.Sprintf(format, args...)})
}

func (c *Check) judgeErrors() {
	g := c.Guard
	if c.ErrorRateDelta > g.MaxErrorRateDelta+tolerance {
		c.fail(ReasonErrorRateDelta, "treatment error rate %.4f is %.4f above control's %.4f; the limit is %.4f",
			c.TreatmentErrorRate, c.ErrorRateDelta, c.ControlErrorRate, g.MaxErrorRateDelta)
	}
	if g.MaxErrorRate > 0 && c.TreatmentErrorRate > g.MaxErrorRate+tolerance {
		c.fail(ReasonErrorRateCap, "treatment error rate %.4f is above the cap of %.4f", c.TreatmentErrorRate, g.MaxErrorRate)
	}
}

func (c *Check) judgeLatency() {
	g, ctl, trt := c.Guard, c.Observation.Control.P95LatencyMs, c.Observation.Treatment.P95LatencyMs
	if g.MaxP95LatencyMs > 0 && trt > g.MaxP95LatencyMs+tolerance {
		c.fail(ReasonLatencyCap, "treatment p95 latency %.1f ms is above the cap of %.1f ms", trt, g.MaxP95LatencyMs)
	}
	switch {
	case ctl == 0 && trt == 0:
		return // latency not measured on either side
	case ctl == 0:
		c.LatencyRatio = 0
		verdict := c.Verdict
		*c = c.inconclusive(ReasonLatencyRatioUnknown,
			"control p95 latency is 0 ms but treatment's is %.1f ms, so the latency ratio is undefined", trt)
		if verdict == Fail {
			c.Verdict = Fail // a breach elsewhere decides regardless
		}
		return
	}
	c.LatencyRatio = trt / ctl
	if c.LatencyRatio > g.MaxLatencyRatio+tolerance {
		c.fail(ReasonLatencyRatio, "treatment p95 latency %.1f ms is %.3f times control's %.1f ms; the limit is %.3f",
			trt, c.LatencyRatio, ctl, g.MaxLatencyRatio)
	}
}

func rate(c Cohort) float64 {
	if c.Samples == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Samples)
}

// invalid describes an impossible observation, or returns "".
func invalid(o Observation) string {
	for _, side := range []struct {
		name string
		c    Cohort
	}{{"control", o.Control}, {"treatment", o.Treatment}} {
		c := side.c
		switch {
		case c.Samples < 0 || c.Errors < 0:
			return fmt.Sprintf("%s has negative counts (%d samples, %d errors)", side.name, c.Samples, c.Errors)
		case c.Errors > c.Samples:
			return fmt.Sprintf("%s has more errors (%d) than samples (%d)", side.name, c.Errors, c.Samples)
		case math.IsNaN(c.P95LatencyMs) || math.IsInf(c.P95LatencyMs, 0) || c.P95LatencyMs < 0:
			return fmt.Sprintf("%s p95 latency %v is not a duration", side.name, c.P95LatencyMs)
		}
	}
	return ""
}
