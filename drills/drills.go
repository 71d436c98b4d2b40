// Package drills is the drill record: what a disaster-recovery drill is, its
// statuses, verdicts, timeline and objectives, and the manifest of the
// backups it takes and restores. It is a leaf, like package jobs: the drill
// workflow (whose contract aliases these types), its activities (the row's
// one writer), drills/drillrow (the table's scanner), the verdict and the
// report, and the API all share it without reaching up a layer.
package drills

import (
	"slices"
	"time"
)

// Scenarios.
const (
	ScenarioBackup        = "backup"
	ScenarioRestoreVerify = "restore_verify"
	ScenarioFailover      = "failover"
	ScenarioCacheLoss     = "cache_loss"
	// Experiments: load to the knee, and faults under steady load.
	ScenarioCapacity      = "capacity"
	ScenarioDBDegraded    = "db_degraded"
	ScenarioCacheDegraded = "cache_degraded"
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioBackup, ScenarioRestoreVerify, ScenarioFailover, ScenarioCacheLoss,
	ScenarioCapacity, ScenarioDBDegraded, ScenarioCacheDegraded}

// Names of the steps in a drill's timeline.
const (
	DeclareStep = "declare_disaster"
	BackupStep  = "backup"
	PruneStep   = "prune"
	VerifyStep  = "verify_backup"
	RestoreStep = "restore"
	CheckStep   = "check"
	CleanupStep = "cleanup"
	// AbortStep marks when an abort was accepted or the workflow cancelled.
	AbortStep = "abort"
)

// Drill statuses.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Aborted   = "aborted"
)

// Statuses lists every status.
var Statuses = []string{Queued, Running, Succeeded, Failed, Aborted}

// Final reports whether status is final: the drill will not change again.
func Final(status string) bool {
	return slices.Contains([]string{Succeeded, Failed, Aborted}, status)
}

// Verdicts: met only when the drill succeeded and every objective held.
const (
	Met    = "met"
	Missed = "missed"
)

// Step statuses in a drill's timeline. A step is aborted when an abort or a
// cancellation cut it short.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
	StepAborted   = "aborted"
)

// Measurement names shared by every scenario that measures recovery.
const (
	RTOSeconds = "rto_seconds"
	RPOSeconds = "rpo_seconds"
)

// Objectives are what the drill must show. Absent means not judged.
type Objectives struct {
	RTOSeconds *float64 `json:"rto_seconds,omitempty"`
	RPOSeconds *float64 `json:"rpo_seconds,omitempty"`
}

// Step is one entry of a drill's timeline.
type Step struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Detail     string     `json:"detail,omitempty"`
}

// Seconds is how long the step took, or 0 while it runs.
func (s Step) Seconds() float64 {
	if s.FinishedAt == nil {
		return 0
	}
	return Seconds(s.FinishedAt.Sub(s.StartedAt))
}

// Seconds is d in seconds, to the millisecond, never negative: two clocks
// (the workflow's and an activity's) may disagree by a little.
func Seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return float64(d.Milliseconds()) / 1000
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
	// UpdatedAt is when the row was last written; zero in the workflow's
	// own state.
	UpdatedAt  time.Time  `json:"updated_at,omitzero"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Artefact is one file of a backup.
type Artefact struct {
	Name   string `json:"name"` // e.g. "postgres.dump", "redis.rdb", "config.json"
	Kind   string `json:"kind"` // postgres, redis, config
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Artefact kinds.
const (
	KindPostgres = "postgres"
	KindRedis    = "redis"
	KindConfig   = "config"
)

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
