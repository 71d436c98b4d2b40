package rollout

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/flags/guard"
)

// fakeFlag stands in for the rollout activities: a flag with a version that
// every write bumps, the observations to return, and a log of the calls.
type fakeFlag struct {
	mu       sync.Mutex
	version  int64
	splits   []int  // percents written
	adopted  []bool // Adopt of each split
	resets   []string
	records  []RecordInput
	observe  func(in ObserveInput) guard.Observation
	conflict bool // the next split finds the flag changed by someone else
}

func (f *fakeFlag) begin(_ context.Context, in BeginInput) (BeginResult, error) {
	if in.Invalid != "" {
		return BeginResult{Failed: true, Reason: in.Invalid}, nil
	}
	return BeginResult{Control: "off", FlagVersion: f.version}, nil
}

func (f *fakeFlag) split(_ context.Context, in SplitInput) (SplitResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conflict || (!in.Adopt && in.ExpectedVersion != f.version) {
		f.conflict = false
		f.version++
		return SplitResult{Conflict: true, CurrentVersion: f.version, ChangedBy: "ann/key_1"}, nil
	}
	f.version++
	f.splits, f.adopted = append(f.splits, in.Percent), append(f.adopted, in.Adopt)
	return SplitResult{Version: f.version, At: time.Unix(1_700_000_000, 0)}, nil
}

func (f *fakeFlag) observeStep(_ context.Context, in ObserveInput) (ObserveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ObserveResult{Observation: f.observe(in), FlagVersion: f.version, ChangedBy: "ann/key_1",
		Evidence: Evidence{Source: in.Guard.Source}}, nil
}

func (f *fakeFlag) reset(_ context.Context, in ResetInput) (ResetResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in.ExpectedVersion != f.version {
		return ResetResult{Conflict: true, CurrentVersion: f.version, ChangedBy: "ann/key_1"}, nil
	}
	f.version++
	f.resets = append(f.resets, in.Cause)
	return ResetResult{Version: f.version}, nil
}

func (f *fakeFlag) record(_ context.Context, in RecordInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, in)
	return nil
}

// statuses lists the distinct statuses recorded, in order.
func (f *fakeFlag) statuses() []string {
	var out []string
	for _, r := range f.records {
		if len(out) == 0 || out[len(out)-1] != r.Status {
			out = append(out, r.Status)
		}
	}
	return out
}

func healthy(ObserveInput) guard.Observation {
	return guard.Observation{Control: guard.Cohort{Samples: 500, Errors: 5, P95LatencyMs: 100},
		Treatment: guard.Cohort{Samples: 500, Errors: 5, P95LatencyMs: 105}}
}

func failing(ObserveInput) guard.Observation {
	o := healthy(ObserveInput{})
	o.Treatment.Errors = 100
	return o
}

func noData(ObserveInput) guard.Observation { return guard.Observation{} }

func newRolloutEnv(t *testing.T, f *fakeFlag) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: Name})
	for name, fn := range map[string]any{
		BeginActivity: f.begin, SplitActivity: f.split, ObserveActivity: f.observeStep,
		ResetActivity: f.reset, RecordActivity: f.record,
	} {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return env
}

func rolloutInput(steps ...Step) Input {
	interval, failures, extensions := 10, 2, 2
	return Input{ID: "rol_1", Flag: "checkout", Variant: "on", Steps: steps,
		Guard: GuardInput{Source: GuardSourceEvents, IntervalSeconds: &interval, FailureLimit: &failures, MaxInconclusiveExtensions: &extensions}}
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) Result {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRollout_HealthyVariantReaches100(t *testing.T) {
	f := &fakeFlag{version: 7, observe: healthy}
	env := newRolloutEnv(t, f)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 30}, Step{50, 30}, Step{100, 30}))
	res := result(t, env)
	if res.Status != Succeeded {
		t.Fatalf("status %s (%s), want succeeded", res.Status, res.Reason)
	}
	if !slices.Equal(f.splits, []int{10, 50, 100}) || len(f.resets) != 0 {
		t.Errorf("splits %v resets %v", f.splits, f.resets)
	}
	last := f.records[len(f.records)-1]
	if !last.Finished || last.Evidence == nil || last.Percent != 100 {
		t.Errorf("last record = %+v", last)
	}
	// Each step: checks at 10s and 20s during the hold, the judgement at 30s.
	checks := 0
	for _, r := range f.records {
		if r.Check != nil {
			checks++
		}
	}
	if checks != 9 {
		t.Errorf("%d checks recorded, want 9", checks)
	}
}

func TestRollout_100PercentStepJudgesAgainstTheLastControl(t *testing.T) {
	f := &fakeFlag{version: 1}
	var baselines []*guard.Cohort
	f.observe = func(in ObserveInput) guard.Observation {
		baselines = append(baselines, in.Baseline)
		return healthy(in)
	}
	env := newRolloutEnv(t, f)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{50, 10}, Step{100, 10}))
	if res := result(t, env); res.Status != Succeeded {
		t.Fatalf("status %s", res.Status)
	}
	if len(baselines) != 2 || baselines[0] != nil || baselines[1] == nil || baselines[1].Samples != 500 {
		t.Errorf("baselines = %v", baselines)
	}
}

func TestRollout_RegressionRollsBackWithinTheHold(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	f.observe = func(in ObserveInput) guard.Observation {
		if in.Percent >= 25 {
			return failing(in)
		}
		return healthy(in)
	}
	env := newRolloutEnv(t, f)
	var rolledBackAt time.Duration
	start := env.Now()
	env.OnActivity(ResetActivity, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ResetInput) (ResetResult, error) {
		rolledBackAt = env.Now().Sub(start)
		return f.reset(ctx, in)
	})
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 30}, Step{25, 300}, Step{100, 30}))
	res := result(t, env)
	if res.Status != RolledBack || !strings.Contains(res.Reason, "error rate") {
		t.Fatalf("status %s (%s), want rolled_back for the error rate", res.Status, res.Reason)
	}
	if !slices.Equal(f.splits, []int{10, 25}) || !slices.Equal(f.resets, []string{ResetRegression}) {
		t.Errorf("splits %v resets %v", f.splits, f.resets)
	}
	// Step 0 takes 30s; the 25% step fails at 10s and 20s (failure_limit 2),
	// long before its 300s hold ends.
	if rolledBackAt > 55*time.Second {
		t.Errorf("rolled back after %s, want within two intervals of the 25%% step", rolledBackAt)
	}
	last := f.records[len(f.records)-1]
	if last.Evidence == nil || last.Evidence.Decision != string(guard.RollBack) || len(last.Evidence.Checks) != 2 {
		t.Errorf("evidence = %+v", last.Evidence)
	}
}

func TestRollout_NoDataExtendsTheHoldAndNeverPasses(t *testing.T) {
	f := &fakeFlag{version: 1, observe: noData}
	env := newRolloutEnv(t, f)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 20}, Step{100, 20}))
	res := result(t, env)
	if res.Status != Failed || !strings.HasPrefix(res.Reason, "inconclusive") {
		t.Fatalf("status %s (%s), want failed: inconclusive", res.Status, res.Reason)
	}
	if !slices.Equal(f.splits, []int{10}) || !slices.Equal(f.resets, []string{ResetInconclusive}) {
		t.Errorf("splits %v resets %v: the step must never advance", f.splits, f.resets)
	}
	var phases []string
	for _, r := range f.records {
		if r.Check != nil {
			phases = append(phases, r.Check.Phase+":"+r.Check.Decision)
		}
	}
	// One hold check at 10s, the judgement at 20s, two extensions, then stuck.
	want := []string{"hold:hold_more", "judge:hold_more", "judge:hold_more", "judge:stuck"}
	if !slices.Equal(phases, want) {
		t.Errorf("checks %v, want %v", phases, want)
	}
}

func TestRollout_HumanChangePausesInsteadOfOverwriting(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	// A person edits the flag during the first hold; the next split finds it.
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		f.version = 40
		f.mu.Unlock()
	}, 5*time.Second)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(Abort, "abort-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("abort rejected: %v", err) }, OnComplete: func(any, error) {}}, Command{})
	}, time.Hour)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 30}, Step{100, 30}))
	res := result(t, env)
	if res.Status != Aborted || !strings.Contains(res.Reason, "left as ann/key_1 set it") {
		t.Fatalf("status %s (%s)", res.Status, res.Reason)
	}
	if !slices.Equal(f.splits, []int{10}) || len(f.resets) != 0 {
		t.Errorf("splits %v resets %v: the human's version must not be overwritten", f.splits, f.resets)
	}
	if got := f.statuses(); !slices.Equal(got, []string{Running, Paused, Aborted}) {
		t.Errorf("statuses %v", got)
	}
	paused := f.records[slices.IndexFunc(f.records, func(r RecordInput) bool { return r.Status == Paused })]
	if !strings.Contains(paused.Reason, "changed by ann/key_1") {
		t.Errorf("pause reason %q does not name who changed the flag", paused.Reason)
	}
}

func TestRollout_SplitConflictPausesAndResumeAdopts(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy, conflict: true}
	env := newRolloutEnv(t, f)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(Resume, "resume-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("resume rejected: %v", err) }, OnComplete: func(any, error) {}}, Command{})
	}, time.Minute)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 10}, Step{100, 10}))
	res := result(t, env)
	if res.Status != Succeeded {
		t.Fatalf("status %s (%s)", res.Status, res.Reason)
	}
	if !slices.Equal(f.adopted, []bool{true, false}) {
		t.Errorf("adopted %v: the resumed step must be re-applied on top of the change", f.adopted)
	}
	if got := f.statuses(); !slices.Equal(got, []string{Paused, Running, Succeeded}) {
		t.Errorf("statuses %v", got)
	}
}

func TestRollout_PauseResumeAbortUpdates(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	var rejected []string
	send := func(name string, at time.Duration) {
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(name, name+at.String(), &testsuite.TestUpdateCallback{
				OnReject:   func(err error) { rejected = append(rejected, name) },
				OnComplete: func(any, error) {}}, Command{Reason: "checking dashboards"})
		}, at)
	}
	send(Resume, 5*time.Second) // running: rejected
	send(Pause, 6*time.Second)
	send(Pause, 7*time.Second) // already paused: rejected
	send(Resume, 10*time.Minute)
	send(Abort, 10*time.Minute+5*time.Second)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 300}, Step{100, 300}))
	res := result(t, env)
	if res.Status != Aborted || res.Reason != "aborted on request: checking dashboards" {
		t.Fatalf("status %s (%s)", res.Status, res.Reason)
	}
	if !slices.Equal(rejected, []string{Resume, Pause}) {
		t.Errorf("rejected %v, want the invalid resume and the second pause", rejected)
	}
	if !slices.Equal(f.splits, []int{10, 10}) || !slices.Equal(f.resets, []string{ResetAbort}) {
		t.Errorf("splits %v resets %v", f.splits, f.resets)
	}
	if got := f.statuses(); !slices.Equal(got, []string{Running, Paused, Running, Aborted}) {
		t.Errorf("statuses %v", got)
	}
}

func TestRollout_SignalsWorkLikeUpdates(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(Resume, nil) }, time.Second) // invalid: ignored
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(Pause, "not an object") }, 2*time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(Abort, Command{Reason: "from the UI"}) }, time.Minute)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 300}, Step{100, 300}))
	res := result(t, env)
	if res.Status != Aborted || res.Reason != "aborted on request: from the UI" {
		t.Fatalf("status %s (%s)", res.Status, res.Reason)
	}
}

func TestRollout_StateQuery(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	var st State
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&st)
		env.SignalWorkflow(Abort, nil)
	}, 15*time.Second)
	env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 300}, Step{100, 300}))
	_ = result(t, env)
	if st.Status != Running || st.Percent != 10 || st.Control != "off" || st.Checks != 1 {
		t.Errorf("state = %+v", st)
	}
}

func TestRollout_InvalidInputFailsAndIsRecorded(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	in := rolloutInput(Step{50, 0}, Step{40, 10})
	in.Guard.Source = "logs"
	var begun BeginInput
	env.OnActivity(BeginActivity, mock.Anything, mock.Anything).Return(func(ctx context.Context, b BeginInput) (BeginResult, error) {
		begun = b
		return f.begin(ctx, b)
	})
	env.ExecuteWorkflow(Workflow, in)
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeInvalidInput {
		t.Fatalf("error %v, want %s", err, ErrTypeInvalidInput)
	}
	for _, want := range []string{"#/steps/0/hold_seconds", "#/steps/1/percent", "#/guard/source"} {
		if !strings.Contains(begun.Invalid, want) {
			t.Errorf("recorded reason %q does not name %s", begun.Invalid, want)
		}
	}
	if len(f.splits) != 0 {
		t.Errorf("an invalid rollout wrote splits %v", f.splits)
	}
}

func TestRollout_ContinuesAsNewWithItsState(t *testing.T) {
	f := &fakeFlag{version: 1, observe: healthy}
	env := newRolloutEnv(t, f)
	in := rolloutInput(Step{10, 300}, Step{100, 300})
	in.ChecksPerRun = 2
	env.ExecuteWorkflow(Workflow, in)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new", err)
	}
	if can.WorkflowType.Name != Name {
		t.Errorf("continues as %s", can.WorkflowType.Name)
	}
	var next Input
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	c := next.Carry
	if c == nil || c.Step != 0 || c.Checks != 2 || c.Elapsed != 20 || c.StepStarted.IsZero() || c.FlagVersion != 2 {
		t.Fatalf("carry = %+v", c)
	}
	// The next run picks up the hold where it stopped, without a new split.
	next.ChecksPerRun = 1000
	env2 := newRolloutEnv(t, f)
	env2.ExecuteWorkflow(Workflow, next)
	if res := result(t, env2); res.Status != Succeeded {
		t.Fatalf("status %s (%s)", res.Status, res.Reason)
	}
	if !slices.Equal(f.splits, []int{10, 100}) {
		t.Errorf("splits %v", f.splits)
	}
}

func TestRollout_StartedUpdateAnswersOnceTheRowIsWritten(t *testing.T) {
	for _, tt := range []struct {
		name   string
		begin  BeginResult
		status string
	}{
		{"running", BeginResult{Control: "off", FlagVersion: 1}, Running},
		{"cannot start", BeginResult{Failed: true, Reason: "flag checkout already has an active rollout rol_0"}, Failed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeFlag{version: 1, observe: healthy}
			env := newRolloutEnv(t, f)
			env.OnActivity(BeginActivity, mock.Anything, mock.Anything).Return(tt.begin, nil)
			var got State
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(StartedUpdate, StartedUpdate, &testsuite.TestUpdateCallback{
					OnReject: func(err error) { t.Errorf("rejected: %v", err) },
					OnComplete: func(v any, err error) {
						if err != nil {
							t.Error(err)
							return
						}
						got = v.(State)
						if got.Status == Running {
							env.SignalWorkflow(Abort, nil)
						}
					}})
			}, 0)
			env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 300}, Step{100, 300}))
			if got.Status != tt.status || got.Reason != tt.begin.Reason {
				t.Errorf("started update answered %+v, want %s", got, tt.status)
			}
		})
	}
}

// TestRollout_FailedObservationNotesOnlyACategory: an observation that keeps
// failing is noted in the check's evidence, which tenants read, without the
// error's text (transport errors, addresses, worker identity).
func TestRollout_FailedObservationNotesOnlyACategory(t *testing.T) {
	for name, tt := range map[string]struct {
		err  error
		want string
	}{
		"categorised": {temporal.NewApplicationError("prometheus: unreachable", ErrTypeObserveFailed), "observation failed: prometheus: unreachable"},
		"other":       {errors.New("dial tcp 10.0.0.5:22: malformed HTTP response \"SSH-2.0-OpenSSH\""), "observation failed"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeFlag{version: 1, observe: healthy}
			env := newRolloutEnv(t, f)
			env.OnActivity(ObserveActivity, mock.Anything, mock.Anything).Return(ObserveResult{}, tt.err)
			env.ExecuteWorkflow(Workflow, rolloutInput(Step{10, 10}, Step{100, 10}))
			result(t, env)
			var notes []string
			for _, r := range f.records {
				if r.Check != nil {
					notes = append(notes, r.Check.Evidence.Notes...)
				}
			}
			if len(notes) == 0 {
				t.Fatal("no check recorded")
			}
			for _, n := range notes {
				if n != tt.want {
					t.Fatalf("note %q, want %q", n, tt.want)
				}
			}
		})
	}
}
