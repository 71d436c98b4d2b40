package report

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/experiment"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) *time.Time {
	t := t0.Add(time.Duration(sec) * time.Second)
	return &t
}

func seconds(v float64) *float64 { return &v }

func step(name, status string, from, to int, detail string) drills.Step {
	return drills.Step{Name: name, Status: status, StartedAt: *at(from), FinishedAt: at(to), Detail: detail}
}

func manifest() *drills.Manifest {
	return &drills.Manifest{ID: "bkp_01jq4", CreatedAt: t0.Add(-59 * time.Minute), SnapshotTime: t0.Add(-time.Hour),
		Postgres: drills.PostgresManifest{Database: "platform", ServerVersion: "17.2", SchemaVersion: 400, WALLSN: "0/16B3748",
			Tables: map[string]int64{"jobs": 1200, "drills": 3}},
		Redis: drills.RedisManifest{ServerVersion: "7.4.1", Keys: 42},
		Artefacts: []drills.Artefact{
			{Name: "postgres.dump", Kind: "postgres", Size: 5_242_880, SHA256: "9f2c1e0d5b7a4c3e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde"},
			{Name: "redis.rdb", Kind: "redis", Size: 900, SHA256: "41ab5e6f7081920a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef012"},
		}}
}

func base(scenario string) drills.Drill {
	return drills.Drill{ID: "drl_1", Principal: "ops/key_1", Scenario: scenario, WorkflowID: "drl_1", RunID: "0195-run",
		CreatedAt: t0, StartedAt: at(0), Measurements: map[string]float64{}}
}

func goldenCases() map[string]struct {
	d      drills.Drill
	m      *drills.Manifest
	runURL string
} {
	met := base(drills.ScenarioRestoreVerify)
	met.Status, met.Verdict, met.FinishedAt, met.BackupID = drills.Succeeded, drills.Met, at(185), "bkp_01jq4"
	met.Objectives = drills.Objectives{RTOSeconds: seconds(300), RPOSeconds: seconds(86400)}
	met.Measurements = map[string]float64{drills.RTOSeconds: 120.5, drills.RPOSeconds: 3600, "tables_checked": 2, "total_bytes": 5_243_780}
	met.Timeline = []drills.Step{
		step(drills.DeclareStep, drills.StepSucceeded, 0, 0, "disaster declared at 2026-03-01T12:00:00Z (t0)"),
		step(drills.VerifyStep, drills.StepSucceeded, 0, 20, "backup bkp_01jq4: 2 artefacts match"),
		step(drills.RestoreStep, drills.StepSucceeded, 20, 120, "restored into database drill_drl_1"),
		step(drills.CheckStep, drills.StepSucceeded, 120, 180, "2 tables | schema 400 match"),
		step(drills.CleanupStep, drills.StepSucceeded, 180, 185, "scratch targets removed"),
	}

	corrupt := base(drills.ScenarioRestoreVerify)
	corrupt.Status, corrupt.Verdict, corrupt.FinishedAt, corrupt.BackupID = drills.Failed, drills.Missed, at(12), "bkp_01jq4"
	corrupt.Objectives = drills.Objectives{RTOSeconds: seconds(300)}
	corrupt.Reasons = []string{"the drill ended failed, not succeeded",
		"step verify_backup failed: postgres.dump: sha256 is 00ff…,\nmanifest says 9f2c…", "RTO was not measured (objective 300 s)"}
	corrupt.Timeline = []drills.Step{
		step(drills.DeclareStep, drills.StepSucceeded, 0, 0, "disaster declared"),
		step(drills.VerifyStep, drills.StepFailed, 0, 10, "postgres.dump: sha256 is 00ff…,\nmanifest says 9f2c…"),
		step(drills.CleanupStep, drills.StepSucceeded, 10, 12, "scratch targets removed"),
	}

	slow := base(drills.ScenarioRestoreVerify)
	slow.Status, slow.Verdict, slow.FinishedAt, slow.BackupID = drills.Aborted, drills.Missed, at(700), "bkp_01jq4"
	slow.Objectives = drills.Objectives{RTOSeconds: seconds(300), RPOSeconds: seconds(1800)}
	slow.Measurements = map[string]float64{drills.RPOSeconds: 3600}
	slow.Reasons = []string{"the drill was aborted before it finished", "RTO was not measured (objective 300 s)",
		"RPO was 3600 s, over the objective of 1800 s"}
	slow.Timeline = []drills.Step{
		step(drills.DeclareStep, drills.StepSucceeded, 0, 0, ""),
		step(drills.VerifyStep, drills.StepSucceeded, 0, 20, ""),
		step(drills.RestoreStep, drills.StepAborted, 20, 690, "interrupted: aborted on request: taking too long"),
		step(drills.AbortStep, drills.StepSucceeded, 689, 689, "aborted on request: taking too long"),
		step(drills.CleanupStep, drills.StepSucceeded, 690, 700, "scratch targets removed"),
	}

	backup := base(drills.ScenarioBackup)
	backup.ID, backup.WorkflowID, backup.Principal = "nightly-backup-2026-03-01T12:00:00Z", "nightly-backup-2026-03-01T12:00:00Z", "system"
	backup.Status, backup.BackupID = drills.Running, "bkp_01jq4"
	backup.Measurements = map[string]float64{"backup_seconds": 31.25, "total_bytes": 5_243_780}
	backup.Timeline = []drills.Step{
		step(drills.BackupStep, drills.StepSucceeded, 0, 31, "backup bkp_01jq4: 2 artefacts"),
		{Name: drills.PruneStep, Status: drills.StepRunning, StartedAt: *at(31)},
	}

	return map[string]struct {
		d      drills.Drill
		m      *drills.Manifest
		runURL string
	}{
		"restore_verify_met":     {met, manifest(), "http://localhost:8233/namespaces/default/workflows/drl_1/0195-run/history"},
		"restore_verify_corrupt": {corrupt, nil, ""},
		"restore_verify_aborted": {slow, manifest(), "http://localhost:8233/namespaces/default/workflows/drl_1/0195-run/history"},
		"backup_running":         {backup, manifest(), "http://ui.example/namespaces/default/workflows/nightly backup/r1"},
	}
}

func TestRender_Golden(t *testing.T) {
	for name, c := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			got := Render(c.d, c.m, c.runURL)
			path := filepath.Join("testdata", name+".md")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./drills/report -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("report (-golden +got):\n%s", diff)
			}
		})
	}
}

func TestRender_ActionItemsCoverEveryMissedObjectiveAndFailedStep(t *testing.T) {
	d := base(drills.ScenarioRestoreVerify)
	d.Status, d.Verdict = drills.Failed, drills.Missed
	d.Objectives = drills.Objectives{RTOSeconds: seconds(60), RPOSeconds: seconds(60)}
	d.Measurements = map[string]float64{drills.RTOSeconds: 90}
	d.Timeline = []drills.Step{step(drills.CheckStep, drills.StepFailed, 0, 1, "table jobs: 9 rows, manifest says 10"),
		step(drills.CleanupStep, drills.StepFailed, 1, 2, "")}
	want := []string{
		"Find why the restored copy differs from its manifest (table jobs: 9 rows, manifest says 10).",
		"Remove the scratch targets the drill left behind by hand, and fix the cleanup.",
		"Bring RTO from 90 s to at most 60 s: restore in parallel (pg_restore --jobs), keep dumps small, or restore onto a target provisioned in advance.",
		"Make the drill measure RPO: it ended before it could (objective 60 s).",
	}
	if diff := cmp.Diff(want, actions(d)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	report := Render(d, nil, "")
	for _, a := range want {
		if !strings.Contains(report, "- "+a+"\n") {
			t.Errorf("report lacks the action %q", a)
		}
	}
}

func TestHypothesis(t *testing.T) {
	tests := []struct {
		scenario string
		obj      drills.Objectives
		contains string
	}{
		{drills.ScenarioRestoreVerify, drills.Objectives{RTOSeconds: seconds(300), RPOSeconds: seconds(86400)},
			"into a fresh target within the RTO of 300 s and lose at most 86400 s of data"},
		{drills.ScenarioRestoreVerify, drills.Objectives{}, "(no RTO objective was set)"},
		{drills.ScenarioBackup, drills.Objectives{}, "size and SHA-256"},
		{drills.ScenarioFailover, drills.Objectives{RTOSeconds: seconds(30), RPOSeconds: seconds(0)}, "within the RTO of 30 s, and lose at most 0 s of acknowledged writes"},
		{drills.ScenarioCacheLoss, drills.Objectives{}, "no 5xx responses"},
		{"mystery", drills.Objectives{}, `No hypothesis is written for scenario "mystery".`},
	}
	for _, tt := range tests {
		if got := Hypothesis(tt.scenario, tt.obj); !strings.Contains(got, tt.contains) {
			t.Errorf("Hypothesis(%s) = %q, want it to contain %q", tt.scenario, got, tt.contains)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB (1024 B)",
		5_242_880: "5.0 MiB (5242880 B)", 3 << 40: "3.0 TiB (3298534883328 B)"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRender_RecordedTextCannotBreakTheTables(t *testing.T) {
	d := base(drills.ScenarioBackup)
	d.Status = drills.Failed
	d.Timeline = []drills.Step{step(drills.BackupStep, drills.StepFailed, 0, 1, "a | b\n## injected\n- item")}
	report := Render(d, nil, "")
	if strings.Contains(report, "\n## injected") || strings.Contains(report, "\n- item") {
		t.Errorf("a detail started its own block:\n%s", report)
	}
	if !strings.Contains(report, `a \| b ## injected - item`) {
		t.Errorf("the detail is not escaped in its cell:\n%s", report)
	}
}

func TestRender_LinksTheChartsOfALoadExperiment(t *testing.T) {
	d := drills.Drill{ID: "drl_1", Scenario: "capacity", Measurements: experiment.StepMeasurements([]experiment.Step{
		{Rate: 10, Seconds: 1, Classes: map[string]experiment.ClassStats{"list": {Requests: 5, Rate: 2, P99: 3}}}})}
	out := Render(d, nil, "")
	if !strings.Contains(out, "## Charts") || !strings.Contains(out, "[list](/v1/drills/drl_1/charts/list)") || strings.Contains(out, "charts/ofrep") {
		t.Errorf("charts section:\n%s", out)
	}
	d.Measurements = map[string]float64{"rto_seconds": 2}
	if strings.Contains(Render(d, nil, ""), "## Charts") {
		t.Error("a drill without load data links charts")
	}
}
