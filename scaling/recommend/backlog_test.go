package recommend

import "testing"

func TestEffectiveBacklog(t *testing.T) {
	tests := []struct {
		name string
		in   QueueStats
		want float64
	}{
		{"empty", QueueStats{}, 0},
		{"a fresh count stands", QueueStats{Count: 12, AgeSeconds: 3, AddRate: 4}, 12},
		{"a stale count after a drain is zero", QueueStats{Count: 7}, 0},
		{"a count reset while tasks wait is estimated from age and rate", QueueStats{AgeSeconds: 5, AddRate: 2, DispatchRate: 1}, 10},
		{"a reset with no rate is at least one", QueueStats{AgeSeconds: 5}, 1},
	}
	for _, tt := range tests {
		if got := EffectiveBacklog(tt.in); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
