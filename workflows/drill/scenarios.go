package drill

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/verdict"
)

// backup takes a backup, measures its sizes and durations, then prunes the
// store to its retention.
func (d *drill) backup(ctx workflow.Context) error {
	err := d.step(ctx, BackupStep, func(ctx workflow.Context) (string, error) {
		var res BackupResult
		err := workflow.ExecuteActivity(backupOptions(ctx), BackupActivity, BackupInput{DrillID: d.st.ID}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		m := res.Manifest
		d.st.BackupID = m.ID
		d.measure(backupMeasurements(m))
		return fmt.Sprintf("backup %s: %d artefacts, %s bytes, snapshot at %s", m.ID, len(m.Artefacts),
			verdict.Format(float64(totalBytes(m))), utc(m.SnapshotTime)), nil
	})
	if err != nil {
		return err
	}
	return d.step(ctx, PruneStep, func(ctx workflow.Context) (string, error) {
		var res PruneBackupsResult
		if err := workflow.ExecuteActivity(pruneOptions(ctx), PruneBackupsActivity).Get(ctx, &res); err != nil {
			return "", err
		}
		d.st.Measurements["backups_pruned"] = float64(len(res.Deleted))
		if len(res.Deleted) == 0 {
			return "nothing beyond the retention", nil
		}
		return "deleted " + list(res.Deleted), nil
	})
}

// restoreVerify declares a disaster at t0, verifies a backup, restores it
// into scratch targets and checks the copy. RPO is t0 minus the backup's
// snapshot time; RTO is t0 to the moment the copy answered, counted only
// for a copy that passed its checks. The caller cleans up.
func (d *drill) restoreVerify(ctx workflow.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := workflow.Now(ctx)
	d.instant(ctx, DeclareStep, "disaster declared at "+utc(t0)+" (t0): RTO and RPO count from here")
	d.st.BackupID = d.params.BackupID
	var m Manifest
	err := d.step(ctx, VerifyStep, func(ctx workflow.Context) (string, error) {
		var res VerifyBackupResult
		err := workflow.ExecuteActivity(verifyOptions(ctx), VerifyBackupActivity, VerifyBackupInput{BackupID: d.params.BackupID}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		m = res.Manifest
		d.st.BackupID = m.ID
		d.measure(sizes(m))
		d.st.Measurements[drills.RPOSeconds] = verdict.RPO(t0, m.SnapshotTime)
		return fmt.Sprintf("backup %s: %d artefacts match their sizes and SHA-256, snapshot at %s", m.ID, len(m.Artefacts),
			utc(m.SnapshotTime)), nil
	})
	if err != nil {
		return err
	}
	var answeredAt time.Time
	err = d.step(ctx, RestoreStep, func(ctx workflow.Context) (string, error) {
		var res RestoreResult
		err := workflow.ExecuteActivity(restoreOptions(ctx), RestoreActivity, RestoreInput{DrillID: d.st.ID, Manifest: m}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		d.scratch, answeredAt = res.Scratch, res.AnsweredAt
		d.measure(parts("restore", res.Durations))
		return fmt.Sprintf("restored into database %s and redis %s; the copy answered at %s",
			orNone(res.Scratch.Database), orNone(res.Scratch.RedisAddr), utc(res.AnsweredAt)), nil
	})
	if err != nil {
		return err
	}
	return d.step(ctx, CheckStep, func(ctx workflow.Context) (string, error) {
		var res CheckRestoreResult
		err := workflow.ExecuteActivity(checkOptions(ctx), CheckRestoreActivity, CheckRestoreInput{Manifest: m, Scratch: d.scratch}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		d.st.Measurements["tables_checked"] = float64(res.TablesChecked)
		d.st.Measurements["samples_read"] = float64(res.SamplesRead)
		d.st.Measurements["redis_keys_restored"] = float64(res.RedisKeys)
		if len(res.Mismatches) > 0 {
			return "", errors.New("the copy does not match the manifest: " + list(res.Mismatches))
		}
		d.st.Measurements[drills.RTOSeconds] = verdict.RTO(t0, answeredAt)
		return fmt.Sprintf("%d tables and the schema version match the manifest; %d sample records read; %d redis keys",
			res.TablesChecked, res.SamplesRead, res.RedisKeys), nil
	})
}

// cleanup removes the scratch targets: those the restore reported, and
// those the activity derives from the drill id (a restore cut short may
// have made some without reporting them).
func (d *drill) cleanup(ctx workflow.Context) (string, error) {
	err := workflow.ExecuteActivity(cleanupOptions(ctx), CleanupActivity, CleanupInput{DrillID: d.st.ID, Scratch: d.scratch}).Get(ctx, nil)
	if err != nil {
		return "", err
	}
	return "scratch targets removed", nil
}

func (d *drill) measure(m map[string]float64) {
	for k, v := range m {
		d.st.Measurements[k] = v
	}
}

// backupMeasurements are a backup's sizes, contents and part durations.
func backupMeasurements(m Manifest) map[string]float64 {
	out := sizes(m)
	for k, v := range parts("backup", m.Durations) {
		out[k] = v
	}
	var rows int64
	for _, n := range m.Postgres.Tables {
		rows += n
	}
	out["postgres_tables"] = float64(len(m.Postgres.Tables))
	out["postgres_rows"] = float64(rows)
	out["redis_keys"] = float64(m.Redis.Keys)
	return out
}

// sizes are the bytes of each kind of artefact and in all.
func sizes(m Manifest) map[string]float64 {
	out := map[string]float64{"total_bytes": float64(totalBytes(m))}
	kinds := []string{drills.KindPostgres, drills.KindRedis, drills.KindConfig}
	for _, kind := range kinds {
		out[kind+"_bytes"] = 0
	}
	for _, a := range m.Artefacts {
		if slices.Contains(kinds, a.Kind) {
			out[a.Kind+"_bytes"] += float64(a.Size)
		}
	}
	return out
}

func totalBytes(m Manifest) int64 {
	var n int64
	for _, a := range m.Artefacts {
		n += a.Size
	}
	return n
}

// parts names an activity's part durations <prefix>_<part>_seconds.
func parts(prefix string, durations map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(durations))
	for k, v := range durations {
		out[prefix+"_"+strings.TrimSuffix(k, "_seconds")+"_seconds"] = v
	}
	return out
}

// list joins up to ten items, saying how many more there are.
func list(items []string) string {
	const shown = 10
	if len(items) <= shown {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:shown], "; "), len(items)-shown)
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// heartbeat is how long a long activity may go without heartbeating before
// Temporal retries it elsewhere: a lost worker is noticed within a minute.
// It is also how long an abort waits, at most, for the activity to stop.
const heartbeat = time.Minute

// backupOptions: a dump of a large database takes a while; it heartbeats,
// and a cancelled one is waited for so that its partial folder is gone
// before the drill ends.
func backupOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour, HeartbeatTimeout: heartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 3},
	})
}

// verifyOptions: a corrupt or missing backup will not get better.
func verifyOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour, HeartbeatTimeout: heartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{CorruptBackupErrorType, NoBackupErrorType}},
	})
}

// restoreOptions: a cancelled restore is waited for, so that the cleanup
// after it cannot race a restore still creating its targets.
func restoreOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour, HeartbeatTimeout: heartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{CorruptBackupErrorType, NoBackupErrorType}},
	})
}

// checkOptions: a mismatch is a finding, not a fault to retry.
func checkOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeat, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 3, NonRetryableErrorTypes: []string{RestoreMismatchType}},
	})
}

// cleanupOptions: scratch targets left behind cost a database and a
// process, so cleanup retries for about half an hour before the drill
// reports it failed.
func cleanupOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute, ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

func pruneOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 3},
	})
}

// recordOptions: the row must eventually be written, so records retry
// until they are.
func recordOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}
