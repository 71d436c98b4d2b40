// Package retention holds the platform.retention workflow's side effect:
// deleting rows older than their table's retention, in batches that are each
// their own short transaction, so that no table is locked for long.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/jobs"
	"github.com/acme/platform/workflows/retention"
)

// Policy is how long each table's rows are kept (PLATFORM_RETENTION_*);
// 0 keeps them forever.
type Policy struct {
	Uploads       time.Duration
	UsageEvents   time.Duration
	RolloutEvents time.Duration
	RolloutChecks time.Duration
	FlagAudit     time.Duration
}

func (p Policy) keep(table string) time.Duration {
	return map[string]time.Duration{
		retention.Uploads: p.Uploads, retention.UsageEvents: p.UsageEvents, retention.RolloutEvents: p.RolloutEvents,
		retention.RolloutChecks: p.RolloutChecks, retention.FlagAudit: p.FlagAudit,
	}[table]
}

// Purger deletes expired rows.
type Purger struct {
	DB     *pgxpool.Pool
	Policy Policy
	Log    *slog.Logger
}

// unfinishedUploadJob keeps an upload that a job still has to read, whatever
// its age: the job would otherwise fail as UploadMissing.
var unfinishedUploadJob = fmt.Sprintf(`EXISTS (SELECT 1 FROM jobs j WHERE j.type = '%s' AND j.status IN ('%s', '%s', '%s')
    AND j.input->>'upload_id' = u.id)`, jobs.TypeUpload, jobs.Queued, jobs.Running, jobs.Retrying)

// deletes are one batch per table: at most $2 rows older than $1, chosen
// by the time column's index, deleted by key. Uploads unlink their large
// objects in the same statement, so a row and its bytes go together.
var deletes = map[string]string{
	retention.Uploads: `
WITH doomed AS (
    SELECT id FROM uploads u WHERE created_at < $1 AND NOT ` + unfinishedUploadJob + `
    LIMIT $2 FOR UPDATE SKIP LOCKED),
gone AS (DELETE FROM uploads WHERE id IN (SELECT id FROM doomed) RETURNING oid)
SELECT (SELECT count(*) FROM gone),
       (SELECT count(lo_unlink(oid)) FROM gone WHERE oid IN (SELECT oid FROM pg_largeobject_metadata))`,
	retention.UsageEvents: `
WITH gone AS (DELETE FROM usage_events WHERE ctid IN (SELECT ctid FROM usage_events WHERE at < $1 LIMIT $2) RETURNING 1)
SELECT count(*), 0 FROM gone`,
	retention.RolloutEvents: `
WITH gone AS (DELETE FROM rollout_events WHERE id IN (SELECT id FROM rollout_events WHERE at < $1 LIMIT $2) RETURNING 1)
SELECT count(*), 0 FROM gone`,
	retention.RolloutChecks: `
WITH gone AS (DELETE FROM rollout_checks WHERE (rollout_id, seq) IN
    (SELECT rollout_id, seq FROM rollout_checks WHERE at < $1 LIMIT $2) RETURNING 1)
SELECT count(*), 0 FROM gone`,
	retention.FlagAudit: `
WITH gone AS (DELETE FROM flag_audit WHERE id IN (SELECT id FROM flag_audit WHERE at < $1 LIMIT $2) RETURNING 1)
SELECT count(*), 0 FROM gone`,
}

// Purge deletes the table's expired rows, a batch at a time with a
// heartbeat after each, until a batch comes back short.
func (a *Purger) Purge(ctx context.Context, in retention.PurgeInput) (retention.PurgeResult, error) {
	res := retention.PurgeResult{Table: in.Table}
	stmt, ok := deletes[in.Table]
	if !ok {
		return res, temporal.NewNonRetryableApplicationError("no retention for table "+in.Table, "UnknownTable", nil)
	}
	keep := a.Policy.keep(in.Table)
	if keep == 0 {
		res.Disabled = true
		return res, nil
	}
	size := in.BatchSize
	if size <= 0 || size > retention.MaxBatchSize {
		size = retention.DefaultBatchSize
	}
	res.Cutoff = cutoff(in.Table, time.Now(), keep)
	for {
		var deleted, unlinked int64
		if err := a.DB.QueryRow(ctx, stmt, res.Cutoff, size).Scan(&deleted, &unlinked); err != nil {
			return res, fmt.Errorf("purge %s before %s: %w", in.Table, res.Cutoff.Format(time.RFC3339), err)
		}
		res.Deleted += deleted
		res.Unlinked += unlinked
		activity.RecordHeartbeat(ctx, res.Deleted)
		if deleted < int64(size) {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	if res.Deleted > 0 {
		a.Log.Info("retention purged", "table", in.Table, "before", res.Cutoff, "rows", res.Deleted, "large_objects", res.Unlinked)
	}
	return res, nil
}

// cutoff is the time before which rows go. Usage events go by whole hours,
// so that a roll-up re-run over an hour finds all of it or none of it and
// never rewrites the hour from a part.
func cutoff(table string, now time.Time, keep time.Duration) time.Time {
	c := now.Add(-keep).UTC()
	if table == retention.UsageEvents {
		c = c.Truncate(time.Hour)
	}
	return c
}
