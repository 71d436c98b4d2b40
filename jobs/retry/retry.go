// Package retry is the arithmetic of a job's retry policy: its defaults and
// limits, the validation of a requested policy, the backoff after a failed
// attempt and the decision whether to try again. Workflows only orchestrate
// what it decides.
package retry

import (
	"fmt"
	"math"
	"time"
)

// Policy says how a job retries. Intervals are in seconds, as clients write
// them; the JSON form is the one clients send and the one stored with a job.
type Policy struct {
	MaxAttempts            int     `json:"max_attempts"`
	InitialIntervalSeconds float64 `json:"initial_interval_seconds"`
	MaxIntervalSeconds     float64 `json:"max_interval_seconds"`
	BackoffCoefficient     float64 `json:"backoff_coefficient"`
	TTLSeconds             int     `json:"ttl_seconds"`
}

// Defaults is the policy of a job that asks for none.
func Defaults() Policy {
	return Policy{MaxAttempts: 5, InitialIntervalSeconds: 1, MaxIntervalSeconds: 60, BackoffCoefficient: 2, TTLSeconds: 3600}
}

// Limits of each field. MaxAttempts is bounded so that a job's workflow
// history stays small (a few events per attempt).
const (
	MinAttempts    = 1
	MaxAttempts    = 100
	MinInterval    = 0.1
	MaxInitial     = 3600.0
	MaxMaxInterval = 86400.0
	MinCoefficient = 1.0
	MaxCoefficient = 10.0
	MinTTL         = 1
	MaxTTL         = 7 * 24 * 3600
)

// Overrides is a requested policy: every field is optional and falls back to
// Defaults.
type Overrides struct {
	MaxAttempts            *int     `json:"max_attempts"`
	InitialIntervalSeconds *float64 `json:"initial_interval_seconds"`
	MaxIntervalSeconds     *float64 `json:"max_interval_seconds"`
	BackoffCoefficient     *float64 `json:"backoff_coefficient"`
	TTLSeconds             *int     `json:"ttl_seconds"`
}

// Issue is one invalid field: its JSON name, a stable code and a human detail.
type Issue struct {
	Field  string
	Code   string
	Detail string
}

// Resolve applies o over Defaults and validates the result, returning every
// invalid field.
func (o Overrides) Resolve() (Policy, []Issue) {
	p := Defaults()
	set(&p.MaxAttempts, o.MaxAttempts)
	set(&p.InitialIntervalSeconds, o.InitialIntervalSeconds)
	set(&p.MaxIntervalSeconds, o.MaxIntervalSeconds)
	set(&p.BackoffCoefficient, o.BackoffCoefficient)
	set(&p.TTLSeconds, o.TTLSeconds)
	return p, p.Validate()
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Validate returns every field of p outside its limits.
func (p Policy) Validate() []Issue {
	var issues []Issue
	out := func(field string, lo, hi any) {
		issues = append(issues, Issue{Field: field, Code: "out_of_range", Detail: fmt.Sprintf("must be between %v and %v", lo, hi)})
	}
	if p.MaxAttempts < MinAttempts || p.MaxAttempts > MaxAttempts {
		out("max_attempts", MinAttempts, MaxAttempts)
	}
	initialOK := inRange(p.InitialIntervalSeconds, MinInterval, MaxInitial)
	if !initialOK {
		out("initial_interval_seconds", MinInterval, MaxInitial)
	}
	switch {
	case !inRange(p.MaxIntervalSeconds, MinInterval, MaxMaxInterval):
		out("max_interval_seconds", MinInterval, MaxMaxInterval)
	case initialOK && p.MaxIntervalSeconds < p.InitialIntervalSeconds:
		issues = append(issues, Issue{Field: "max_interval_seconds", Code: "out_of_range",
			Detail: fmt.Sprintf("must be at least initial_interval_seconds (%v)", p.InitialIntervalSeconds)})
	}
	if !inRange(p.BackoffCoefficient, MinCoefficient, MaxCoefficient) {
		out("backoff_coefficient", MinCoefficient, MaxCoefficient)
	}
	if p.TTLSeconds < MinTTL || p.TTLSeconds > MaxTTL {
		out("ttl_seconds", MinTTL, MaxTTL)
	}
	return issues
}

func inRange(v, lo, hi float64) bool { return !math.IsNaN(v) && v >= lo && v <= hi }

// TTL is how long after the job's start attempts may begin.
func (p Policy) TTL() time.Duration { return time.Duration(p.TTLSeconds) * time.Second }

// Deadline is the last moment an attempt may begin for a job started at start.
func (p Policy) Deadline(start time.Time) time.Time { return start.Add(p.TTL()) }

// Backoff is the wait after failed attempt n (1-based):
// min(max_interval, initial × coefficient^(n-1)).
func (p Policy) Backoff(n int) time.Duration {
	secs := p.InitialIntervalSeconds * math.Pow(p.BackoffCoefficient, float64(max(n, 1)-1))
	if math.IsInf(secs, 0) || math.IsNaN(secs) || secs > p.MaxIntervalSeconds {
		secs = p.MaxIntervalSeconds
	}
	return seconds(secs)
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

// Stop says why a job stops retrying.
type Stop int

// Reasons to stop.
const (
	// Continue means: retry after Decision.Delay.
	Continue Stop = iota
	// NotRetryable: the failure cannot heal by itself (a 4xx, bad input, a
	// refused target, a corrupt file).
	NotRetryable
	// AttemptsExhausted: max_attempts attempts have failed.
	AttemptsExhausted
	// DeadlinePassed: the next attempt would begin after the TTL.
	DeadlinePassed
)

// Failure is what the workflow knows of a failed attempt.
type Failure struct {
	Attempt    int           // 1-based number of the attempt that failed
	Retryable  bool          // false for failures that no retry can fix
	RetryAfter time.Duration // the receiver's Retry-After, 0 when none
}

// Decision is what to do after a failed attempt.
type Decision struct {
	Stop  Stop
	Delay time.Duration // wait before the next attempt when Stop is Continue
}

// Next decides what follows failure f at now, for a job whose attempts must
// begin by deadline. The wait is the backoff, or the receiver's Retry-After
// when that is longer; when the next attempt would begin after the deadline
// the job stops at once rather than sleeping into certain failure.
func (p Policy) Next(f Failure, now, deadline time.Time) Decision {
	switch {
	case !f.Retryable:
		return Decision{Stop: NotRetryable}
	case f.Attempt >= p.MaxAttempts:
		return Decision{Stop: AttemptsExhausted}
	}
	delay := max(p.Backoff(f.Attempt), f.RetryAfter)
	if now.Add(delay).After(deadline) {
		return Decision{Stop: DeadlinePassed}
	}
	return Decision{Stop: Continue, Delay: delay}
}
