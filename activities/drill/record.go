package drill

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/workflows/drill"
)

// Records writes drill rows: RecordActivity, the drills table's one writer.
type Records struct {
	DB *pgxpool.Pool
}

// upsertDrill writes the whole row. Within one run a write applies only
// when its seq is not older than the row's, so a retried attempt landing
// after a newer write changes nothing; a new run under the same id (the
// workflow id reused, or a reset) replaces the row unless it started
// earlier than the row's.
const upsertDrill = `
INSERT INTO drills (id, principal, scenario, status, verdict, reasons, objectives, measurements, timeline,
    backup_id, workflow_id, run_id, seq, created_at, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO UPDATE SET
    principal = EXCLUDED.principal, scenario = EXCLUDED.scenario, status = EXCLUDED.status,
    verdict = EXCLUDED.verdict, reasons = EXCLUDED.reasons, objectives = EXCLUDED.objectives,
    measurements = EXCLUDED.measurements, timeline = EXCLUDED.timeline, backup_id = EXCLUDED.backup_id,
    workflow_id = EXCLUDED.workflow_id, run_id = EXCLUDED.run_id, seq = EXCLUDED.seq,
    created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    updated_at = clock_timestamp()
WHERE (drills.run_id = EXCLUDED.run_id AND drills.seq <= EXCLUDED.seq)
   OR (drills.run_id <> EXCLUDED.run_id AND drills.created_at <= EXCLUDED.created_at)`

// Record upserts the drill's row from the workflow's state. It is
// idempotent: the same write twice leaves the same row.
func (r *Records) Record(ctx context.Context, in drill.RecordInput) error {
	d := in.Drill
	// No scenario is required: a drill refused for having none is still
	// recorded, so that it shows in the API with its reasons.
	if d.ID == "" || d.Status == "" || d.WorkflowID == "" {
		return temporal.NewNonRetryableApplicationError("drill record needs an id, a status and a workflow id",
			errInvalidRecord, nil)
	}
	reasons, objectives, measurements, timeline, err := jsonColumns(d)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encode drill "+d.ID, errInvalidRecord, err)
	}
	_, err = r.DB.Exec(ctx, upsertDrill, d.ID, d.Principal, d.Scenario, d.Status, d.Verdict, reasons, objectives,
		measurements, timeline, d.BackupID, d.WorkflowID, d.RunID, in.Seq, d.CreatedAt, d.StartedAt, d.FinishedAt)
	if err != nil {
		return fmt.Errorf("record drill %s %s: %w", d.ID, d.Status, err)
	}
	return nil
}

// errInvalidRecord is the type of a record that can never be written.
const errInvalidRecord = "InvalidRecord"

// jsonColumns encodes the jsonb columns; empty values are stored as empty
// arrays and objects, never null, so readers need no special case.
func jsonColumns(d drill.Drill) (reasons, objectives, measurements, timeline []byte, err error) {
	if reasons, err = json.Marshal(orEmpty(d.Reasons)); err != nil {
		return nil, nil, nil, nil, err
	}
	if objectives, err = json.Marshal(d.Objectives); err != nil {
		return nil, nil, nil, nil, err
	}
	m := d.Measurements
	if m == nil {
		m = map[string]float64{}
	}
	if measurements, err = json.Marshal(m); err != nil {
		return nil, nil, nil, nil, err
	}
	if timeline, err = json.Marshal(orEmpty(d.Timeline)); err != nil {
		return nil, nil, nil, nil, err
	}
	return reasons, objectives, measurements, timeline, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
