package drill

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// failoverFakes stand in for the failover activities.
type failoverFakes struct {
	failoverErr error
	calls       atomic.Int32
	got         FailoverInput
}

func (f *failoverFakes) replication(_ context.Context) (ReplicationResult, error) {
	return ReplicationResult{Primary: "10.0.0.1:5432", Standby: "10.0.0.2:5432", SyncState: "standby1 sync", LagBytes: 128}, nil
}

func (f *failoverFakes) failover(_ context.Context, in FailoverInput) (FailoverResult, error) {
	f.calls.Add(1)
	f.got = in
	if f.failoverErr != nil {
		return FailoverResult{}, f.failoverErr
	}
	return FailoverResult{NewPrimary: in.Standby, FencedAt: start, PromotedAt: start.Add(time.Second),
		FirstWriteAt: start.Add(1500 * time.Millisecond), RTOSeconds: 1.5, Acknowledged: 40, Failed: 12}, nil
}

func failoverEnv(t *testing.T, f *fakes, ff *failoverFakes) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t, f)
	env.RegisterActivityWithOptions(ff.replication, activity.RegisterOptions{Name: CheckReplicationActivity})
	env.RegisterActivityWithOptions(ff.failover, activity.RegisterOptions{Name: FailoverActivity})
	return env
}

func failoverInput(params string) Input {
	return Input{ID: "drl_f", Scenario: ScenarioFailover, Objectives: Objectives{RTOSeconds: seconds(30), RPOSeconds: seconds(0)},
		Params: json.RawMessage(params)}
}

func TestFailover_MeasuresRTOAndRPOAndIsMet(t *testing.T) {
	f, ff := &fakes{}, &failoverFakes{}
	env := failoverEnv(t, f, ff)
	env.ExecuteWorkflow(Workflow, failoverInput(`{"driver":"sql","max_unavailable_seconds":20}`))
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Met {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	if diff := cmp.Diff([]string{"check_replication:succeeded", "failover:succeeded"}, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	m := d.Measurements
	for name, want := range map[string]float64{"rto_seconds": 1.5, "rpo_seconds": 0, "rpo_writes": 0,
		"heartbeats_acknowledged": 40, "heartbeats_failed": 12, "replication_lag_bytes": 128} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	want := FailoverInput{DrillID: "drl_f", Driver: DriverSQL, Primary: "10.0.0.1:5432", Standby: "10.0.0.2:5432",
		MaxUnavailable: 20, HeartbeatIntervalMS: DefaultHeartbeatIntervalMS}
	if ff.got != want {
		t.Errorf("failover input = %+v, want %+v", ff.got, want)
	}
}

// TestFailover_StopConditionFailsTheDrillAfterOneAttempt: the activity's
// stop condition (no write within max_unavailable_seconds, old primary
// unfenced) ends the drill failed and missed, and a failover is never
// retried, whatever its error.
func TestFailover_StopConditionFailsTheDrillAfterOneAttempt(t *testing.T) {
	for name, err := range map[string]error{
		"stop condition": temporal.NewNonRetryableApplicationError("failover stopped: 10.0.0.1:5432 unfenced; the standby was not promoted",
			FailoverStoppedErrorType, errors.New("no successful write within 30 s of the fence")),
		"a retryable error": errors.New("connection reset"),
	} {
		t.Run(name, func(t *testing.T) {
			f, ff := &fakes{}, &failoverFakes{failoverErr: err}
			env := failoverEnv(t, f, ff)
			env.ExecuteWorkflow(Workflow, failoverInput(`{"driver":"sql"}`))
			d := finished(t, env)
			if d.Status != Failed || d.Verdict != Missed {
				t.Fatalf("drill = %s %s", d.Status, d.Verdict)
			}
			if diff := cmp.Diff([]string{"check_replication:succeeded", "failover:failed"}, steps(d)); diff != "" {
				t.Errorf("timeline (-want +got):\n%s", diff)
			}
			if n := ff.calls.Load(); n != 1 {
				t.Errorf("failover attempts = %d, want 1", n)
			}
			if _, ok := d.Measurements["rto_seconds"]; ok {
				t.Errorf("rto measured for a failed failover: %v", d.Measurements)
			}
			if reasons := strings.Join(d.Reasons, "\n"); !strings.Contains(reasons, "step failover failed") {
				t.Errorf("reasons = %s", reasons)
			}
			if last := d.Timeline[len(d.Timeline)-1]; name == "stop condition" && !strings.Contains(last.Detail, "unfenced") {
				t.Errorf("failover detail = %q", last.Detail)
			}
		})
	}
}

func TestFailover_DryRunMeasuresNoRTO(t *testing.T) {
	f, ff := &fakes{}, &failoverFakes{}
	env := failoverEnv(t, f, ff)
	in := failoverInput(`{"driver":"dry_run"}`)
	in.Objectives.RTOSeconds = nil
	env.ExecuteWorkflow(Workflow, in)
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Met || ff.got.Driver != DriverDryRun {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	if _, ok := d.Measurements["rto_seconds"]; ok {
		t.Errorf("a dry run measured an rto: %v", d.Measurements)
	}
	if detail := d.Timeline[len(d.Timeline)-1].Detail; !strings.Contains(detail, "nothing fenced or promoted") {
		t.Errorf("detail = %q", detail)
	}
}

// TestFailover_PatroniChecksThroughPatroni: the patroni driver finds the
// leader and candidate with CheckPatroniActivity (never the sql driver's
// host probe) and hands them, as member names, to the failover activity.
func TestFailover_PatroniChecksThroughPatroni(t *testing.T) {
	f, ff := &fakes{}, &failoverFakes{}
	env := failoverEnv(t, f, ff)
	var sqlChecks atomic.Int32
	env.RegisterActivityWithOptions(func(context.Context) (ReplicationResult, error) {
		sqlChecks.Add(1)
		return ReplicationResult{}, errors.New("the sql driver's check ran")
	}, activity.RegisterOptions{Name: CheckReplicationActivity})
	env.RegisterActivityWithOptions(func(context.Context) (ReplicationResult, error) {
		return ReplicationResult{Primary: "node1", Standby: "node2", SyncState: "node2 sync", LagBytes: 0}, nil
	}, activity.RegisterOptions{Name: CheckPatroniActivity})
	env.ExecuteWorkflow(Workflow, failoverInput(`{"driver":"patroni"}`))
	d := finished(t, env)
	if d.Status != Succeeded || d.Verdict != Met {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	if n := sqlChecks.Load(); n != 0 {
		t.Errorf("the sql driver's replication check ran %d times", n)
	}
	want := FailoverInput{DrillID: "drl_f", Driver: DriverPatroni, Primary: "node1", Standby: "node2",
		MaxUnavailable: DefaultMaxUnavailableSeconds, HeartbeatIntervalMS: DefaultHeartbeatIntervalMS}
	if ff.got != want {
		t.Errorf("failover input = %+v, want %+v", ff.got, want)
	}
	if d.Measurements["rto_seconds"] != 1.5 {
		t.Errorf("measurements = %v", d.Measurements)
	}
	for i, want := range []string{"Patroni leader node1 streams to replica node2", "Patroni switched over from node1 to node2"} {
		if detail := d.Timeline[i].Detail; !strings.Contains(detail, want) {
			t.Errorf("step %d detail = %q, want %q in it", i, detail, want)
		}
	}
}

func TestUsesPatroni(t *testing.T) {
	for params, want := range map[string]bool{`{"driver":"patroni"}`: true, `{"driver":"sql"}`: false,
		`{"driver":"patroni","x":1}`: false, ``: false} {
		if got := UsesPatroni(Input{Scenario: ScenarioFailover, Params: json.RawMessage(params)}); got != want {
			t.Errorf("UsesPatroni(%s) = %v, want %v", params, got, want)
		}
	}
	if UsesPatroni(Input{Scenario: ScenarioBackup, Params: json.RawMessage(`{"driver":"patroni"}`)}) {
		t.Error("a backup drill uses patroni")
	}
}
