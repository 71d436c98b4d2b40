package retention

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/workflows/retention"
)

// seed inserts n rows into every table with a retention, aged age; uploads
// get a large object each. It returns the upload ids.
func seed(t *testing.T, db *pgxpool.Pool, prefix string, n int, age time.Duration) []string {
	t.Helper()
	ctx := context.Background()
	at := time.Now().Add(-age)
	var uploads []string
	for i := range n {
		id := prefix + "_" + string(rune('a'+i))
		uploads = append(uploads, id)
		stmts := []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO uploads (id, principal, oid, size, sha256, content_type, created_at)
			  VALUES ($1, 'acme', lo_from_bytea(0, 'bytes'), 5, 'x', 'text/plain', $2)`, []any{id, at}},
			{`INSERT INTO usage_events (at, principal, route, status, latency_ms) VALUES ($1, 'acme', '/v1/x', 200, 1)`, []any{at}},
			{`INSERT INTO rollout_events (rollout_id, at, targeting_key, variant, error) VALUES ($1, $2, 'k', 'on', false)`, []any{prefix, at}},
			{`INSERT INTO rollout_checks (rollout_id, seq, step, attempt, at, phase, verdict, decision, result, evidence)
			  VALUES ($1, $2, 0, 1, $3, 'hold', 'pass', 'hold_more', '{}', '{}')`, []any{prefix, i, at}},
			{`INSERT INTO flag_audit (key, version, action, actor, at) VALUES ($1, $2, 'put', 'test', $3)`, []any{prefix, i, at}},
		}
		for _, s := range stmts {
			if _, err := db.Exec(ctx, s.sql, s.args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return uploads
}

func addRollout(t *testing.T, db *pgxpool.Pool, id string) {
	t.Helper()
	_, err := db.Exec(context.Background(), `INSERT INTO rollouts (id, principal, flag, variant, status, spec, workflow_id, run_id)
		VALUES ($1, 'acme', $1, 'on', 'succeeded', '{}', $1, 'r')`, id)
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPurge_DeletesOnlyRowsOlderThanTheirRetention(t *testing.T) {
	db, _ := testenv.Postgres(t)
	addRollout(t, db, "old")
	addRollout(t, db, "new")
	addRollout(t, db, "busy")
	day := 24 * time.Hour
	los := count(t, db, `SELECT count(*) FROM pg_largeobject_metadata`)
	oldUploads := seed(t, db, "old", 7, 400*day)
	seed(t, db, "new", 3, time.Hour)
	// An old upload that an unfinished job still has to read is kept.
	busy := seed(t, db, "busy", 1, 400*day)[0]
	_, err := db.Exec(context.Background(), `INSERT INTO jobs (id, principal, type, status, input, retry, workflow_id, run_id)
		VALUES ('job_1', 'acme', $1, $2, jsonb_build_object('upload_id', $3::text), '{}', 'job_1', 'r')`, jobs.TypeUpload, jobs.Retrying, busy)
	if err != nil {
		t.Fatal(err)
	}

	a := &Purger{DB: db, Log: testenv.Logger(t), Policy: Policy{
		Uploads: 7 * day, UsageEvents: 3 * day, RolloutEvents: 30 * day, RolloutChecks: 30 * day, FlagAudit: 365 * day}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(a.Purge, activityOptions())
	for _, table := range retention.Tables {
		val, err := env.ExecuteActivity(retention.PurgeActivity, retention.PurgeInput{Table: table, BatchSize: 3})
		if err != nil {
			t.Fatalf("purge %s: %v", table, err)
		}
		var res retention.PurgeResult
		if err := val.Get(&res); err != nil {
			t.Fatal(err)
		}
		want := int64(8) // the old rows and the busy ones
		if table == retention.Uploads {
			want = 7 // not the busy upload
		}
		if res.Deleted != want || res.Disabled {
			t.Errorf("purge %s: %+v, want %d rows deleted", table, res, want)
		}
	}
	for table, col := range map[string]string{
		"uploads": "created_at", "usage_events": "at", "rollout_events": "at", "rollout_checks": "at", "flag_audit": "at",
	} {
		if n := count(t, db, `SELECT count(*) FROM `+table+` WHERE `+col+` < now() - interval '1 day'`); n != boolInt(table == "uploads") {
			t.Errorf("%s: %d old rows left", table, n)
		}
		if n := count(t, db, `SELECT count(*) FROM `+table+` WHERE `+col+` > now() - interval '1 day'`); n != 3 {
			t.Errorf("%s: %d new rows left, want 3", table, n)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM uploads WHERE id = $1`, busy); n != 1 {
		t.Error("the upload of an unfinished job was deleted")
	}
	// 7 objects unlinked: the new uploads' and the busy one's remain.
	if n := count(t, db, `SELECT count(*) FROM pg_largeobject_metadata`); n != los+4 {
		t.Errorf("%d large objects, want %d", n, los+4)
	}
	if n := count(t, db, `SELECT count(*) FROM uploads WHERE id = ANY($1)`, oldUploads); n != 0 {
		t.Errorf("%d old uploads left", n)
	}
	if n := count(t, db, `SELECT count(*) FROM pg_indexes WHERE indexname IN
		('uploads_created_at', 'rollout_events_at', 'rollout_checks_at', 'flag_audit_at', 'usage_events_at')`); n != 5 {
		t.Errorf("%d of the 5 time indexes", n)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPurge_ZeroRetentionKeepsEverything(t *testing.T) {
	db, _ := testenv.Postgres(t)
	addRollout(t, db, "old")
	seed(t, db, "old", 2, 4000*24*time.Hour)
	a := &Purger{DB: db, Log: testenv.Logger(t)}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(a.Purge, activityOptions())
	for _, table := range retention.Tables {
		val, err := env.ExecuteActivity(retention.PurgeActivity, retention.PurgeInput{Table: table, BatchSize: 1})
		var res retention.PurgeResult
		if err != nil || val.Get(&res) != nil || !res.Disabled || res.Deleted != 0 {
			t.Errorf("purge %s: %+v %v", table, res, err)
		}
		if n := count(t, db, `SELECT count(*) FROM `+table); n != 2 {
			t.Errorf("%s: %d rows, want 2", table, n)
		}
	}
}

func TestPurge_UsageEventsOnlyWholeHours(t *testing.T) {
	// A roll-up re-run over an hour must find all of it or none of it, so
	// the cutoff is rounded down to the hour.
	if got := cutoff(retention.UsageEvents, time.Date(2026, 3, 10, 14, 37, 0, 0, time.UTC), 72*time.Hour); !got.Equal(time.Date(2026, 3, 7, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("cutoff %s", got)
	}
}

func TestPurge_RejectsUnknownTable(t *testing.T) {
	a := &Purger{Policy: Policy{Uploads: time.Hour}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(a.Purge, activityOptions())
	if _, err := env.ExecuteActivity(retention.PurgeActivity, retention.PurgeInput{Table: "api_keys"}); err == nil {
		t.Error("purged a table with no retention")
	}
}
