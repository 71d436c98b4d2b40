package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/internal/database"
)

// TestDrills_FailoverSQLIsMet runs the failover drill against a primary and
// a synchronous standby of the test's own, with the API and the worker on
// the pair's two-host URL: a dry run changes nothing, then the sql driver
// fences the primary, promotes the standby, and measures the write gap
// (RTO) with no acknowledged heartbeat lost (RPO 0).
func TestDrills_FailoverSQLIsMet(t *testing.T) {
	pair := newPGPair(t)
	db, err := database.Open(context.Background(), pair.URL(), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := newAPIStackOn(t, db, pair.URL())
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	objectives := map[string]any{"rto_seconds": 30, "rpo_seconds": 0}

	dry := s.startDrill(t, map[string]any{"scenario": "failover", "objectives": map[string]any{"rpo_seconds": 0},
		"params": map[string]any{"driver": "dry_run"}}, ops...)
	d := s.waitDrillThroughFailover(t, dry.ID, 90*time.Second, ops...)
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" || d.Measurements["heartbeats_acknowledged"] < 1 ||
		d.Measurements["rpo_writes"] != 0 || d.step("check_replication") != "succeeded" {
		t.Fatalf("dry run = %+v", d)
	}
	if pair.InRecovery(t, pair.Primary) || !pair.InRecovery(t, pair.Standby) {
		t.Fatal("the dry run changed the roles")
	}

	started := s.startDrill(t, map[string]any{"scenario": "failover", "objectives": objectives,
		"params": map[string]any{"driver": "sql", "heartbeat_interval_ms": 50}}, ops...)
	d = s.waitDrillThroughFailover(t, started.ID, 120*time.Second, ops...)
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" {
		t.Fatalf("failover drill = %+v", d)
	}
	m := d.Measurements
	if m["rpo_writes"] != 0 || m["rpo_seconds"] != 0 || m["heartbeats_acknowledged"] < 2 || m["rto_seconds"] <= 0 || m["rto_seconds"] > 30 {
		t.Errorf("measurements = %v", m)
	}
	if _, ok := m["replication_lag_bytes"]; !ok {
		t.Errorf("no replication lag measured: %v", m)
	}
	if pair.InRecovery(t, pair.Standby) {
		t.Error("the old standby is still in recovery")
	}
	var readOnly string
	if err := pair.queryRow(pair.Primary, `SHOW default_transaction_read_only`, &readOnly); err != nil || readOnly != "on" {
		t.Errorf("old primary default_transaction_read_only = %q (%v), want it fenced", readOnly, err)
	}
	// The platform writes again, through the same two-host URL.
	s.key("after-failover", "drills:read")
	t.Logf("failover: rto %.3fs, %v heartbeats acknowledged, lag %v bytes", m["rto_seconds"], m["heartbeats_acknowledged"], m["replication_lag_bytes"])
}

// waitDrillThroughFailover polls the drill until it ends. While the
// database fails over the API answers 5xx for a moment: those polls are
// skipped, as a client would retry them.
func (s *stack) waitDrillThroughFailover(t *testing.T, id string, timeout time.Duration, auth ...string) drillJSON {
	t.Helper()
	var d drillJSON
	eventually(t, timeout, "drill "+id+" to end", func() bool {
		d = drillJSON{}
		r := s.do(http.MethodGet, "/v1/drills/"+id, nil, auth...)
		if r.Status >= 500 {
			return false
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET drill = %d %s", r.Status, r.Body)
		}
		r.JSON(t, &d)
		return d.Status == "succeeded" || d.Status == "failed" || d.Status == "aborted"
	})
	return d
}

// TestDrills_FailoverStopConditionUnfences: with the standby's replay
// paused, it cannot catch up with the fenced primary within
// max_unavailable_seconds, so the drill stops: it ends failed and missed,
// the standby is not promoted and the old primary is writable again.
func TestDrills_FailoverStopConditionUnfences(t *testing.T) {
	pair := newPGPair(t)
	db, err := database.Open(context.Background(), pair.URL(), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := newAPIStackOn(t, db, pair.URL())
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	pair.exec(t, pair.Standby, "postgres", "SELECT pg_wal_replay_pause()")

	started := s.startDrill(t, map[string]any{"scenario": "failover", "objectives": map[string]any{"rto_seconds": 30, "rpo_seconds": 0},
		"params": map[string]any{"driver": "sql", "max_unavailable_seconds": 2}}, ops...)
	d := s.waitDrillThroughFailover(t, started.ID, 120*time.Second, ops...)
	if d.Status != "failed" || d.Verdict == nil || *d.Verdict != "missed" || d.step("failover") != "failed" {
		t.Fatalf("drill = %+v", d)
	}
	detail := d.Timeline[len(d.Timeline)-1].Detail
	if !strings.Contains(detail, "unfenced") {
		t.Errorf("failover detail = %q", detail)
	}
	if !pair.InRecovery(t, pair.Standby) {
		t.Error("the standby was promoted")
	}
	var readOnly string
	if err := pair.queryRow(pair.Primary, `SHOW default_transaction_read_only`, &readOnly); err != nil || readOnly != "off" {
		t.Errorf("old primary default_transaction_read_only = %q (%v), want it unfenced", readOnly, err)
	}
	pair.exec(t, pair.Standby, "postgres", "SELECT pg_wal_replay_resume()")
	s.key("after-stop", "drills:read") // the platform writes again, on the old primary
}
