package tests

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
)

// replicaLag is the test's PLATFORM_REPLICA_MAX_LAG: long enough for the
// steps that must see the paused replica as usable, short enough to wait out.
const replicaLag = 4 * time.Second

// TestReplicas_ReadYourWritesOnAPausedReplica runs the API with a real
// streaming replica as its read replica and pauses the replica's replay:
// the principal that just wrote reads its write from the primary, another
// principal's list still comes from the replica until the replica lags
// beyond the bound, and resumed replay brings reads back to it. With Redis
// gone, reads go to the primary.
func TestReplicas_ReadYourWritesOnAPausedReplica(t *testing.T) {
	p := newPGPair(t)
	ctx := context.Background()
	db, err := database.Open(ctx, p.url(p.Primary), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := newAPIStackOn(t, db, p.url(p.Primary), func(c *config.Config) {
		c.DatabaseReadURLs = []string{p.url(p.Standby)}
		c.ReplicaMaxLag = config.Lag{Time: replicaLag}
		c.ReplicaPollInterval = 100 * time.Millisecond
		c.ReplicaWriteTTL = 30 * time.Second
	})
	alice := s.key("alice", "keys:admin")
	bob := s.key("bob", "keys:admin")
	served := func(pool string) float64 {
		return metricValue(t, s, "database_queries_total", `pool="`+pool+`"`)
	}
	fallbacks := func(reason string) float64 {
		return metricValue(t, s, "database_primary_fallbacks_total", `reason="`+reason+`"`)
	}
	// list reads principal's keys and says which pool served the read.
	list := func(secret string) (names []string, pool string) {
		t.Helper()
		primary, replica := served("primary"), served("replica")
		var page struct {
			Data []struct{ Name string } `json:"data"`
		}
		res := s.do(http.MethodGet, "/v1/keys", nil, bearer(secret)...)
		if res.Status != http.StatusOK {
			t.Fatalf("GET /v1/keys = %d %s", res.Status, res.Body)
		}
		res.JSON(t, &page)
		for _, it := range page.Data {
			names = append(names, it.Name)
		}
		switch {
		case served("replica") == replica+1 && served("primary") == primary:
			return names, "replica"
		case served("primary") == primary+1 && served("replica") == replica:
			return names, "primary"
		}
		t.Fatalf("one list, %v more primary and %v more replica reads", served("primary")-primary, served("replica")-replica)
		return nil, ""
	}

	eventually(t, 10*time.Second, "bob's list to be served by the replica", func() bool {
		_, pool := list(bob)
		return pool == "replica"
	})

	p.exec(t, p.Standby, "postgres", "SELECT pg_wal_replay_pause()")
	s.createKey(t, alice, map[string]any{"name": "written-while-paused", "scopes": []string{"keys:admin"}})
	paused := time.Now()
	notReplayed := fallbacks(database.ReasonNotReplayed)
	names, pool := list(alice)
	if !slices.Contains(names, "written-while-paused") || pool != "primary" {
		t.Fatalf("alice right after her write: names %v from the %s, want her new key from the primary", names, pool)
	}
	if fallbacks(database.ReasonNotReplayed) != notReplayed+1 {
		t.Error("alice's primary read was not counted as not_replayed")
	}
	if _, pool := list(bob); pool != "replica" {
		t.Fatalf("bob's list came from the %s while the replica was within the lag bound", pool)
	}
	if time.Since(paused) >= replicaLag {
		t.Fatalf("the steps took %s, longer than the lag bound: the test proved nothing", time.Since(paused))
	}

	time.Sleep(time.Until(paused.Add(replicaLag + time.Second)))
	lagging := fallbacks(database.ReasonLagging)
	if _, pool := list(bob); pool != "primary" {
		t.Fatalf("bob's list came from the %s, a replica lagging beyond %s", pool, replicaLag)
	}
	if fallbacks(database.ReasonLagging) != lagging+1 {
		t.Error("bob's primary read was not counted as lagging")
	}

	p.exec(t, p.Standby, "postgres", "SELECT pg_wal_replay_resume()")
	eventually(t, 10*time.Second, "alice's list to return to the replica", func() bool {
		names, pool := list(alice)
		return pool == "replica" && slices.Contains(names, "written-while-paused")
	})

	_ = s.APIRedis.Close()
	redisDown := fallbacks(database.ReasonWritesUnkn)
	if _, pool := list(bob); pool != "primary" {
		t.Fatalf("with Redis gone bob's list came from the %s", pool)
	}
	if fallbacks(database.ReasonWritesUnkn) != redisDown+1 {
		t.Error("the read without Redis was not counted as redis_down")
	}
}
