package drill

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/config"
)

func TestDBHosts_ComeFromTheMultiHostURL(t *testing.T) {
	for url, want := range map[string][]string{
		"postgres://u@db1:5433,db2:5434/platform?target_session_attrs=read-write":               []string{"db1:5433", "db2:5434"},
		"postgres://u@db1,db2/platform?sslmode=prefer":                                          []string{"db1:5432", "db2:5432"},
		"postgres://u@127.0.0.1:6000,127.0.0.1:6001/platform?sslmode=disable&connect_timeout=3": []string{"127.0.0.1:6000", "127.0.0.1:6001"},
	} {
		a := &Activities{Config: config.Config{DatabaseURL: url}}
		hosts, err := a.dbHosts()
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.Addr)
			if len(h.cfg.Fallbacks) > 1 || h.cfg.ValidateConnect != nil {
				t.Errorf("%s: host %s would connect elsewhere or refuse a standby", url, h.Addr)
			}
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: hosts %v, want %v", url, got, want)
		}
	}
}

func TestHost_RefusesAnAddressNotInTheURL(t *testing.T) {
	a := &Activities{Config: config.Config{DatabaseURL: "postgres://u@db1:5432,db2:5432/platform"}}
	_, err := a.host("evil.example:5432")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable refusal", err)
	}
	if h, err := a.host("db2:5432"); err != nil || h.Addr != "db2:5432" {
		t.Errorf("db2 = %v, %v", h.Addr, err)
	}
}

func TestRPO(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := func(seq int64, ok bool) beat {
		at := t0.Add(time.Duration(seq) * 100 * time.Millisecond)
		return beat{seq: seq, start: at, end: at.Add(10 * time.Millisecond), ok: ok}
	}
	beats := []beat{b(1, true), b(2, true), b(3, false), b(4, true), b(5, true)}
	tests := []struct {
		name                   string
		present                map[int64]bool
		acked, failed, missing int
		seconds                float64
	}{
		{"nothing lost", map[int64]bool{1: true, 2: true, 4: true, 5: true}, 4, 1, 0, 0},
		{"the last two lost", map[int64]bool{1: true, 2: true}, 4, 1, 2, 0.3},
		{"a failed write is not a loss", map[int64]bool{1: true, 2: true, 3: true, 4: true, 5: true}, 4, 1, 0, 0},
		{"everything lost", map[int64]bool{}, 4, 1, 4, 0.41},
	}
	for _, tt := range tests {
		acked, failed, missing, seconds := rpo(beats, tt.present)
		if acked != tt.acked || failed != tt.failed || missing != tt.missing || (seconds-tt.seconds) > 1e-9 || (tt.seconds-seconds) > 1e-9 {
			t.Errorf("%s: rpo = %d %d %d %v, want %d %d %d %v", tt.name, acked, failed, missing, seconds, tt.acked, tt.failed, tt.missing, tt.seconds)
		}
	}
}
