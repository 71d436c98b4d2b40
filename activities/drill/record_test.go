package drill

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/drillrow"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

func readDrill(t *testing.T, db *pgxpool.Pool, id string) drills.Drill {
	t.Helper()
	d, err := drillrow.Scan(db.QueryRow(context.Background(), `SELECT `+drillrow.Columns+` FROM drills WHERE id = $1`, id))
	if err != nil {
		t.Fatalf("read drill %s: %v", id, err)
	}
	return d
}

// ignoreUpdated leaves out the row's own write time.
var ignoreUpdated = cmpopts.IgnoreFields(drills.Drill{}, "UpdatedAt")

func TestRecords_UpsertIsIdempotentAndNeverGoesBackwards(t *testing.T) {
	db, _ := testenv.Postgres(t)
	r := &Records{DB: db}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rto := 300.0
	running := drills.Drill{ID: "drl_1", Principal: "ops", Scenario: drill.ScenarioRestoreVerify, Status: drill.Running,
		Objectives: drills.Objectives{RTOSeconds: &rto}, WorkflowID: "drl_1", RunID: "run_1", CreatedAt: t0, StartedAt: &t0,
		Measurements: map[string]float64{}, Timeline: []drills.Step{{Name: "declare_disaster", Status: drill.StepSucceeded, StartedAt: t0, FinishedAt: &t0}}}
	t1 := t0.Add(3 * time.Minute)
	finished := running
	finished.Status, finished.Verdict, finished.FinishedAt, finished.BackupID = drill.Succeeded, drill.Met, &t1, "bkp_1"
	finished.Measurements = map[string]float64{drills.RTOSeconds: 120.5, drills.RPOSeconds: 3600}
	finished.Timeline = append(finished.Timeline, drills.Step{Name: "restore", Status: drill.StepSucceeded, StartedAt: t0, FinishedAt: &t1, Detail: "answered"})

	// In order, repeated, then a late retry of an older write.
	for _, in := range []drill.RecordInput{{Drill: running, Seq: 1}, {Drill: finished, Seq: 3}, {Drill: finished, Seq: 3}, {Drill: running, Seq: 2}} {
		if err := r.Record(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	got := readDrill(t, db, "drl_1")
	if diff := cmp.Diff(finished, got, ignoreUpdated); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if got.UpdatedAt.IsZero() {
		t.Error("updated_at not set")
	}

	// A new run under the same id replaces the row; a late write of the
	// old run does not come back.
	next := running
	next.RunID, next.CreatedAt, next.Objectives = "run_2", t0.Add(time.Hour), drills.Objectives{}
	next.Timeline, next.Measurements = nil, nil
	for _, in := range []drill.RecordInput{{Drill: next, Seq: 1}, {Drill: finished, Seq: 9}} {
		if err := r.Record(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	got = readDrill(t, db, "drl_1")
	want := next
	want.Measurements, want.Timeline = map[string]float64{}, []drills.Step{} // stored as {} and [], never null
	if diff := cmp.Diff(want, got, ignoreUpdated); diff != "" {
		t.Errorf("row after a new run (-want +got):\n%s", diff)
	}
}

func TestRecords_IncompleteDrillIsNotRetryable(t *testing.T) {
	r := &Records{} // never reaches the database
	err := r.Record(context.Background(), drill.RecordInput{Drill: drills.Drill{Scenario: drill.ScenarioBackup, Status: drill.Running}})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable application error", err)
	}
}

func TestRecords_RefusedDrillWithoutScenarioIsRecorded(t *testing.T) {
	db, _ := testenv.Postgres(t)
	r := &Records{DB: db}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	refused := drills.Drill{ID: "ui-typo", Principal: "system", Status: drill.Failed, Verdict: drill.Missed,
		Reasons: []string{"invalid input: #/scenario: required: is required"}, WorkflowID: "ui-typo", RunID: "r",
		CreatedAt: t0, StartedAt: &t0, FinishedAt: &t0, Measurements: map[string]float64{}, Timeline: []drills.Step{}}
	if err := r.Record(context.Background(), drill.RecordInput{Drill: refused, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(refused, readDrill(t, db, "ui-typo"), ignoreUpdated); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
