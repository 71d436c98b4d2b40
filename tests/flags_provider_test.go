package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// providerEvents collects the OpenFeature events of a client.
type providerEvents struct {
	mu     sync.Mutex
	events []openfeature.EventDetails
	kinds  []openfeature.EventType
}

func watchEvents(c *openfeature.Client, kinds ...openfeature.EventType) *providerEvents {
	pe := &providerEvents{}
	for _, k := range kinds {
		cb := func(d openfeature.EventDetails) {
			pe.mu.Lock()
			defer pe.mu.Unlock()
			pe.events, pe.kinds = append(pe.events, d), append(pe.kinds, k)
		}
		c.AddHandler(k, &cb)
	}
	return pe
}

func (pe *providerEvents) saw(kind openfeature.EventType, flag string) bool {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	for i, k := range pe.kinds {
		if k == kind && (flag == "" || slices.Contains(pe.events[i].FlagChanges, flag)) {
			return true
		}
	}
	return false
}

// TestFlagProvider_SeesARESTChangeWithinOneSecond changes a flag over REST
// and measures how long the running provider takes to serve it.
func TestFlagProvider_SeesARESTChangeWithinOneSecond(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	client := s.Flags.Client
	events := watchEvents(client, openfeature.ProviderConfigChange)
	ctx := context.Background()
	for i, def := range []string{"off", "on", "off"} {
		start := time.Now()
		s.putFlag(writer, "checkout", boolFlagDef(def))
		want := def == "on"
		eventuallyTB(t, time.Second, fmt.Sprintf("change %d to reach the provider", i), func() bool {
			d, err := client.BooleanValueDetails(ctx, "checkout", !want, openfeature.EvaluationContext{})
			return err == nil && d.Value == want && d.Reason == openfeature.StaticReason
		})
		t.Logf("change %d served after %s", i, time.Since(start).Round(time.Millisecond))
	}
	eventuallyTB(t, time.Second, "PROVIDER_CONFIGURATION_CHANGED naming the flag", func() bool {
		return events.saw(openfeature.ProviderConfigChange, "checkout")
	})
}

// TestFlagProvider_StoreDownServesTheLastFlagsAndReportsStale takes the
// database away from the provider (its connection is terminated and new
// ones are refused), checks that evaluations keep working from the last
// snapshot while the provider reports STALE, then brings the database
// back and checks that a change made meanwhile is picked up.
func TestFlagProvider_StoreDownServesTheLastFlagsAndReportsStale(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	client := s.Flags.Client
	events := watchEvents(client, openfeature.ProviderStale, openfeature.ProviderReady, openfeature.ProviderConfigChange)
	ctx := context.Background()
	s.putFlag(writer, "checkout", boolFlagDef("on"))
	s.waitForRevision()

	admin := maintenanceConn(t, s)
	dbName := s.DB.Config().ConnConfig.Database
	allow := func(on bool) {
		if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", pgx.Identifier{dbName}.Sanitize(), on)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
		dbName, store.WatchApplicationName); err != nil {
		t.Fatal(err)
	}
	eventuallyTB(t, 3*time.Second, "the provider to report STALE", func() bool {
		return client.State() == openfeature.StaleState && events.saw(openfeature.ProviderStale, "")
	})
	if st := s.Flags.Provider.Status(); !st.Stale || st.Err == nil {
		t.Errorf("status %+v, want stale with the cause", st)
	}
	d, err := client.BooleanValueDetails(ctx, "checkout", false, openfeature.EvaluationContext{})
	if err != nil || !d.Value || d.Reason != openfeature.StaticReason {
		t.Fatalf("while stale: value %v reason %s err %v, want the last snapshot's true/STATIC", d.Value, d.Reason, err)
	}

	// A change made while the provider cannot connect (through a connection
	// the pool already holds) is served once the store is back.
	if _, _, err := (&store.Store{DB: s.DB}).Put(ctx, "checkout", mustFlag(t, boolFlagDef("off")), store.Cond{}, store.Change{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	allow(true)
	eventuallyTB(t, 3*time.Second, "READY and the change after the store came back", func() bool {
		v, _ := client.BooleanValueDetails(ctx, "checkout", true, openfeature.EvaluationContext{})
		return client.State() == openfeature.ReadyState && !v.Value && events.saw(openfeature.ProviderReady, "")
	})
	if st := s.Flags.Provider.Status(); st.Stale {
		t.Errorf("status %+v after recovery", st)
	}
}

// maintenanceConn connects to the server's postgres database, as the
// stack's database user.
func maintenanceConn(t *testing.T, s *stack) *pgx.Conn {
	t.Helper()
	cfg := s.DB.Config().ConnConfig.Copy()
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// mustFlag converts a definition written as a map.
func mustFlag(t *testing.T, def map[string]any) flags.Flag {
	t.Helper()
	raw, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	var f flags.Flag
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}
