package tests

import (
	"context"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
)

// TestDrills_FailoverPatroniIsMet runs the failover drill with the patroni
// driver against an etcd and two Patroni nodes of the test's own, with
// the API and the worker on the two members' read-write URL and the
// Patroni REST API from server configuration: Patroni switches over, the
// drill measures the write gap (RTO) and finds every acknowledged
// heartbeat on the new leader (a switchover demotes the old leader
// cleanly, so even this asynchronous pair loses nothing), and afterwards
// node2 leads and node1 streams from it.
func TestDrills_FailoverPatroniIsMet(t *testing.T) {
	cluster := newPatroniCluster(t)
	db, err := database.Open(context.Background(), cluster.URL(), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := newAPIStackOn(t, db, cluster.URL(), func(c *config.Config) { c.DrillPatroniURL = cluster.APIURL("node2") })
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))

	started := s.startDrill(t, map[string]any{"scenario": "failover", "objectives": map[string]any{"rto_seconds": 30, "rpo_seconds": 0},
		"params": map[string]any{"driver": "patroni", "heartbeat_interval_ms": 50}}, ops...)
	d := s.waitDrillThroughFailover(t, started.ID, 150*time.Second, ops...)
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" {
		t.Fatalf("failover drill = %+v", d)
	}
	m := d.Measurements
	if m["rpo_writes"] != 0 || m["rpo_seconds"] != 0 || m["heartbeats_acknowledged"] < 2 || m["rto_seconds"] <= 0 || m["rto_seconds"] > 30 {
		t.Errorf("measurements = %v", m)
	}
	if leader := cluster.Leader(t); leader != "node2" {
		t.Errorf("Patroni's leader = %q, want node2", leader)
	}
	if !cluster.Writable("node2") || cluster.Writable("node1") {
		t.Error("node2 is not the one writable member")
	}
	if !cluster.Streams("node2", "node1") {
		t.Error("node1 does not stream from node2")
	}
	s.key("after-switchover", "drills:read") // the platform writes again, through the same URL
	t.Logf("patroni switchover: rto %.3fs, %v heartbeats acknowledged (%v failed), lag %v bytes; %s",
		m["rto_seconds"], m["heartbeats_acknowledged"], m["heartbeats_failed"], m["replication_lag_bytes"], d.Timeline[len(d.Timeline)-1].Detail)
}
