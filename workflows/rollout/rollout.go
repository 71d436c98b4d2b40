package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/flags/guard"
	"github.com/acme/platform/internal/validation"
)

// Names of the rollout workflow, its activities and its messages, as
// registered on the worker and shown in the Temporal UI. Pause, resume and
// abort are each both an update (the API uses them: invalid transitions are
// rejected before they reach history) and a signal of the same name (the
// Temporal UI sends them as plain JSON; invalid ones are logged and ignored).
const (
	Name            = "platform.rollout"
	BeginActivity   = "platform.rollout.begin"
	SplitActivity   = "platform.rollout.split"
	ObserveActivity = "platform.rollout.observe"
	ResetActivity   = "platform.rollout.reset"
	RecordActivity  = "platform.rollout.record"

	Pause      = "pause"
	Resume     = "resume"
	Abort      = "abort"
	StateQuery = "state"
	// StartedUpdate answers once the rollout's row is written, with
	// its state (running, or failed with the reason it cannot start). The
	// API starts rollouts with Update-With-Start on it, so its answer comes
	// after the row exists and the handler itself writes nothing.
	StartedUpdate = "platform.rollout.started"
)

// Rollout statuses.
const (
	Running    = "running"
	Paused     = "paused"
	Succeeded  = "succeeded"
	RolledBack = "rolled_back"
	Aborted    = "aborted"
	Failed     = "failed"
)

// Error types of rollout failures and rejected updates.
const (
	ErrTypeInvalidInput      = "InvalidInput"
	ErrTypeInvalidTransition = "InvalidTransition"
)

// Reasons for resetting a flag to control.
const (
	ResetRegression   = "regression"
	ResetInconclusive = "inconclusive"
	ResetAbort        = "abort"
)

// Phases of a guard check: during the hold, or the judgement at its end
// (and the extensions after it).
const (
	PhaseHold  = "hold"
	PhaseJudge = "judge"
)

// WorkflowID returns the workflow id of rollout id: the id itself.
func WorkflowID(id string) string { return id }

// Actor is who a rollout's flag writes are audited as.
func Actor(id string) string { return "rollout:" + id }

// keptChecks is how many of the current step's checks the workflow keeps in
// memory; every check is in the rollout_checks table.
const keptChecks = 20

// State is the workflow's state: what the state query returns and
// what continue-as-new carries.
type State struct {
	Status      string        `json:"status"`
	Reason      string        `json:"reason,omitempty"`
	Control     string        `json:"control"`
	Step        int           `json:"step"`
	Percent     int           `json:"percent"`
	Attempt     int           `json:"attempt"`
	FlagVersion int64         `json:"flag_version"`
	Baseline    *guard.Cohort `json:"baseline,omitempty"`
	Checks      int           `json:"checks"`
	// Adopt re-applies the step on top of whatever version the flag has:
	// set by a resume, which is a person's decision to continue.
	Adopt bool `json:"adopt,omitempty"`
	// The current step's progress; StepStarted is zero until its split is
	// written.
	StepStarted time.Time       `json:"step_started,omitzero"`
	Elapsed     int             `json:"elapsed_seconds"`
	StepState   guard.StepState `json:"step_state"`
}

// Command is the argument of pause, resume and abort.
type Command struct {
	Reason string `json:"reason,omitempty"`
}

// Result is what the workflow returns.
type Result struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Workflow ramps a flag's variant step by step: each step writes a
// fractional split (compare-and-set on the flag's version), holds while
// checking the guard every interval, and is judged when the hold ends. A
// regression resets the flag to control in one write and ends rolled_back; a
// step with no verdict after its extensions resets it and ends failed; a
// human change to the flag pauses the rollout instead of being overwritten.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	w, err := newRollout(ctx, in)
	if err != nil {
		return Result{}, err
	}
	res, err := w.run(ctx)
	// Let the started update answer even when the rollout ends at once.
	if werr := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); werr != nil && err == nil {
		err = werr
	}
	return res, err
}

type rollout struct {
	in        Input
	guard     GuardSpec
	st        State
	ending    bool // a terminal outcome is being written; commands are refused
	begun     bool // the row is written (or this run continues an earlier one)
	runChecks int  // checks made by this run, for continue-as-new
	log       log.Logger
}

func newRollout(ctx workflow.Context, in Input) (*rollout, error) {
	if in.ID == "" {
		in.ID = workflow.GetInfo(ctx).WorkflowExecution.ID
	}
	w := &rollout{in: in, guard: in.Guard.Effective(), st: State{Status: Running, Control: in.Control},
		log: workflow.GetLogger(ctx)}
	if in.Carry != nil {
		w.st, w.begun = *in.Carry, true
	}
	if err := w.register(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// register installs the query, the updates and the signals.
func (w *rollout) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (State, error) { return w.st, nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandler(ctx, StartedUpdate, func(ctx workflow.Context) (State, error) {
		err := workflow.Await(ctx, func() bool { return w.begun })
		return w.st, err
	})
	if err != nil {
		return err
	}
	for _, name := range []string{Pause, Resume, Abort} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(_ workflow.Context, cmd Command) (State, error) {
				w.apply(name, cmd)
				return w.st, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, _ Command) error { return w.allowed(name) }})
		if err != nil {
			return err
		}
		ch := workflow.GetSignalChannel(ctx, name)
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				// Received raw: a payload typed by hand in the UI that does not
				// decode must not fail the workflow task; it counts as {}.
				var raw converter.RawValue
				ch.Receive(ctx, &raw)
				var cmd Command
				if p := raw.Payload(); p != nil {
					if err := converter.GetDefaultDataConverter().FromPayload(p, &cmd); err != nil {
						w.log.Warn("rollout signal payload ignored", "signal", name, "error", err.Error())
					}
				}
				if err := w.allowed(name); err != nil {
					w.log.Warn("rollout signal ignored", "signal", name, "reason", err.Error())
					continue
				}
				w.apply(name, cmd)
			}
		})
	}
	return nil
}

// allowed says whether a command is a valid transition from the current status.
func (w *rollout) allowed(name string) error {
	ok := false
	switch {
	case w.ending:
	case name == Pause:
		ok = w.st.Status == Running
	case name == Resume:
		ok = w.st.Status == Paused
	case name == Abort:
		ok = w.st.Status == Running || w.st.Status == Paused
	}
	if ok {
		return nil
	}
	status := w.st.Status
	if w.ending {
		status = "finishing"
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("cannot %s a rollout that is %s", name, status), ErrTypeInvalidTransition, nil)
}

// apply changes the status; the main loop notices and acts (records the
// row, waits, resets the flag).
func (w *rollout) apply(name string, cmd Command) {
	switch name {
	case Pause:
		w.st.Status, w.st.Reason = Paused, withReason("paused on request", cmd.Reason)
	case Resume:
		w.st.Status, w.st.Reason, w.st.Adopt = Running, "", true
	case Abort:
		w.st.Status, w.st.Reason = Aborted, withReason("aborted on request", cmd.Reason)
	}
}

func withReason(what, why string) string {
	if why == "" {
		return what
	}
	return what + ": " + why
}

// stepOutcome is how a step ended.
type stepOutcome int

const (
	stepAdvanced stepOutcome = iota
	stepRestart
	stepEnded
	stepContinueAsNew
)

func (w *rollout) run(ctx workflow.Context) (Result, error) {
	if w.in.Carry == nil {
		if ended, err := w.begin(ctx); ended || err != nil {
			return w.result(), err
		}
	}
	for w.st.Step < len(w.in.Steps) {
		out, err := w.runStep(ctx)
		if err != nil {
			return w.result(), err
		}
		switch out {
		case stepAdvanced:
			w.st.Step++
			w.resetStep()
		case stepRestart:
			w.resetStep()
		case stepEnded:
			return w.result(), nil
		case stepContinueAsNew:
			carry := w.st
			carry.StepState.Checks = lastChecks(carry.StepState.Checks)
			next := w.in
			next.Carry = &carry
			return w.result(), workflow.NewContinueAsNewError(ctx, Name, next)
		}
	}
	last := len(w.in.Steps) - 1
	err := w.finish(ctx, Succeeded, "every step passed; the variant serves 100%", &FinalEvidence{
		Decision: string(guard.Advance), Step: last, Percent: 100, Checks: w.st.StepState.Checks})
	return w.result(), err
}

func (w *rollout) result() Result {
	return Result{ID: w.in.ID, Status: w.st.Status, Reason: w.st.Reason}
}

func (w *rollout) resetStep() {
	w.st.StepStarted, w.st.Elapsed, w.st.StepState = time.Time{}, 0, guard.StepState{}
}

// begin validates the input, checks the flag and writes the rollout's row.
// It reports whether the rollout ended already.
func (w *rollout) begin(ctx workflow.Context) (bool, error) {
	info := workflow.GetInfo(ctx)
	in := BeginInput{
		ID: w.in.ID, Principal: w.in.Principal, Flag: w.in.Flag, Variant: w.in.Variant, Control: w.in.Control,
		Spec: Spec{Steps: w.in.Steps, Guard: w.guard}, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
	}
	errs := w.in.Validate()
	if len(errs) > 0 {
		in.Invalid = describe(errs)
	}
	var res BeginResult
	defer func() { w.begun = true }()
	if err := workflow.ExecuteActivity(writeOptions(ctx), BeginActivity, in).Get(ctx, &res); err != nil {
		return true, err
	}
	if len(errs) > 0 {
		w.st.Status, w.st.Reason = Failed, res.Reason
		return true, temporal.NewNonRetryableApplicationError(in.Invalid, ErrTypeInvalidInput, nil, errs)
	}
	if res.Failed {
		w.st.Status, w.st.Reason = Failed, res.Reason
		return true, nil
	}
	w.st.Control, w.st.FlagVersion = res.Control, res.FlagVersion
	return false, nil
}

func describe(errs []validation.FieldError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Pointer + " " + e.Detail
	}
	return "invalid rollout: " + strings.Join(parts, "; ")
}

// runStep applies the current step's split if it is not applied yet, then
// holds and checks until the step is decided or interrupted.
func (w *rollout) runStep(ctx workflow.Context) (stepOutcome, error) {
	step := w.in.Steps[w.st.Step]
	if w.st.StepStarted.IsZero() && w.st.Status == Running {
		if out, done, err := w.applySplit(ctx, step); done || err != nil {
			return out, err
		}
	}
	for {
		if w.st.Status != Running {
			return w.interrupted(ctx)
		}
		if w.shouldContinueAsNew(ctx) {
			return stepContinueAsNew, nil
		}
		wait := w.nextWait(step)
		changed, err := workflow.AwaitWithTimeout(ctx, time.Duration(wait)*time.Second, func() bool { return w.st.Status != Running })
		if err != nil {
			return stepEnded, err
		}
		if changed {
			return w.interrupted(ctx)
		}
		w.st.Elapsed += wait
		if out, done, err := w.check(ctx, step); done || err != nil {
			return out, err
		}
	}
}

// nextWait is the seconds until the next check: every interval during the
// hold, with one check exactly when the hold ends, then every interval
// while the judgement extends the hold.
func (w *rollout) nextWait(step Step) int {
	if left := step.HoldSeconds - w.st.Elapsed; left > 0 {
		return min(w.guard.IntervalSeconds, left)
	}
	return w.guard.IntervalSeconds
}

func (w *rollout) shouldContinueAsNew(ctx workflow.Context) bool {
	due := workflow.GetInfo(ctx).GetContinueAsNewSuggested() || w.runChecks >= w.in.checksPerRun()
	return due && workflow.AllHandlersFinished(ctx)
}

// applySplit writes the step's split; a human change to the flag pauses
// the rollout instead.
func (w *rollout) applySplit(ctx workflow.Context, step Step) (stepOutcome, bool, error) {
	var res SplitResult
	err := workflow.ExecuteActivity(writeOptions(ctx), SplitActivity, SplitInput{
		ID: w.in.ID, Flag: w.in.Flag, Control: w.st.Control, Variant: w.in.Variant, Step: w.st.Step,
		Percent: step.Percent, ExpectedVersion: w.st.FlagVersion, Adopt: w.st.Adopt,
	}).Get(ctx, &res)
	if err != nil {
		return stepEnded, true, err
	}
	if res.Conflict {
		out, err := w.pauseForChange(ctx, res.CurrentVersion, res.ChangedBy)
		return out, true, err
	}
	w.st.FlagVersion, w.st.Adopt, w.st.Percent, w.st.StepStarted = res.Version, false, step.Percent, res.At
	w.st.Attempt++
	return 0, false, w.record(ctx, w.stepRecord(step, ""), nil)
}

// check observes both cohorts, judges them and decides.
func (w *rollout) check(ctx workflow.Context, step Step) (stepOutcome, bool, error) {
	obs := w.observe(ctx, step)
	if obs.FlagVersion != w.st.FlagVersion {
		out, err := w.pauseForChange(ctx, obs.FlagVersion, obs.ChangedBy)
		return out, true, err
	}
	c := guard.Judge(w.guard.Guard, obs.Observation)
	phase, decide := PhaseHold, guard.Observe
	if w.st.Elapsed >= step.HoldSeconds {
		phase, decide = PhaseJudge, guard.Next
	}
	state, d := decide(w.guard.Guard, w.st.StepState, c)
	state.Checks = lastChecks(state.Checks)
	w.st.StepState = state
	w.st.Checks++
	w.runChecks++
	ended := ""
	if d != guard.HoldMore {
		ended = string(d)
	}
	rec := &CheckRecord{Seq: w.st.Checks, Step: w.st.Step, Attempt: w.st.Attempt, At: workflow.Now(ctx),
		Phase: phase, Decision: string(d), Result: c, Evidence: obs.Evidence}
	if err := w.record(ctx, w.stepRecord(step, ended), rec); err != nil {
		return stepEnded, true, err
	}
	switch d {
	case guard.Advance:
		if w.st.Percent < 100 {
			ctl := obs.Observation.Control
			w.st.Baseline = &ctl
		}
		return stepAdvanced, true, nil
	case guard.RollBack:
		return stepEnded, true, w.rollBack(ctx, c, obs.Evidence)
	case guard.Stuck:
		return stepEnded, true, w.giveUp(ctx, c, obs.Evidence)
	}
	return 0, false, nil
}

// observe gathers the cohorts' numbers. An observation that keeps failing
// (Prometheus down, say) counts as no data: inconclusive, never a pass.
func (w *rollout) observe(ctx workflow.Context, step Step) ObserveResult {
	var obs ObserveResult
	err := workflow.ExecuteActivity(observeOptions(ctx), ObserveActivity, ObserveInput{
		ID: w.in.ID, Flag: w.in.Flag, Variant: w.in.Variant, Control: w.st.Control, Percent: step.Percent,
		Since: w.st.StepStarted, Guard: w.guard, Baseline: w.st.Baseline, FlagVersion: w.st.FlagVersion,
	}).Get(ctx, &obs)
	if err != nil {
		return ObserveResult{FlagVersion: w.st.FlagVersion,
			Evidence: Evidence{Source: w.guard.Source, Notes: []string{observeFailure(err)}}}
	}
	return obs
}

// observeFailure is the note of a failed observation. Tenants read it, so it
// carries the activity's category (ErrTypeObserveFailed) and never an
// error's text, which may hold addresses, transport errors or the worker's
// identity; those stay in the workflow's history and the worker's log.
func observeFailure(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == ErrTypeObserveFailed {
		return "observation failed: " + app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "observation failed: timeout"
	}
	return "observation failed"
}

func lastChecks(cs []guard.Check) []guard.Check {
	if len(cs) <= keptChecks {
		return cs
	}
	return append([]guard.Check(nil), cs[len(cs)-keptChecks:]...)
}

// pauseForChange pauses because someone else changed the flag.
func (w *rollout) pauseForChange(ctx workflow.Context, version int64, by string) (stepOutcome, error) {
	if by == "" {
		by = "someone"
	}
	w.st.Status = Paused
	w.st.Reason = fmt.Sprintf("flag %s was changed by %s (version %d; the rollout last wrote %d): paused instead of overwriting; resume to re-apply step %d on top of the change, or abort",
		w.in.Flag, by, version, w.st.FlagVersion, w.st.Step)
	w.log.Warn("rollout paused: the flag changed under it", "flag", w.in.Flag, "version", version, "changed_by", by)
	return w.interrupted(ctx)
}

// interrupted handles a pause or an abort: a paused rollout records its
// status and waits; a resume restarts the step on top of the flag's current
// version.
func (w *rollout) interrupted(ctx workflow.Context) (stepOutcome, error) {
	if w.st.Status == Paused {
		if err := w.record(ctx, nil, nil); err != nil {
			return stepEnded, err
		}
		if err := workflow.Await(ctx, func() bool { return w.st.Status != Paused }); err != nil {
			return stepEnded, err
		}
		if w.st.Status == Running {
			return stepRestart, w.record(ctx, nil, nil)
		}
	}
	return stepEnded, w.abort(ctx)
}

// abort serves control to everyone again, unless someone else changed the
// flag meanwhile: their change is kept.
func (w *rollout) abort(ctx workflow.Context) error {
	w.ending = true
	reason := w.st.Reason
	res, err := w.reset(ctx, ResetAbort, reason)
	if err != nil {
		return err
	}
	if res.Conflict {
		reason += fmt.Sprintf("; flag %s was left as %s set it (version %d)", w.in.Flag, res.ChangedBy, res.CurrentVersion)
	}
	return w.finish(ctx, Aborted, reason, &FinalEvidence{Decision: Abort, Step: w.st.Step, Percent: w.st.Percent})
}

// rollBack auto-disables the variant: control for everyone in one
// compare-and-set write.
func (w *rollout) rollBack(ctx workflow.Context, c guard.Check, ev Evidence) error {
	w.ending = true
	why := fmt.Sprintf("step %d (%d%%) regressed: %s", w.st.Step, w.st.Percent, reasons(c))
	res, err := w.reset(ctx, ResetRegression, why)
	if err != nil {
		return err
	}
	evidence := &FinalEvidence{Decision: string(guard.RollBack), Step: w.st.Step, Percent: w.st.Percent,
		Checks: w.st.StepState.Checks, Evidence: &ev}
	if res.Conflict {
		return w.finish(ctx, Failed, fmt.Sprintf("%s; flag %s was not reset because %s changed it (version %d)",
			why, w.in.Flag, res.ChangedBy, res.CurrentVersion), evidence)
	}
	return w.finish(ctx, RolledBack, why+"; flag reset to "+w.st.Control, evidence)
}

// giveUp ends a step that never reached a verdict: it never passed, so the
// variant must not advance, and it did not regress either. The flag serves
// control and the rollout ends failed, distinct from rolled_back.
func (w *rollout) giveUp(ctx workflow.Context, c guard.Check, ev Evidence) error {
	w.ending = true
	why := fmt.Sprintf("inconclusive: step %d (%d%%) had no verdict after %d extensions (%s)",
		w.st.Step, w.st.Percent, w.guard.MaxInconclusiveExtensions, reasons(c))
	res, err := w.reset(ctx, ResetInconclusive, why)
	if err != nil {
		return err
	}
	if res.Conflict {
		why += fmt.Sprintf("; flag %s was left as %s set it (version %d)", w.in.Flag, res.ChangedBy, res.CurrentVersion)
	} else {
		why += "; flag reset to " + w.st.Control
	}
	return w.finish(ctx, Failed, why, &FinalEvidence{Decision: string(guard.Stuck), Step: w.st.Step,
		Percent: w.st.Percent, Checks: w.st.StepState.Checks, Evidence: &ev})
}

func reasons(c guard.Check) string {
	if len(c.Reasons) == 0 {
		return string(c.Verdict)
	}
	parts := make([]string, len(c.Reasons))
	for i, r := range c.Reasons {
		parts[i] = r.Message
	}
	return strings.Join(parts, "; ")
}

func (w *rollout) reset(ctx workflow.Context, cause, why string) (ResetResult, error) {
	var res ResetResult
	err := workflow.ExecuteActivity(writeOptions(ctx), ResetActivity, ResetInput{
		ID: w.in.ID, Flag: w.in.Flag, Control: w.st.Control, ExpectedVersion: w.st.FlagVersion, Cause: cause, Reason: why,
	}).Get(ctx, &res)
	if err == nil && !res.Conflict {
		w.st.FlagVersion, w.st.Percent = res.Version, 0
	}
	return res, err
}

func (w *rollout) finish(ctx workflow.Context, status, reason string, ev *FinalEvidence) error {
	w.ending = true
	w.st.Status, w.st.Reason = status, reason
	return w.record(ctx, nil, nil, ev)
}

func (w *rollout) stepRecord(step Step, decision string) *StepRecord {
	return &StepRecord{Step: w.st.Step, Attempt: w.st.Attempt, Percent: step.Percent, HoldSeconds: step.HoldSeconds,
		FlagVersion: w.st.FlagVersion, StartedAt: w.st.StepStarted, Decision: decision,
		Failures: w.st.StepState.Failures, Inconclusive: w.st.StepState.Inconclusive}
}

// record writes the rollout's row from the workflow's state, with a step
// row and a check when given; a terminal status carries the evidence.
func (w *rollout) record(ctx workflow.Context, step *StepRecord, check *CheckRecord, ev ...*FinalEvidence) error {
	in := RecordInput{ID: w.in.ID, Status: w.st.Status, Reason: w.st.Reason, Control: w.st.Control,
		Step: w.st.Step, Percent: w.st.Percent, FlagVersion: w.st.FlagVersion, StepRecord: step, Check: check}
	if len(ev) > 0 {
		in.Evidence = ev[0]
		in.Finished = true
	}
	err := workflow.ExecuteActivity(writeOptions(ctx), RecordActivity, in).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("record rollout %s: %w", w.in.ID, err)
	}
	return nil
}

// writeOptions: writes must eventually happen, so they retry until they do.
func writeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
	})
}

// observeOptions: an observation that keeps failing becomes "no data".
func observeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 60 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
	})
}

// IsInvalidTransition reports whether err is a rejected pause, resume or abort.
func IsInvalidTransition(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrTypeInvalidTransition
}
