package tests

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/flags/provider"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/testenv"
)

// startFlagRuntime starts the API's OpenFeature runtime on the test's
// database: the provider watching the store (with a short poll and
// reconnect backoff, so outage tests stay quick) and the hook's metrics.
func startFlagRuntime(t testing.TB, db *pgxpool.Pool, reg prometheus.Registerer) *provider.Runtime {
	t.Helper()
	return startFlagRuntimeOn(t, db.Config().ConnConfig, reg, 5*time.Second)
}

// startFlagRuntimeOn is startFlagRuntime with its LISTEN session on conn,
// as the platform does with PLATFORM_DATABASE_DIRECT_URL, and its safety-net
// poll every poll.
func startFlagRuntimeOn(t testing.TB, conn *pgx.ConnConfig, reg prometheus.Registerer, poll time.Duration) *provider.Runtime {
	t.Helper()
	rt, err := provider.Start(context.Background(), conn, reg, provider.Options{
		Watch: store.WatchOptions{Poll: poll, RetryMin: 50 * time.Millisecond, RetryMax: 300 * time.Millisecond},
		Log:   testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

// boolFlagDef is a flagd definition of a boolean flag with variants on and
// off, serving def.
func boolFlagDef(def string) map[string]any {
	return map[string]any{"state": "ENABLED", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": def}
}

// putFlag creates or replaces a flag over REST and fails the test unless it
// worked.
func (s *stack) putFlag(secret, key string, def any, headers ...string) response {
	s.t.Helper()
	r := s.do("PUT", "/v1/flags/"+key, def, append(bearer(secret), headers...)...)
	if r.Status != 200 && r.Status != 201 {
		s.t.Fatalf("PUT /v1/flags/%s: %d %s", key, r.Status, r.Body)
	}
	return r
}

// waitForRevision waits until the API's provider serves the store's
// current revision, so evaluations see every write made so far.
func (s *stack) waitForRevision() {
	s.t.Helper()
	rev, err := store.Revision(context.Background(), s.DB)
	if err != nil {
		s.t.Fatal(err)
	}
	eventuallyTB(s.t, 2*time.Second, "the provider to load the latest flags", func() bool {
		set := s.Flags.Current()
		return set != nil && set.Revision >= rev
	})
}

// eventuallyTB is eventually for a testing.TB.
func eventuallyTB(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
