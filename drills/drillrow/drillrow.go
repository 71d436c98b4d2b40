// Package drillrow is the drills table as Go reads it: the column list and
// the scanner that go together. The drill's record activity (the one
// writer) and the API (a reader) share it, so their column order cannot
// drift apart.
package drillrow

import (
	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/drills"
)

// Columns are the columns Scan reads, in its order.
const Columns = `id, principal, scenario, status, verdict, reasons, objectives, measurements, timeline,
backup_id, workflow_id, run_id, created_at, updated_at, started_at, finished_at`

// Scan reads a row of Columns.
func Scan(row pgx.Row) (drills.Drill, error) {
	var d drills.Drill
	err := row.Scan(&d.ID, &d.Principal, &d.Scenario, &d.Status, &d.Verdict, &d.Reasons, &d.Objectives,
		&d.Measurements, &d.Timeline, &d.BackupID, &d.WorkflowID, &d.RunID, &d.CreatedAt, &d.UpdatedAt,
		&d.StartedAt, &d.FinishedAt)
	if err != nil {
		return drills.Drill{}, err
	}
	if len(d.Reasons) == 0 {
		d.Reasons = nil // stored as [], shown as absent
	}
	return d, nil
}
