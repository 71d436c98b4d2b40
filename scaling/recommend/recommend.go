// Package recommend is the autoscaler's judgement: from the signals of one
// interval, the recommendations of past intervals and the changes made
// recently, it decides the replica count the way the Kubernetes HPA does
// (autoscaling/v2: per-metric ratios, tolerance, the largest recommendation
// wins, stabilization windows, rate policies with selectPolicy Max, and
// min/max), and says why a count did not move. It does no I/O.
package recommend

import (
	"math"
	"time"

	"github.com/acme/platform/scaling"
)

// Reading is one signal of one interval. Kind says how its recommendation
// is made.
type Reading struct {
	Name string
	// Value is nil when the signal could not be read (a missing signal).
	Value  *float64
	Target float64
	// Total marks a signal whose value is a total across replicas (the
	// backlog, HPA's AverageValue): desired = ceil(value / target).
	// Otherwise the value is per replica (utilization, latency, backlog
	// age; HPA's Utilization): desired = ceil(current * value / target).
	Total bool
}

// Point is a past recommendation (HPA keeps these per target).
type Point struct {
	At       time.Time `json:"at"`
	Replicas int32     `json:"replicas"`
}

// Change is a past change of the replica count, for rate policies.
type Change struct {
	At    time.Time `json:"at"`
	Delta int32     `json:"delta"`
}

// Input is everything the recommender needs.
type Input struct {
	Now      time.Time
	Current  int32
	Readings []Reading
	Policy   scaling.Policy
	// History holds past combined recommendations, oldest first.
	History []Point
	// Changes holds past changes of the count, oldest first.
	Changes []Change
}

// Result is the decision, with every intermediate number.
type Result struct {
	Signals     []scaling.SignalReading
	Combined    int32
	Stabilized  int32
	RateLimited int32
	Desired     int32
	// Reason says why Desired equals Current ("" when it differs).
	Reason string
	Notes  []string
	// History is in.History plus this interval's recommendation, without
	// points older than the longest window.
	History []Point
}

// Decide runs the algorithm.
func Decide(in Input) Result {
	p := in.Policy
	cur := max(in.Current, 1)
	var r Result
	combined, missing, read, withinTolerance := int32(0), false, false, true
	for _, rd := range in.Readings {
		sr := scaling.SignalReading{Name: rd.Name, Value: rd.Value, Target: rd.Target}
		if rd.Value == nil {
			missing = true
		} else {
			sr.Replicas = perSignal(rd, cur, p.Tolerance)
			combined = max(combined, sr.Replicas)
			read = true
			if sr.Replicas != cur {
				withinTolerance = false
			}
		}
		r.Signals = append(r.Signals, sr)
	}
	if !read { // no signal read: hold
		combined = cur
		r.Notes = append(r.Notes, "no signal could be read")
	}
	if missing && combined < cur {
		// HPA: never scale down on a partial view.
		combined = cur
		r.Notes = append(r.Notes, "scale-down held: a signal is missing")
	}
	r.Combined = combined
	r.Stabilized = stabilize(in.Now, cur, combined, in.History, p)
	r.History = prune(append(append([]Point(nil), in.History...), Point{At: in.Now, Replicas: combined}), in.Now, p)
	r.RateLimited = rateLimit(in.Now, cur, r.Stabilized, in.Changes, p)
	if r.RateLimited != r.Stabilized && r.RateLimited != cur {
		r.Notes = append(r.Notes, "step capped by a rate policy")
	}
	r.Desired = min(max(r.RateLimited, p.MinReplicas), p.MaxReplicas)
	if r.Desired != r.RateLimited {
		r.Notes = append(r.Notes, "clamped to min/max")
	}
	if r.Desired == in.Current {
		r.Reason = reason(in.Current, r, missing, withinTolerance)
	}
	return r
}

// perSignal is one signal's recommendation, or the current count when the
// signal is within tolerance of its target.
func perSignal(rd Reading, cur int32, tolerance float64) int32 {
	v := *rd.Value
	var ratio, desired float64
	if rd.Total {
		ratio = v / float64(cur) / rd.Target
		desired = math.Ceil(v / rd.Target)
	} else {
		ratio = v / rd.Target
		desired = math.Ceil(float64(cur) * ratio)
	}
	if math.Abs(ratio-1) <= tolerance {
		return cur
	}
	return int32(min(desired, math.MaxInt32))
}

// stabilize is HPA's stabilizeRecommendationWithBehaviors: scale up to no
// more than the lowest recommendation of the scale-up window, down to no
// less than the highest of the scale-down window.
func stabilize(now time.Time, cur, rec int32, history []Point, p scaling.Policy) int32 {
	up, down := rec, rec
	upFrom := now.Add(-time.Duration(p.ScaleUp.StabilizationSeconds) * time.Second)
	downFrom := now.Add(-time.Duration(p.ScaleDown.StabilizationSeconds) * time.Second)
	for _, h := range history {
		if h.At.After(upFrom) {
			up = min(up, h.Replicas)
		}
		if h.At.After(downFrom) {
			down = max(down, h.Replicas)
		}
	}
	out := cur
	if out < up {
		out = up
	}
	if out > down {
		out = down
	}
	return out
}

// prune drops recommendations older than either window.
func prune(h []Point, now time.Time, p scaling.Policy) []Point {
	keep := time.Duration(max(p.ScaleUp.StabilizationSeconds, p.ScaleDown.StabilizationSeconds)) * time.Second
	from := now.Add(-keep)
	out := h[:0]
	for _, pt := range h {
		if !pt.At.Before(from) {
			out = append(out, pt)
		}
	}
	return out
}

// rateLimit is HPA's calculateScaleUpLimitWithScalingRules and its
// scale-down twin with selectPolicy Max: of the policies, the one that
// allows the largest change wins. The start of the period is the count
// before the changes made within it.
func rateLimit(now time.Time, cur, want int32, changes []Change, p scaling.Policy) int32 {
	switch {
	case want > cur:
		b := p.ScaleUp
		start := cur - sumChanges(now, changes, b.PeriodSeconds, true)
		limit := int32(0)
		if b.MaxStepPercent > 0 {
			limit = max(limit, int32(math.Ceil(float64(start)*(1+float64(b.MaxStepPercent)/100))))
		}
		if b.MaxStepReplicas > 0 {
			limit = max(limit, start+int32(b.MaxStepReplicas))
		}
		return max(min(want, limit), cur)
	case want < cur:
		b := p.ScaleDown
		start := cur - sumChanges(now, changes, b.PeriodSeconds, false)
		limit := int32(math.MaxInt32)
		if b.MaxStepPercent > 0 {
			limit = min(limit, int32(math.Floor(float64(start)*(1-float64(b.MaxStepPercent)/100))))
		}
		if b.MaxStepReplicas > 0 {
			limit = min(limit, start-int32(b.MaxStepReplicas))
		}
		return min(max(want, limit), cur)
	}
	return cur
}

// sumChanges adds the ups (or downs, negative) made within the period.
func sumChanges(now time.Time, changes []Change, periodSeconds int, up bool) int32 {
	from := now.Add(-time.Duration(periodSeconds) * time.Second)
	var sum int32
	for _, c := range changes {
		if c.At.After(from) && (c.Delta > 0) == up {
			sum += c.Delta
		}
	}
	return sum
}

// reason names the first stage that kept the count where it was.
func reason(cur int32, r Result, missing, withinTolerance bool) string {
	switch {
	case missing && r.Combined == cur && len(r.Notes) > 0:
		return scaling.ReasonMissingSignal
	case r.Combined == cur && withinTolerance:
		return scaling.ReasonTolerance
	case r.Combined == cur:
		return scaling.ReasonNoChange
	case r.Stabilized == cur:
		return scaling.ReasonWindow
	case r.RateLimited == cur:
		return scaling.ReasonRatePolicy
	default:
		return scaling.ReasonBounds
	}
}

// PruneChanges drops changes older than both periods.
func PruneChanges(changes []Change, now time.Time, p scaling.Policy) []Change {
	from := now.Add(-time.Duration(max(p.ScaleUp.PeriodSeconds, p.ScaleDown.PeriodSeconds)) * time.Second)
	var out []Change
	for _, c := range changes {
		if c.At.After(from) {
			out = append(out, c)
		}
	}
	return out
}
