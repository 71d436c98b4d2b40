package drill

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakes stand in for the drill's activities and log what they were asked.
type fakes struct {
	mu         sync.Mutex
	calls      []string
	records    []RecordInput
	cleanups   []CleanupInput
	verifyErr  error
	restoreErr error
	mismatches []string
}

func (f *fakes) called(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func manifest() Manifest {
	return Manifest{ID: "bkp_1", CreatedAt: start.Add(-59 * time.Minute), SnapshotTime: start.Add(-time.Hour),
		Postgres:  drills.PostgresManifest{SchemaVersion: 400, Tables: map[string]int64{"jobs": 10, "drills": 2}},
		Redis:     drills.RedisManifest{Keys: 7},
		Artefacts: []Artefact{{Name: "postgres.dump", Kind: "postgres", Size: 1000}, {Name: "redis.rdb", Kind: "redis", Size: 200}, {Name: "config.json", Kind: "config", Size: 30}},
		Durations: map[string]float64{"postgres": 4.5, "redis_seconds": 1}}
}

func (f *fakes) backup(_ context.Context, _ BackupInput) (BackupResult, error) {
	f.called(BackupActivity)
	return BackupResult{Manifest: manifest()}, nil
}

func (f *fakes) prune(_ context.Context) (PruneBackupsResult, error) {
	f.called(PruneBackupsActivity)
	return PruneBackupsResult{Deleted: []string{"bkp_0"}}, nil
}

func (f *fakes) verify(_ context.Context, _ VerifyBackupInput) (VerifyBackupResult, error) {
	f.called(VerifyBackupActivity)
	return VerifyBackupResult{Manifest: manifest()}, f.verifyErr
}

func (f *fakes) restore(_ context.Context, in RestoreInput) (RestoreResult, error) {
	f.called(RestoreActivity)
	if f.restoreErr != nil {
		return RestoreResult{}, f.restoreErr
	}
	return RestoreResult{Scratch: Scratch{Database: "drill_" + in.DrillID, RedisAddr: "127.0.0.1:7001"},
		AnsweredAt: start.Add(2 * time.Minute), Durations: map[string]float64{"postgres": 90}}, nil
}

func (f *fakes) check(_ context.Context, _ CheckRestoreInput) (CheckRestoreResult, error) {
	f.called(CheckRestoreActivity)
	return CheckRestoreResult{TablesChecked: 2, SamplesRead: 5, RedisKeys: 7, Mismatches: f.mismatches}, nil
}

func (f *fakes) cleanup(_ context.Context, in CleanupInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, CleanupActivity)
	f.cleanups = append(f.cleanups, in)
	return nil
}

func (f *fakes) record(_ context.Context, in RecordInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, in)
	return nil
}

// last is the drill's last recorded row.
func (f *fakes) last(t *testing.T) Drill {
	t.Helper()
	if len(f.records) == 0 {
		t.Fatal("no record written")
	}
	return f.records[len(f.records)-1].Drill
}

func newEnv(t *testing.T, f *fakes) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: Name})
	for name, fn := range map[string]any{
		BackupActivity: f.backup, PruneBackupsActivity: f.prune, VerifyBackupActivity: f.verify,
		RestoreActivity: f.restore, CheckRestoreActivity: f.check, CleanupActivity: f.cleanup, RecordActivity: f.record,
	} {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return env
}

// restoreTakes makes the restore take d of the workflow's clock.
func restoreTakes(env *testsuite.TestWorkflowEnvironment, f *fakes, d time.Duration) {
	env.OnActivity(RestoreActivity, mock.Anything, mock.Anything).After(d).Return(
		func(ctx context.Context, in RestoreInput) (RestoreResult, error) {
			res, err := f.restore(ctx, in)
			res.AnsweredAt = start.Add(d)
			return res, err
		})
}

func finished(t *testing.T, env *testsuite.TestWorkflowEnvironment) Drill {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var d Drill
	if err := env.GetWorkflowResult(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func seconds(v float64) *float64 { return &v }

func restoreInput() Input {
	return Input{ID: "drl_1", Principal: "ops", Scenario: ScenarioRestoreVerify,
		Objectives: Objectives{RTOSeconds: seconds(300), RPOSeconds: seconds(86400)}}
}

// steps lists the timeline as name:status.
func steps(d Drill) []string {
	out := make([]string, len(d.Timeline))
	for i, s := range d.Timeline {
		out[i] = s.Name + ":" + s.Status
	}
	return out
}

// checkRecords checks that the row's writes are numbered in order, that
// the first is running and the last is the drill the workflow returned.
func checkRecords(t *testing.T, f *fakes, final Drill) {
	t.Helper()
	for i, r := range f.records {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	if first := f.records[0].Drill; first.Status != Running || first.FinishedAt != nil {
		t.Errorf("first record = %s, finished %v", first.Status, first.FinishedAt)
	}
	if diff := cmp.Diff(final, f.last(t)); diff != "" {
		t.Errorf("last record differs from the result (-result +record):\n%s", diff)
	}
}

func TestDrill_BackupMeasuresSizesAndPrunes(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	env.ExecuteWorkflow(Workflow, Input{Scenario: ScenarioBackup})
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Met || len(d.Reasons) != 0 || d.BackupID != "bkp_1" {
		t.Fatalf("drill = %s %s %v backup %q", d.Status, d.Verdict, d.Reasons, d.BackupID)
	}
	if d.ID != "default-test-workflow-id" || d.Principal != SystemPrincipal || d.FinishedAt == nil {
		t.Errorf("id %q principal %q finished %v", d.ID, d.Principal, d.FinishedAt)
	}
	want := map[string]float64{"postgres_bytes": 1000, "redis_bytes": 200, "config_bytes": 30, "total_bytes": 1230,
		"backup_postgres_seconds": 4.5, "backup_redis_seconds": 1, "postgres_tables": 2, "postgres_rows": 12, "redis_keys": 7,
		"backup_seconds": 0, "prune_seconds": 0, "backups_pruned": 1}
	if diff := cmp.Diff(want, d.Measurements); diff != "" {
		t.Errorf("measurements (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"backup:succeeded", "prune:succeeded"}, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if !slices.Equal(f.calls, []string{BackupActivity, PruneBackupsActivity}) {
		t.Errorf("calls = %v", f.calls)
	}
	checkRecords(t, f, d)
}

func TestDrill_RestoreVerifyMet(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	restoreTakes(env, f, 2*time.Minute)
	env.ExecuteWorkflow(Workflow, restoreInput())
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Met || len(d.Reasons) != 0 {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	if d.Measurements[drills.RTOSeconds] != 120 || d.Measurements[drills.RPOSeconds] != 3600 ||
		d.Measurements["tables_checked"] != 2 || d.Measurements["restore_postgres_seconds"] != 90 {
		t.Errorf("measurements = %v", d.Measurements)
	}
	want := []string{"declare_disaster:succeeded", "verify_backup:succeeded", "restore:succeeded", "check:succeeded", "cleanup:succeeded"}
	if diff := cmp.Diff(want, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if len(f.cleanups) != 1 || f.cleanups[0].Scratch.Database != "drill_drl_1" || f.cleanups[0].DrillID != "drl_1" {
		t.Errorf("cleanups = %+v", f.cleanups)
	}
	checkRecords(t, f, d)
	// Each step is recorded as it starts and as it ends.
	if n := len(f.records); n != 1+2*4+1 {
		t.Errorf("%d records, want 10", n)
	}
}

func TestDrill_RTOOverItsObjectiveIsMissed(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	restoreTakes(env, f, 10*time.Minute)
	env.ExecuteWorkflow(Workflow, restoreInput())
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Missed {
		t.Fatalf("drill = %s %s", d.Status, d.Verdict)
	}
	if diff := cmp.Diff([]string{"RTO was 600 s, over the objective of 300 s"}, d.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestDrill_CorruptBackupFailsAtVerifyAndStillCleansUp(t *testing.T) {
	f := &fakes{verifyErr: temporal.NewNonRetryableApplicationError("postgres.dump: sha256 is 9f2c…, manifest says 41ab…", CorruptBackupErrorType, nil)}
	env := newEnv(t, f)
	in := restoreInput()
	in.Params = []byte(`{"backup_id": "bkp_7"}`)
	env.ExecuteWorkflow(Workflow, in)
	d := finished(t, env)
	if d.Status != Failed || d.Verdict != Missed || d.BackupID != "bkp_7" {
		t.Fatalf("drill = %s %s backup %q", d.Status, d.Verdict, d.BackupID)
	}
	want := []string{"declare_disaster:succeeded", "verify_backup:failed", "cleanup:succeeded"}
	if diff := cmp.Diff(want, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	wantReasons := []string{"the drill ended failed, not succeeded",
		"step verify_backup failed: postgres.dump: sha256 is 9f2c…, manifest says 41ab…",
		"RTO was not measured (objective 300 s)", "RPO was not measured (objective 86400 s)"}
	if diff := cmp.Diff(wantReasons, d.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if !slices.Equal(f.calls, []string{VerifyBackupActivity, CleanupActivity}) {
		t.Errorf("calls = %v: a corrupt backup is not retried nor restored, and cleanup still runs", f.calls)
	}
	if len(f.cleanups) != 1 || f.cleanups[0] != (CleanupInput{DrillID: "drl_1"}) {
		t.Errorf("cleanups = %+v", f.cleanups)
	}
	checkRecords(t, f, d)
}

func TestDrill_RestoreFailingMidwayCleansUp(t *testing.T) {
	f := &fakes{restoreErr: errors.New("pg_restore: disk full")}
	env := newEnv(t, f)
	env.ExecuteWorkflow(Workflow, restoreInput())
	d := finished(t, env)
	if d.Status != Failed || d.Verdict != Missed {
		t.Fatalf("drill = %s %s", d.Status, d.Verdict)
	}
	want := []string{"declare_disaster:succeeded", "verify_backup:succeeded", "restore:failed", "cleanup:succeeded"}
	if diff := cmp.Diff(want, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if detail := d.Timeline[2].Detail; detail != "pg_restore: disk full" {
		t.Errorf("restore detail = %q", detail)
	}
	restores := 0
	for _, c := range f.calls {
		if c == RestoreActivity {
			restores++
		}
	}
	if restores != 3 || f.calls[len(f.calls)-1] != CleanupActivity {
		t.Errorf("calls = %v: want 3 restore attempts, then cleanup", f.calls)
	}
	if _, ok := d.Measurements[drills.RPOSeconds]; !ok {
		t.Errorf("the backup's RPO is known once it is verified: %v", d.Measurements)
	}
}

func TestDrill_MismatchesFailTheCheck(t *testing.T) {
	f := &fakes{mismatches: []string{"table jobs: 9 rows, manifest says 10"}}
	env := newEnv(t, f)
	env.ExecuteWorkflow(Workflow, restoreInput())
	d := finished(t, env)
	if d.Status != Failed || d.Timeline[3].Status != StepFailed ||
		d.Timeline[3].Detail != "the copy does not match the manifest: table jobs: 9 rows, manifest says 10" {
		t.Fatalf("drill = %s, timeline %+v", d.Status, d.Timeline)
	}
	if _, ok := d.Measurements[drills.RTOSeconds]; ok {
		t.Error("a copy that failed its checks must not count as recovered")
	}
}

func TestDrill_AbortDuringRestoreCleansUp(t *testing.T) {
	for _, via := range []string{"update", "signal"} {
		t.Run(via, func(t *testing.T) {
			f := &fakes{}
			env := newEnv(t, f)
			restoreTakes(env, f, time.Hour)
			var state Drill
			env.RegisterDelayedCallback(func() {
				if via == "signal" {
					env.SignalWorkflow(Abort, AbortInput{Reason: "game day over"})
				} else {
					env.UpdateWorkflowNoRejection(Abort, "abort-1", t, AbortInput{Reason: "game day over"})
				}
			}, time.Minute)
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(StateQuery)
				if err == nil {
					err = v.Get(&state)
				}
				if err != nil {
					t.Errorf("query: %v", err)
				}
			}, 30*time.Second)
			env.ExecuteWorkflow(Workflow, restoreInput())
			d := finished(t, env)
			if d.Status != Aborted || d.Verdict != Missed || d.Reasons[0] != "the drill was aborted before it finished" {
				t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
			}
			want := []string{"declare_disaster:succeeded", "verify_backup:succeeded", "restore:aborted", "abort:succeeded", "cleanup:succeeded"}
			if diff := cmp.Diff(want, steps(d)); diff != "" {
				t.Errorf("timeline (-want +got):\n%s", diff)
			}
			if got := d.Timeline[3].Detail; got != "aborted on request: game day over" {
				t.Errorf("abort detail %q", got)
			}
			if len(f.cleanups) != 1 || slices.Contains(f.calls, CheckRestoreActivity) {
				t.Errorf("calls = %v", f.calls)
			}
			if state.Status != Running || steps(state)[2] != "restore:running" {
				t.Errorf("state during the restore = %s %v", state.Status, steps(state))
			}
			checkRecords(t, f, d)
		})
	}
}

func TestDrill_CancellationCleansUp(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	restoreTakes(env, f, time.Hour)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(Workflow, restoreInput())
	if !env.IsWorkflowCompleted() || !temporal.IsCanceledError(env.GetWorkflowError()) {
		t.Fatalf("workflow error = %v, want cancelled", env.GetWorkflowError())
	}
	d := f.last(t)
	if d.Status != Aborted || d.Verdict != Missed || d.FinishedAt == nil {
		t.Fatalf("row = %s %s", d.Status, d.Verdict)
	}
	want := []string{"declare_disaster:succeeded", "verify_backup:succeeded", "restore:aborted", "abort:succeeded", "cleanup:succeeded"}
	if diff := cmp.Diff(want, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if d.Timeline[2].Detail != "interrupted: the workflow was cancelled" {
		t.Errorf("restore detail = %q", d.Timeline[2].Detail)
	}
	if len(f.cleanups) != 1 {
		t.Errorf("cleanups = %+v", f.cleanups)
	}
}

func TestDrill_AbortOnceStepsAreOverIsRejected(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	env.OnActivity(CleanupActivity, mock.Anything, mock.Anything).After(time.Minute).Return(f.cleanup)
	var rejected error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(Abort, "late", &testsuite.TestUpdateCallback{
			OnAccept:   func() { t.Error("abort during cleanup accepted") },
			OnReject:   func(err error) { rejected = err },
			OnComplete: func(any, error) {},
		}, AbortInput{})
	}, 30*time.Second)
	env.ExecuteWorkflow(Workflow, restoreInput())
	if d := finished(t, env); d.Status != Succeeded {
		t.Fatalf("status %s", d.Status)
	}
	var app *temporal.ApplicationError
	if !errors.As(rejected, &app) || app.Type() != ErrTypeInvalidTransition || !strings.Contains(app.Message(), "finishing") {
		t.Errorf("rejection = %v", rejected)
	}
}

func TestDrill_InvalidInputIsRecordedAndRefused(t *testing.T) {
	f := &fakes{}
	env := newEnv(t, f)
	env.ExecuteWorkflow(Workflow, Input{ID: "drl_x", Scenario: ScenarioFailover, Objectives: Objectives{RTOSeconds: seconds(-1)},
		Params: json.RawMessage(`{"driver":"sql"}`)})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeInvalidInput || !app.NonRetryable() {
		t.Fatalf("workflow error = %v, want a non-retryable InvalidInput", err)
	}
	d := f.last(t)
	if d.Status != Failed || d.Verdict != Missed || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], "#/objectives/rto_seconds: out_of_range") {
		t.Errorf("row = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls = %v", f.calls)
	}
}
