// Package drill is the disaster-recovery drill workflow, platform.drill: one
// workflow type whose scenario (backup, restore_verify, failover,
// cache_loss) picks its steps. Its history is the drill's evidence; its row
// (written by its record activity) is what the API shows. It runs on the
// platform's control task queue, never behind tenants' jobs, and can be
// started from the Temporal UI with plain JSON:
//
//	{"scenario": "restore_verify", "objectives": {"rto_seconds": 300, "rpo_seconds": 86400}}
//
// This file is the contract between the workflow, its activities and the
// API: names, inputs, results and the row's shape.
package drill

import (
	"encoding/json"
	"time"

	"github.com/acme/platform/drills"
)

// Names of the drill workflow, its activities and its messages, as
// registered on the worker and shown in the Temporal UI.
const (
	Name = "platform.drill"

	// BackupActivity takes a backup (Postgres dump on an exported snapshot,
	// Redis RDB snapshot, config bundle) into the backup store.
	BackupActivity = "platform.drill.backup"
	// VerifyBackupActivity fetches a backup's manifest (the newest when no
	// id is given) and checks every artefact's size and SHA-256.
	VerifyBackupActivity = "platform.drill.verify_backup"
	// RestoreActivity restores a verified backup into scratch targets: a new
	// scratch database and a scratch redis-server on a free loopback port.
	RestoreActivity = "platform.drill.restore"
	// CheckRestoreActivity compares the restored copy with the manifest (row
	// count of every table, schema version) and reads sample records
	// through the platform's own store code pointed at the copy.
	CheckRestoreActivity = "platform.drill.check_restore"
	// CleanupActivity removes scratch targets. It is idempotent and runs
	// after success, failure, abort and cancellation.
	CleanupActivity = "platform.drill.cleanup"
	// PruneBackupsActivity keeps the newest PLATFORM_BACKUP_RETENTION backups.
	PruneBackupsActivity = "platform.drill.prune_backups"
	// RecordActivity upserts the drill's row: the row's one writer.
	RecordActivity = "platform.drill.record"

	// Abort is an update (the API) and a signal (the Temporal UI) of the
	// same name: stop the drill, clean up, end aborted.
	Abort = "abort"
	// StateQuery returns the drill's current Drill.
	StateQuery = "state"
)

// Scenarios.
const (
	ScenarioBackup        = drills.ScenarioBackup
	ScenarioRestoreVerify = drills.ScenarioRestoreVerify
	ScenarioFailover      = drills.ScenarioFailover
	ScenarioCacheLoss     = drills.ScenarioCacheLoss
	ScenarioCapacity      = drills.ScenarioCapacity
	ScenarioDBDegraded    = drills.ScenarioDBDegraded
	ScenarioCacheDegraded = drills.ScenarioCacheDegraded
)

// Scenarios lists every scenario.
var Scenarios = drills.Scenarios

// Drill statuses (the leaf package drills holds the record; these name
// the same values).
const (
	Queued    = drills.Queued
	Running   = drills.Running
	Succeeded = drills.Succeeded
	Failed    = drills.Failed
	Aborted   = drills.Aborted
)

// Verdicts: met only when the drill succeeded and every objective held.
const (
	Met    = drills.Met
	Missed = drills.Missed
)

// Step statuses in a drill's timeline.
const (
	StepRunning   = drills.StepRunning
	StepSucceeded = drills.StepSucceeded
	StepFailed    = drills.StepFailed
	StepSkipped   = drills.StepSkipped
	// StepAborted is a step cut short by an abort or a cancellation.
	StepAborted = drills.StepAborted
)

// WorkflowID returns the workflow id of drill id: the id itself. A drill
// started from the Temporal UI under any workflow id is that drill.
func WorkflowID(drillID string) string { return drillID }

// Input is the workflow's input.
type Input struct {
	// ID defaults to the workflow id.
	ID string `json:"id,omitempty"`
	// Principal is who started it: the API caller, or "system" for
	// schedules and the Temporal UI.
	Principal  string     `json:"principal,omitempty"`
	Scenario   string     `json:"scenario"`
	Objectives Objectives `json:"objectives"`
	// Params are the scenario's own parameters (see RestoreParams,
	// FailoverParams, CacheLossParams); unknown fields are refused.
	Params json.RawMessage `json:"params,omitempty"`
}

// Objectives are what the drill must show. Absent means not judged.
type Objectives = drills.Objectives

// RestoreParams are restore_verify's parameters.
type RestoreParams struct {
	// BackupID is the backup to restore; empty means the newest.
	BackupID string `json:"backup_id,omitempty"`
}

// Step is one entry of a drill's timeline.
type Step = drills.Step

// Drill is a drill as its row and the state query show it: the record of
// the leaf package drills, which the row's scanner and the API share.
type Drill = drills.Drill

// Artefact is one file of a backup.
type Artefact = drills.Artefact

// Manifest describes one backup: manifest.json in its folder of the store.
// It lives in the leaf package drills so that the report and the API can
// read it without importing a workflow.
type Manifest = drills.Manifest

// PostgresManifest is what the dump holds.
type PostgresManifest = drills.PostgresManifest

// RedisManifest is what the snapshot holds.
type RedisManifest = drills.RedisManifest

// BackupInput is BackupActivity's input.
type BackupInput struct {
	DrillID string `json:"drill_id"`
}

// BackupResult is BackupActivity's result.
type BackupResult struct {
	Manifest Manifest `json:"manifest"`
}

// VerifyBackupInput is VerifyBackupActivity's input.
type VerifyBackupInput struct {
	BackupID string `json:"backup_id,omitempty"` // empty: the newest
}

// VerifyBackupResult is VerifyBackupActivity's result. A checksum or size
// mismatch is a non-retryable application error of type CorruptBackup.
type VerifyBackupResult struct {
	Manifest Manifest `json:"manifest"`
}

// CorruptBackupErrorType marks a backup whose artefacts do not match their
// manifest; NoBackupErrorType, a restore with no backup to restore.
const (
	CorruptBackupErrorType = "CorruptBackup"
	NoBackupErrorType      = "NoBackup"
	RestoreMismatchType    = "RestoreMismatch"
)

// Scratch names the scratch targets a restore made; Cleanup removes them.
// Names are derived from the drill id, so a retried restore or a cleanup
// after a lost worker finds them again.
type Scratch struct {
	Database string `json:"database,omitempty"` // scratch database name on the platform's server
	// RedisAddr is the scratch redis-server's 127.0.0.1:port; RedisDir its
	// data directory (also holding its pid file).
	RedisAddr string `json:"redis_addr,omitempty"`
	RedisDir  string `json:"redis_dir,omitempty"`
}

// RestoreInput is RestoreActivity's and CleanupActivity's input.
type RestoreInput struct {
	DrillID  string   `json:"drill_id"`
	Manifest Manifest `json:"manifest"`
}

// RestoreResult is RestoreActivity's result: where the copy is, and when it
// first answered (t1 of the RTO).
type RestoreResult struct {
	Scratch    Scratch   `json:"scratch"`
	AnsweredAt time.Time `json:"answered_at"`
	// Durations of each part, in seconds.
	Durations map[string]float64 `json:"durations"`
}

// CheckRestoreInput is CheckRestoreActivity's input.
type CheckRestoreInput struct {
	Manifest Manifest `json:"manifest"`
	Scratch  Scratch  `json:"scratch"`
}

// CheckRestoreResult is CheckRestoreActivity's result. Mismatches (row
// counts, schema version, unreadable samples) are listed, not errors: the
// workflow turns them into a failed step with their text.
type CheckRestoreResult struct {
	TablesChecked int      `json:"tables_checked"`
	SamplesRead   int      `json:"samples_read"`
	RedisKeys     int64    `json:"redis_keys"`
	Mismatches    []string `json:"mismatches,omitempty"`
}

// CleanupInput is CleanupActivity's input.
type CleanupInput struct {
	DrillID string  `json:"drill_id"`
	Scratch Scratch `json:"scratch"`
}

// PruneBackupsResult is PruneBackupsActivity's result.
type PruneBackupsResult struct {
	Deleted []string `json:"deleted,omitempty"`
}

// RecordInput is RecordActivity's input: the whole drill as it stands.
type RecordInput struct {
	Drill Drill `json:"drill"`
	// Seq orders one run's writes: a write older than the row's (a retried
	// attempt landing late) is ignored, so the row never goes backwards.
	Seq int64 `json:"seq"`
}
