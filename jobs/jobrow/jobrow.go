// Package jobrow is the jobs table as Go reads it: the column list and the
// scanner that go together. The workflow's activities (the one writer) and
// the API (a reader) share it, so their column order cannot drift apart.
package jobrow

import (
	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/jobs"
)

// Columns are the columns Scan reads, in its order.
const Columns = `id, principal, type, status, input, retry, result, attempts, last_error,
workflow_id, run_id, created_at, updated_at, started_at, finished_at`

// Scan reads a row of Columns.
func Scan(row pgx.Row) (jobs.Job, error) {
	var j jobs.Job
	err := row.Scan(&j.ID, &j.Principal, &j.Type, &j.Status, &j.Input, &j.Retry, &j.Result, &j.Attempts, &j.LastError,
		&j.WorkflowID, &j.RunID, &j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt)
	return j, err
}
