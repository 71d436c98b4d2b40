package tests

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// TestRollout_RollsBackWhileJobsHoldEveryJobSlot fills every activity slot
// of the jobs' worker with webhook deliveries to a receiver that never
// answers, then runs a rollout whose treatment fails: the rollout's
// activities run on the control task queue, with slots of their own, so it
// starts, is judged and is rolled back while the deliveries still hang.
func TestRollout_RollsBackWhileJobsHoldEveryJobSlot(t *testing.T) {
	const jobSlots = 2
	s := newStack(t, generousLimits, func(c *config.Config) {
		c.WorkerMaxActivities = jobSlots
		c.WebhookTimeout = 5 * time.Minute // each delivery holds its slot for the whole test
	})
	var hanging atomic.Int32
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		defer hanging.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	tenant := bearer(s.key("tenant", "jobs:read", "jobs:write"))
	for range jobSlots + 1 {
		s.createJob(t, webhookJob(rc.URL, map[string]any{"n": 1}, nil), tenant...)
	}
	eventually(t, 15*time.Second, "the deliveries to hold every job slot", func() bool { return hanging.Load() == jobSlots })

	admin := s.key("ops", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "search", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "search", "variant": "on",
		"steps": steps(10, 2, 25, 30, 100, 2), "guard": eventsGuard(map[string]any{"failure_limit": 2})})
	stop := s.traffic(t, admin, id, "search", func(percent int) bool { return percent >= 25 })
	defer stop()
	v := s.waitForStatus(t, admin, id, "rolled_back", 30*time.Second)
	if v.Steps[1].Decision != "roll_back" {
		t.Errorf("25%% step: %+v", v.Steps[1])
	}
	if def, _, _ := s.flagDefinition(t, "search"); def["targeting"] != nil {
		t.Errorf("flag not back to control: %v", def)
	}
	if n := hanging.Load(); n != jobSlots {
		t.Errorf("%d deliveries hanging at the roll-back, want every job slot (%d) held throughout", n, jobSlots)
	}
}
