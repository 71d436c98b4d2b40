package retry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestResolve_AppliesDefaultsAndCollectsEveryIssue(t *testing.T) {
	cases := []struct {
		name   string
		in     Overrides
		want   Policy
		fields []string
	}{
		{"empty is the defaults", Overrides{}, Defaults(), nil},
		{"overrides win", Overrides{MaxAttempts: ptr(3), InitialIntervalSeconds: ptr(0.5), TTLSeconds: ptr(60)},
			Policy{MaxAttempts: 3, InitialIntervalSeconds: 0.5, MaxIntervalSeconds: 60, BackoffCoefficient: 2, TTLSeconds: 60}, nil},
		{"every field out of range", Overrides{MaxAttempts: ptr(0), InitialIntervalSeconds: ptr(0.0), MaxIntervalSeconds: ptr(1e9),
			BackoffCoefficient: ptr(0.5), TTLSeconds: ptr(MaxTTL + 1)}, Policy{},
			[]string{"max_attempts", "initial_interval_seconds", "max_interval_seconds", "backoff_coefficient", "ttl_seconds"}},
		{"too many attempts", Overrides{MaxAttempts: ptr(101)}, Policy{}, []string{"max_attempts"}},
		{"max below initial", Overrides{InitialIntervalSeconds: ptr(10.0), MaxIntervalSeconds: ptr(5.0)}, Policy{}, []string{"max_interval_seconds"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, issues := c.in.Resolve()
			var fields []string
			for _, i := range issues {
				fields = append(fields, i.Field)
			}
			if diff := cmp.Diff(c.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if c.fields == nil && got != c.want {
				t.Errorf("policy = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestBackoff_GrowsGeometricallyUpToTheMaximum(t *testing.T) {
	p := Policy{InitialIntervalSeconds: 1, MaxIntervalSeconds: 10, BackoffCoefficient: 2}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, p.Backoff(n))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
	if d := p.Backoff(100000); d != 10*time.Second {
		t.Errorf("huge attempt = %s, want the maximum", d)
	}
}

func TestNext_DecidesRetryStopOrTimeout(t *testing.T) {
	p := Policy{MaxAttempts: 3, InitialIntervalSeconds: 1, MaxIntervalSeconds: 60, BackoffCoefficient: 2, TTLSeconds: 100}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	deadline := p.Deadline(start)
	cases := []struct {
		name string
		f    Failure
		now  time.Time
		want Decision
	}{
		{"retryable first failure waits the initial interval", Failure{Attempt: 1, Retryable: true}, start, Decision{Delay: time.Second}},
		{"second failure doubles", Failure{Attempt: 2, Retryable: true}, start, Decision{Delay: 2 * time.Second}},
		{"a longer Retry-After wins", Failure{Attempt: 1, Retryable: true, RetryAfter: 30 * time.Second}, start, Decision{Delay: 30 * time.Second}},
		{"a shorter Retry-After loses", Failure{Attempt: 2, Retryable: true, RetryAfter: time.Second}, start, Decision{Delay: 2 * time.Second}},
		{"not retryable stops at once", Failure{Attempt: 1}, start, Decision{Stop: NotRetryable}},
		{"last attempt stops", Failure{Attempt: 3, Retryable: true}, start, Decision{Stop: AttemptsExhausted}},
		{"past the deadline times out", Failure{Attempt: 1, Retryable: true}, start.Add(99500 * time.Millisecond), Decision{Stop: DeadlinePassed}},
		{"exactly at the deadline still retries", Failure{Attempt: 1, Retryable: true}, start.Add(99 * time.Second), Decision{Delay: time.Second}},
		{"Retry-After beyond the TTL times out", Failure{Attempt: 1, Retryable: true, RetryAfter: time.Hour}, start, Decision{Stop: DeadlinePassed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := p.Next(c.f, c.now, deadline); got != c.want {
				t.Errorf("Next = %+v, want %+v", got, c.want)
			}
		})
	}
}
