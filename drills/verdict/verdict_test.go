package verdict

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/drills"
)

func ptr(v float64) *float64 { return &v }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestRTOAndRPO(t *testing.T) {
	tests := []struct {
		name     string
		got      float64
		expected float64
	}{
		{"rto is t1 minus t0", RTO(t0, t0.Add(2*time.Minute+500*time.Millisecond)), 120.5},
		{"rto never negative", RTO(t0, t0.Add(-time.Second)), 0},
		{"rto to the millisecond", RTO(t0, t0.Add(1234567*time.Microsecond)), 1.234},
		{"rpo is t0 minus the snapshot", RPO(t0, t0.Add(-time.Hour)), 3600},
		{"rpo never negative", RPO(t0, t0.Add(time.Minute)), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.expected {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.expected)
		}
	}
}

func step(name, status, detail string) drills.Step {
	return drills.Step{Name: name, Status: status, StartedAt: t0, Detail: detail}
}

func TestJudge(t *testing.T) {
	ok := []drills.Step{step("verify_backup", drills.StepSucceeded, ""), step("restore", drills.StepSucceeded, "")}
	both := drills.Objectives{RTOSeconds: ptr(300), RPOSeconds: ptr(86400)}
	measured := map[string]float64{drills.RTOSeconds: 120, drills.RPOSeconds: 3600}
	tests := []struct {
		name         string
		status       string
		obj          drills.Objectives
		measurements map[string]float64
		timeline     []drills.Step
		verdict      string
		reasons      []string
	}{
		{name: "succeeded with no objectives is met", status: drills.Succeeded, timeline: ok, verdict: drills.Met},
		{name: "every objective held", status: drills.Succeeded, obj: both, measurements: measured, timeline: ok, verdict: drills.Met},
		{name: "an objective exactly met holds", status: drills.Succeeded, obj: drills.Objectives{RTOSeconds: ptr(120)},
			measurements: measured, timeline: ok, verdict: drills.Met},
		{name: "zero objective and zero measured holds", status: drills.Succeeded, obj: drills.Objectives{RPOSeconds: ptr(0)},
			measurements: map[string]float64{drills.RPOSeconds: 0}, verdict: drills.Met},
		{name: "rto over its objective", status: drills.Succeeded, obj: drills.Objectives{RTOSeconds: ptr(60)},
			measurements: measured, timeline: ok, verdict: drills.Missed,
			reasons: []string{"RTO was 120 s, over the objective of 60 s"}},
		{name: "both over", status: drills.Succeeded, obj: drills.Objectives{RTOSeconds: ptr(60), RPOSeconds: ptr(1800.5)},
			measurements: measured, timeline: ok, verdict: drills.Missed,
			reasons: []string{"RTO was 120 s, over the objective of 60 s", "RPO was 3600 s, over the objective of 1800.5 s"}},
		{name: "an objective not measured", status: drills.Succeeded, obj: both,
			measurements: map[string]float64{drills.RPOSeconds: 10}, timeline: ok, verdict: drills.Missed,
			reasons: []string{"RTO was not measured (objective 300 s)"}},
		{name: "a failed step and its unmeasured objective", status: drills.Failed, obj: both,
			measurements: map[string]float64{},
			timeline:     []drills.Step{step("verify_backup", drills.StepFailed, "postgres.dump: sha256 mismatch"), step("cleanup", drills.StepSucceeded, "")},
			verdict:      drills.Missed,
			reasons: []string{"the drill ended failed, not succeeded", "step verify_backup failed: postgres.dump: sha256 mismatch",
				"RTO was not measured (objective 300 s)", "RPO was not measured (objective 86400 s)"}},
		{name: "a failed step without detail", status: drills.Failed, timeline: []drills.Step{step("prune", drills.StepFailed, "")},
			verdict: drills.Missed, reasons: []string{"the drill ended failed, not succeeded", "step prune failed"}},
		{name: "aborted, the interrupted step is not a failure", status: drills.Aborted,
			timeline: []drills.Step{step("restore", drills.StepAborted, "interrupted")}, verdict: drills.Missed,
			reasons: []string{"the drill was aborted before it finished"}},
		{name: "still running", status: drills.Running, verdict: drills.Missed, reasons: []string{"the drill has not finished"}},
		{name: "a failed cleanup misses even a succeeded status", status: drills.Succeeded, obj: both, measurements: measured,
			timeline: []drills.Step{step("cleanup", drills.StepFailed, "drop database: busy")}, verdict: drills.Missed,
			reasons: []string{"step cleanup failed: drop database: busy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verdict, reasons := Judge(tt.status, tt.obj, tt.measurements, tt.timeline)
			if verdict != tt.verdict {
				t.Errorf("verdict %s, want %s", verdict, tt.verdict)
			}
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	checks := Checks(drills.Objectives{RTOSeconds: ptr(60)}, map[string]float64{drills.RTOSeconds: 60, drills.RPOSeconds: 5})
	rto, rpo := checks[0], checks[1]
	if rto.Name != "RTO" || !rto.Judged() || !rto.Held() || rto.Reason() != "" || *rto.Measured != 60 {
		t.Errorf("rto = %+v", rto)
	}
	if rpo.Name != "RPO" || rpo.Judged() || rpo.Held() || rpo.Reason() != "" || *rpo.Measured != 5 {
		t.Errorf("rpo = %+v: measured without an objective is neither held nor missed", rpo)
	}
	unmeasured := Checks(drills.Objectives{RPOSeconds: ptr(1)}, nil)[1]
	if unmeasured.Measured != nil || unmeasured.Held() || unmeasured.Reason() != "RPO was not measured (objective 1 s)" {
		t.Errorf("unmeasured = %+v", unmeasured)
	}
}
