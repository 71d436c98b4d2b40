// Package experiment is the evidence of the load experiments (capacity,
// db_degraded, cache_degraded): the endpoint classes the load mixes, what
// one step of a ramp measured per class, the knee search and the stop
// condition. It is a leaf like package drills: the activity that measures,
// the workflow that judges and the report that draws all share it, and
// every judgement here is a pure function with table tests.
package experiment

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Endpoint classes of the load's request mix.
const (
	ClassGetByID = "get_by_id" // GET /v1/jobs/{id}
	ClassList    = "list"      // GET /v1/jobs?limit=20
	ClassCreate  = "create"    // POST /v1/jobs with an Idempotency-Key
	ClassOFREP   = "ofrep"     // POST /ofrep/v1/evaluate/flags/{key}
)

// Classes lists the classes in the order reports show them.
var Classes = []string{ClassGetByID, ClassList, ClassCreate, ClassOFREP}

// DefaultP99 is each class's latency bound in milliseconds: the p99 under
// which a step still counts as within capacity. They are the latency
// thresholds of the SLOs in package slo (reads 250 ms for GET by id and
// lists, job start 500 ms for POST /v1/jobs, OFREP 50 ms, all at p99); a
// test in activities/drill keeps the two equal (this leaf may not import
// slo).
var DefaultP99 = map[string]float64{ClassGetByID: 250, ClassList: 250, ClassCreate: 500, ClassOFREP: 50}

// MaxErrorRate is the error rate at or above which a step is past the knee.
const MaxErrorRate = 0.001

// ClassStats is what one class's requests of one step saw. Errors are
// requests with no answer or a 5xx; Limited are 429s (the platform's own
// rate limit, reported, neither an error nor a success).
type ClassStats struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Limited  int     `json:"limited"`
	Rate     float64 `json:"rate"` // requests per second offered to this class
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
}

// ErrorRate is Errors over Requests, 0 for no requests.
func (c ClassStats) ErrorRate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Requests)
}

// Within reports whether the class held its bound: p99 under p99ms and
// errors under MaxErrorRate, over at least one request.
func (c ClassStats) Within(p99ms float64) bool {
	return c.Requests > 0 && c.P99 < p99ms && c.ErrorRate() < MaxErrorRate
}

// Step is one rate of a ramp.
type Step struct {
	Rate    float64               `json:"rate"` // requests per second offered in all
	Seconds float64               `json:"seconds"`
	Classes map[string]ClassStats `json:"classes"`
}

// Knee is the highest rate a class sustained within its bound: ramping up,
// the class's offered rate at the last step before the first step where it
// broke its bound. OK is false when the class broke it at the first step.
type Knee struct {
	Class string  `json:"class"`
	Rate  float64 `json:"rate"`
	Step  int     `json:"step"` // index into the ramp's steps; -1 without a knee
	OK    bool    `json:"ok"`
	// Reached is true when the class broke its bound within the ramp: the
	// knee is then measured, otherwise it is at least Rate.
	Reached bool `json:"reached"`
}

// FindKnee searches steps, in ramp order, for class's knee.
func FindKnee(steps []Step, class string, p99ms float64) Knee {
	k := Knee{Class: class, Step: -1}
	for i, s := range steps {
		c, ok := s.Classes[class]
		if !ok || c.Requests == 0 {
			continue
		}
		if !c.Within(p99ms) {
			k.Reached = true
			return k
		}
		k.Rate, k.Step, k.OK = c.Rate, i, true
	}
	return k
}

// Knees finds every class's knee with its bound from bounds (DefaultP99
// for a class it does not name).
func Knees(steps []Step, bounds map[string]float64) []Knee {
	out := make([]Knee, 0, len(Classes))
	for _, c := range Classes {
		b, ok := bounds[c]
		if !ok {
			b = DefaultP99[c]
		}
		out = append(out, FindKnee(steps, c, b))
	}
	return out
}

// Breaker is the stop condition of a running experiment: it trips when
// the error rate or the p99 stays past its bound for longer than Grace.
// It is fed one window at a time, in order.
type Breaker struct {
	MaxErrorRate float64
	MaxP99       float64 // milliseconds
	Grace        time.Duration

	since  time.Time // when the bounds were first passed, zero while within
	reason string
}

// Observe feeds one window ending at at; it returns why to stop, or "".
func (b *Breaker) Observe(at time.Time, errorRate, p99ms float64) string {
	var why string
	switch {
	case errorRate > b.MaxErrorRate:
		why = fmt.Sprintf("error rate %.1f %% above %.1f %%", 100*errorRate, 100*b.MaxErrorRate)
	case p99ms > b.MaxP99:
		why = fmt.Sprintf("p99 %.0f ms above %.0f ms", p99ms, b.MaxP99)
	}
	if why == "" {
		b.since, b.reason = time.Time{}, ""
		return ""
	}
	if b.since.IsZero() {
		b.since = at
	}
	b.reason = why
	if at.Sub(b.since) > b.Grace {
		return fmt.Sprintf("%s for %s (grace %s)", why, at.Sub(b.since).Round(time.Millisecond), b.Grace)
	}
	return ""
}

// Measurement names of a ramp, so the report and the charts can rebuild
// the steps from a drill's measurements alone: step_NN_rate and
// step_NN_<class>_<stat>.
func StepKey(i int, rest string) string { return fmt.Sprintf("step_%02d_%s", i, rest) }

// StepMeasurements flattens steps into measurements.
func StepMeasurements(steps []Step) map[string]float64 {
	out := map[string]float64{}
	for i, s := range steps {
		out[StepKey(i, "rate")] = s.Rate
		for class, c := range s.Classes {
			out[StepKey(i, class+"_p50_ms")] = c.P50
			out[StepKey(i, class+"_p90_ms")] = c.P90
			out[StepKey(i, class+"_p99_ms")] = c.P99
			out[StepKey(i, class+"_error_rate")] = c.ErrorRate()
			out[StepKey(i, class+"_rate")] = c.Rate
		}
	}
	return out
}

// KneeKey names a class's knee measurement.
func KneeKey(class string) string { return "knee_" + class + "_rps" }

// Series is one class's ramp rebuilt from measurements.
type Series struct {
	Class   string
	Points  []Point
	Knee    float64 // offered rate of the class at its knee; 0 if none
	HasKnee bool
}

// Point is one step of a class.
type Point struct {
	Rate, P50, P90, P99, ErrorRate float64
}

// FromMeasurements rebuilds each class's series from a drill's
// measurements; classes with no steps are left out.
func FromMeasurements(m map[string]float64) []Series {
	steps := map[int]bool{}
	for k := range m {
		rest, ok := strings.CutPrefix(k, "step_")
		if !ok || len(rest) < 3 {
			continue
		}
		if i, err := strconv.Atoi(rest[:2]); err == nil {
			steps[i] = true
		}
	}
	idx := make([]int, 0, len(steps))
	for i := range steps {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var out []Series
	for _, class := range Classes {
		s := Series{Class: class}
		for _, i := range idx {
			rate, ok := m[StepKey(i, class+"_rate")]
			if !ok {
				continue
			}
			s.Points = append(s.Points, Point{Rate: rate, P50: m[StepKey(i, class+"_p50_ms")], P90: m[StepKey(i, class+"_p90_ms")],
				P99: m[StepKey(i, class+"_p99_ms")], ErrorRate: m[StepKey(i, class+"_error_rate")]})
		}
		if len(s.Points) == 0 {
			continue
		}
		s.Knee, s.HasKnee = m[KneeKey(class)]
		out = append(out, s)
	}
	return out
}
