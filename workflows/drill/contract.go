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
	ScenarioBackup        = "backup"
	ScenarioRestoreVerify = "restore_verify"
	ScenarioFailover      = "failover"
	ScenarioCacheLoss     = "cache_loss"
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioBackup, ScenarioRestoreVerify, ScenarioFailover, ScenarioCacheLoss}

// Drill statuses.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Aborted   = "aborted"
)

// Verdicts: met only when the drill succeeded and every objective held.
const (
	Met    = "met"
	Missed = "missed"
)

// Step statuses in a drill's timeline.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
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
type Objectives struct {
	RTOSeconds *float64 `json:"rto_seconds,omitempty"`
	RPOSeconds *float64 `json:"rpo_seconds,omitempty"`
}

// RestoreParams are restore_verify's parameters.
type RestoreParams struct {
	// BackupID is the backup to restore; empty means the newest.
	BackupID string `json:"backup_id,omitempty"`
}

// Step is one entry of a drill's timeline.
type Step struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Detail     string     `json:"detail,omitempty"`
}

// Drill is a drill as its row and the state query show it.
type Drill struct {
	ID         string     `json:"id"`
	Principal  string     `json:"principal"`
	Scenario   string     `json:"scenario"`
	Status     string     `json:"status"`
	Verdict    string     `json:"verdict,omitempty"`
	Reasons    []string   `json:"reasons,omitempty"`
	Objectives Objectives `json:"objectives"`
	// Measurements hold rto_seconds and rpo_seconds when measured, and the
	// scenario's own (sizes in bytes, durations in seconds, counts).
	Measurements map[string]float64 `json:"measurements"`
	Timeline     []Step             `json:"timeline"`
	BackupID     string             `json:"backup_id,omitempty"`
	WorkflowID   string             `json:"workflow_id"`
	RunID        string             `json:"run_id"`
	CreatedAt    time.Time          `json:"created_at"`
	StartedAt    *time.Time         `json:"started_at,omitempty"`
	FinishedAt   *time.Time         `json:"finished_at,omitempty"`
}

// Artefact is one file of a backup.
type Artefact struct {
	Name   string `json:"name"` // e.g. "postgres.dump", "redis.rdb", "config.json"
	Kind   string `json:"kind"` // postgres, redis, config
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes one backup: manifest.json in its folder of the store.
type Manifest struct {
	ID        string    `json:"id"` // bkp_…
	CreatedAt time.Time `json:"created_at"`
	// SnapshotTime is when the Postgres snapshot the dump was taken on was
	// exported: the point in time the backup restores to (its RPO anchor).
	SnapshotTime time.Time        `json:"snapshot_time"`
	Postgres     PostgresManifest `json:"postgres"`
	Redis        RedisManifest    `json:"redis"`
	Artefacts    []Artefact       `json:"artefacts"`
	// Durations of each part, in seconds.
	Durations map[string]float64 `json:"durations"`
}

// PostgresManifest is what the dump holds.
type PostgresManifest struct {
	Database      string           `json:"database"`
	ServerVersion string           `json:"server_version"`
	SchemaVersion int64            `json:"schema_version"` // the migrations' version
	WALLSN        string           `json:"wal_lsn"`
	Tables        map[string]int64 `json:"tables"` // row count per table, exact for the snapshot
}

// RedisManifest is what the snapshot holds.
type RedisManifest struct {
	ServerVersion string `json:"server_version"`
	// Keys is DBSIZE of the platform's database just before the snapshot:
	// a live cache's count moves, so it is a guide, not an exact check.
	Keys int64 `json:"keys"`
	// DB is the platform's database index, which restores read back.
	DB int `json:"db"`
}

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
}
