package drills

import (
	"testing"
	"time"
)

func TestFinal(t *testing.T) {
	for status, want := range map[string]bool{Queued: false, Running: false, Succeeded: true, Failed: true, Aborted: true} {
		if Final(status) != want {
			t.Errorf("Final(%s) = %v", status, !want)
		}
	}
}

func TestSeconds(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(1500 * time.Millisecond)
	tests := []struct {
		name     string
		got      float64
		expected float64
	}{
		{"to the millisecond", Seconds(1234567 * time.Microsecond), 1.234},
		{"never negative", Seconds(-time.Second), 0},
		{"a finished step", Step{StartedAt: t0, FinishedAt: &t1}.Seconds(), 1.5},
		{"a running step", Step{StartedAt: t0}.Seconds(), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.expected {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.expected)
		}
	}
}
