package tests

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/testenv"
)

// bouncerStack runs the API and the worker through a PgBouncer of the
// test's own in transaction mode (pgx in cache_describe mode: no named
// prepared statements, which PgBouncer 1.18 cannot route), with the flag
// watcher's LISTEN on the direct URL, as docs/data-plane.md prescribes.
func bouncerStack(t *testing.T) (s *stack, bouncerURL, directURL string) {
	t.Helper()
	directURL = testenv.DatabaseURL(t)
	bouncerURL = testenv.PgBouncer(t, directURL) + "&default_query_exec_mode=cache_describe"
	pool, err := database.Open(context.Background(), bouncerURL, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s = newAPIStackOn(t, pool, bouncerURL, generousLimits, func(c *config.Config) { c.DatabaseDirectURL = directURL })
	s.startWorker()
	return s, bouncerURL, directURL
}

func TestPgBouncer_TransactionModeServesJobsFlagsAndRollouts(t *testing.T) {
	s, bouncerURL, _ := bouncerStack(t)
	if got := s.DB.Config().ConnConfig.DefaultQueryExecMode; got != pgx.QueryExecModeCacheDescribe {
		t.Fatalf("default_query_exec_mode in the URL gave mode %v", got)
	}
	admin := s.key("acme", "jobs:read", "jobs:write", "flags:write", "flags:read", "rollouts:write", "rollouts:read")

	t.Run("jobs", func(t *testing.T) {
		rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
		var ids []string
		for i := range 6 {
			j := s.createJob(t, webhookJob(rc.URL, map[string]any{"n": i}, nil),
				with(bearer(admin), []string{"Idempotency-Key", fmt.Sprintf("bouncer-%d", i)})...)
			ids = append(ids, j.ID)
		}
		for _, id := range ids {
			if j := s.waitJob(t, id, 30*time.Second, bearer(admin)...); j.Status != "succeeded" {
				t.Errorf("job %s ended %s: %+v", id, j.Status, j.LastError)
			}
		}
		var page struct{ Data []jobJSON }
		r := s.do(http.MethodGet, "/v1/jobs?limit=100", nil, bearer(admin)...)
		r.JSON(t, &page)
		if r.Status != 200 || len(page.Data) != len(ids) {
			t.Errorf("GET /v1/jobs = %d with %d jobs, want %d", r.Status, len(page.Data), len(ids))
		}
		if n := len(rc.got()); n != len(ids) {
			t.Errorf("receiver got %d deliveries, want %d", n, len(ids))
		}
	})

	t.Run("flag change reaches evaluation by LISTEN on the direct URL", func(t *testing.T) {
		evaluate := func() any {
			r := s.do("POST", "/ofrep/v1/evaluate/flags/banner", map[string]any{"context": map[string]any{"targetingKey": "u1"}}, bearer(admin)...)
			if r.Status != 200 {
				return fmt.Sprintf("%d %s", r.Status, r.Body)
			}
			return r.Map(t)["value"]
		}
		s.putFlag(admin, "banner", boolFlagDef("off"))
		eventually(t, 10*time.Second, "the new flag to be served", func() bool { return evaluate() == false })
		// The watcher polls only every PLATFORM_FLAGS_POLL_INTERVAL (30s):
		// a change served within 10s was notified.
		s.putFlag(admin, "banner", boolFlagDef("on"))
		eventually(t, 10*time.Second, "the change to be served", func() bool { return evaluate() == true })
	})

	t.Run("rollout", func(t *testing.T) {
		s.putFlag(admin, "checkout", boolFlagDef("off"))
		id := s.startRollout(t, admin, map[string]any{"flag": "checkout", "variant": "on",
			"steps": steps(50, 2, 100, 2), "guard": eventsGuard(nil)})
		stop := s.traffic(t, admin, id, "checkout", func(int) bool { return false })
		defer stop()
		if v := s.waitForStatus(t, admin, id, "succeeded", 60*time.Second); v.Percent != 100 {
			t.Errorf("rollout ended at %d%%", v.Percent)
		}
	})

	// Why the watcher needs the direct URL: through the pooler a LISTEN
	// lands on whichever server connection served that one statement, and
	// the notification never reaches the listener.
	t.Run("LISTEN through the pooler misses notifications", func(t *testing.T) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, bouncerURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "LISTEN bouncer_probe"); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.DB.Exec(ctx, "NOTIFY bouncer_probe"); err != nil {
				t.Fatal(err)
			}
		}
		wait, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		// PgBouncer drops a server connection that speaks while idle in its
		// pool, so the notification cannot reach this client.
		if n, err := conn.WaitForNotification(wait); err == nil {
			t.Errorf("a notification arrived through the pooler: %+v", n)
		}
	})
}
