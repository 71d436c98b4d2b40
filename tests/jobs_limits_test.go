package tests

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// TestJobsLimits_InFlightCapPerPrincipal submits more deliveries for one
// principal than its in-flight cap, to a receiver that counts how many it
// holds at once: never more than the cap, every job still delivers at its
// first attempt (a throttle is not an attempt), and another principal's
// delivery goes through while the first one's slots are all taken.
func TestJobsLimits_InFlightCapPerPrincipal(t *testing.T) {
	const limit, jobs = 2, 6
	s := newStack(t, func(c *config.Config) {
		c.WebhookMaxInFlightPerPrincipal = limit
		c.WebhookRatePerPrincipal = config.Rate{Limit: 1000, Period: time.Second}
	})
	var inFlight, peak atomic.Int32
	otherDelivered := make(chan struct{})
	busy := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select { // hold the slot until the other principal got through
		case <-otherDelivered:
		case <-time.After(10 * time.Second):
		}
		time.Sleep(200 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	var otherSawBusy atomic.Int32
	other := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		otherSawBusy.Store(inFlight.Load())
		if n == 1 {
			close(otherDelivered)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	beta := bearer(s.key("beta", "jobs:read", "jobs:write"))
	var ids []string
	for range jobs {
		ids = append(ids, s.createJob(t, webhookJob(busy.URL, map[string]any{"n": 1}, nil), acme...).ID)
	}
	eventually(t, 15*time.Second, "acme's slots to be taken", func() bool { return inFlight.Load() >= limit })
	betaJob := s.createJob(t, webhookJob(other.URL, map[string]any{"n": 1}, nil), beta...)
	if j := s.waitJob(t, betaJob.ID, 8*time.Second, beta...); j.Status != "succeeded" {
		t.Errorf("beta's job %s", j.Status)
	}
	if n := otherSawBusy.Load(); n != limit {
		t.Errorf("beta was delivered with %d of acme's deliveries in flight, want %d (all of acme's slots)", n, limit)
	}
	for _, id := range ids {
		if j := s.waitJob(t, id, 60*time.Second, acme...); j.Status != "succeeded" || j.Attempts != 1 {
			t.Errorf("job %s: %s after %d attempts, want succeeded at the first", id, j.Status, j.Attempts)
		}
	}
	if p := peak.Load(); p > limit {
		t.Errorf("acme had %d deliveries in flight at once, cap %d", p, limit)
	}
}
