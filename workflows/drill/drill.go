package drill

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/verdict"
	"github.com/acme/platform/internal/validation"
)

// Error types of failed drills and rejected aborts.
const (
	ErrTypeInvalidInput      = "InvalidInput"
	ErrTypeInvalidTransition = "InvalidTransition"
)

// SystemPrincipal is the principal of a drill started without one: by a
// schedule or from the Temporal UI.
const SystemPrincipal = "system"

// Names of the steps in a drill's timeline.
const (
	DeclareStep = drills.DeclareStep
	BackupStep  = drills.BackupStep
	PruneStep   = drills.PruneStep
	VerifyStep  = drills.VerifyStep
	RestoreStep = drills.RestoreStep
	CheckStep   = drills.CheckStep
	CleanupStep = drills.CleanupStep
	// AbortStep marks when an abort was accepted or the workflow cancelled.
	AbortStep = drills.AbortStep
)

// maxDetail bounds a step's detail and an abort's reason in the row.
const maxDetail = 1000

// AbortInput is the argument of the abort update and signal.
type AbortInput struct {
	Reason string `json:"reason,omitempty"`
}

// Workflow runs one drill: it records the drill's row, runs the scenario's
// steps (each recorded as it starts and ends), always cleans up what a
// restore made (after success, failure, abort and cancellation), judges the
// drill against its objectives and records the outcome. A failed or aborted
// drill is a completed workflow whose Drill says so; invalid input fails
// the workflow with a non-retryable InvalidInput error (after recording the
// row as failed), and a cancelled workflow ends cancelled after cleaning up.
func Workflow(ctx workflow.Context, in Input) (Drill, error) {
	d, err := setup(ctx, in)
	if err != nil {
		return Drill{}, err
	}
	return d.run(ctx)
}

type drill struct {
	in     Input
	params RestoreParams
	st     Drill
	seq    int64 // the row's writes, in order
	// aborted is why the drill was aborted, once an abort is accepted.
	aborted string
	// ending is set once the steps are over (cleanup and the last record
	// run): an abort is then refused.
	ending      bool
	cancelSteps workflow.CancelFunc
	scratch     Scratch
	log         log.Logger
}

// setup fills the drill's state from its input and the workflow's info
// and installs the state query and the abort update and signal.
func setup(ctx workflow.Context, in Input) (*drill, error) {
	info := workflow.GetInfo(ctx)
	if in.ID == "" {
		in.ID = info.WorkflowExecution.ID
	}
	if in.Principal == "" {
		in.Principal = SystemPrincipal
	}
	started := workflow.Now(ctx)
	d := &drill{in: in, log: workflow.GetLogger(ctx), st: Drill{
		ID: in.ID, Principal: in.Principal, Scenario: clip(in.Scenario, 100), Status: Running, Objectives: in.Objectives,
		Measurements: map[string]float64{}, Timeline: []Step{}, WorkflowID: info.WorkflowExecution.ID,
		RunID: info.WorkflowExecution.RunID, CreatedAt: info.WorkflowStartTime, StartedAt: &started,
	}}
	return d, d.register(ctx)
}

// register installs the state query, the abort update (the API's: an abort
// that cannot apply is rejected before it reaches history) and the abort
// signal (the Temporal UI's: one that cannot apply is logged and ignored).
func (d *drill) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (Drill, error) { return d.st, nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, Abort,
		func(ctx workflow.Context, in AbortInput) (Drill, error) {
			d.abort(ctx, in.Reason)
			return d.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, _ AbortInput) error { return d.abortable() }})
	if err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, Abort)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			// Received raw: a payload typed by hand in the UI that does not
			// decode must not fail the workflow task; it counts as {}.
			var raw converter.RawValue
			ch.Receive(ctx, &raw)
			var in AbortInput
			if p := raw.Payload(); p != nil {
				if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
					d.log.Warn("drill abort signal payload ignored", "error", err.Error())
				}
			}
			if err := d.abortable(); err != nil {
				d.log.Warn("drill abort signal ignored", "reason", err.Error())
				continue
			}
			d.abort(ctx, in.Reason)
		}
	})
	return nil
}

// abortable says whether an abort may apply now. A second abort of a drill
// being aborted is accepted and changes nothing.
func (d *drill) abortable() error {
	if !d.ending && !drills.Final(d.st.Status) {
		return nil
	}
	status := d.st.Status
	if !drills.Final(status) {
		status = "finishing"
	}
	return temporal.NewNonRetryableApplicationError("cannot abort a drill that is "+status, ErrTypeInvalidTransition, nil)
}

// abort cancels the steps' context: the running step's activity is asked
// to stop (and waited for), no further step starts, and the drill cleans
// up and ends aborted.
func (d *drill) abort(ctx workflow.Context, reason string) {
	if d.aborted != "" {
		return
	}
	d.aborted = "aborted on request"
	if reason != "" {
		d.aborted += ": " + clip(reason, maxDetail)
	}
	d.instant(ctx, AbortStep, d.aborted)
	if d.cancelSteps != nil {
		d.cancelSteps()
	}
}

func (d *drill) run(ctx workflow.Context) (Drill, error) {
	if errs := Validate(d.in); len(errs) > 0 {
		return d.refuse(ctx, errs)
	}
	d.params, _ = DecodeParams(d.in.Scenario, d.in.Params)
	steps, cancel := workflow.WithCancel(ctx)
	d.cancelSteps = cancel
	if err := d.record(ctx); err != nil {
		return d.st, err
	}
	var err error
	switch d.in.Scenario {
	case ScenarioBackup:
		err = d.backup(steps)
	case ScenarioRestoreVerify:
		err = d.restoreVerify(steps)
	case ScenarioCacheLoss:
		err = d.cacheLoss(steps)
	case ScenarioFailover:
		err = d.failover(steps)
	case ScenarioCapacity:
		err = d.capacity(steps)
	case ScenarioDBDegraded, ScenarioCacheDegraded:
		err = d.degraded(steps)
	}
	return d.finish(ctx, err)
}

// refuse records an invalid drill as failed and fails the workflow.
func (d *drill) refuse(ctx workflow.Context, errs []validation.FieldError) (Drill, error) {
	d.ending = true
	now := workflow.Now(ctx)
	d.st.Status, d.st.Verdict, d.st.FinishedAt = Failed, Missed, &now
	for _, e := range errs {
		d.st.Reasons = append(d.st.Reasons, "invalid input: "+e.String())
	}
	if err := d.record(ctx); err != nil {
		return d.st, err
	}
	return d.st, temporal.NewNonRetryableApplicationError("invalid drill input: "+strings.Join(d.st.Reasons, "; "),
		ErrTypeInvalidInput, nil, errs)
}

// finish runs the cleanup that every restore needs, whatever happened, in
// a context that a cancellation cannot reach; then judges the drill and
// records its outcome.
func (d *drill) finish(ctx workflow.Context, stepsErr error) (Drill, error) {
	d.ending = true
	cancelled := ctx.Err() != nil
	if cancelled && d.aborted == "" {
		d.instant(ctx, AbortStep, "the workflow was cancelled")
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if d.in.Scenario == ScenarioRestoreVerify {
		_ = d.step(dctx, CleanupStep, d.cleanup)
	}
	if degradedScenario(d.in.Scenario) {
		_ = d.step(dctx, RemoveToxicsStep, d.removeToxics)
	}
	now := workflow.Now(ctx)
	d.st.Status, d.st.FinishedAt = d.outcome(cancelled, stepsErr), &now
	d.st.Verdict, d.st.Reasons = verdict.Judge(d.st.Status, d.st.Objectives, d.st.Measurements, d.st.Timeline)
	if err := d.record(dctx); err != nil {
		return d.st, err
	}
	if cancelled {
		return d.st, ctx.Err()
	}
	return d.st, nil
}

func (d *drill) outcome(cancelled bool, stepsErr error) string {
	if cancelled || d.aborted != "" {
		return Aborted
	}
	if stepsErr != nil {
		return Failed
	}
	for _, s := range d.st.Timeline {
		if s.Status == StepFailed {
			return Failed
		}
	}
	return Succeeded
}

// step runs one step of the timeline, recorded as it starts and as it
// ends. A step whose context was cancelled meanwhile ends aborted; any
// other error ends it failed, with the error as its detail. Every step
// that succeeds measures its duration as <name>_seconds.
func (d *drill) step(ctx workflow.Context, name string, fn func(workflow.Context) (string, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i := len(d.st.Timeline)
	d.st.Timeline = append(d.st.Timeline, Step{Name: name, Status: StepRunning, StartedAt: workflow.Now(ctx)})
	if err := d.record(ctx); err != nil {
		return err
	}
	detail, err := fn(ctx)
	end := workflow.Now(ctx)
	s := &d.st.Timeline[i] // taken now: an abort may have appended meanwhile
	s.FinishedAt, s.Detail = &end, clip(detail, maxDetail)
	switch {
	case err == nil:
		s.Status = StepSucceeded
		d.st.Measurements[name+"_seconds"] = s.Seconds()
	case ctx.Err() != nil:
		s.Status, s.Detail = StepAborted, "interrupted: "+d.interruption()
	default:
		s.Status, s.Detail = StepFailed, describe(err)
	}
	if rerr := d.record(ctx); rerr != nil {
		return rerr
	}
	return err
}

// instant adds a step that happens at one moment.
func (d *drill) instant(ctx workflow.Context, name, detail string) {
	now := workflow.Now(ctx)
	d.st.Timeline = append(d.st.Timeline, Step{Name: name, Status: StepSucceeded, StartedAt: now, FinishedAt: &now, Detail: detail})
}

func (d *drill) interruption() string {
	if d.aborted != "" {
		return d.aborted
	}
	return "the workflow was cancelled"
}

// record writes the drill's row as it stands. Records run in a context
// that neither an abort nor a cancellation reaches, and retry until they
// succeed, so the row always catches up with the workflow; Seq keeps a
// late retry from moving it backwards.
func (d *drill) record(ctx workflow.Context) error {
	d.seq++
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteActivity(recordOptions(rctx), RecordActivity, RecordInput{Drill: d.st, Seq: d.seq}).Get(rctx, nil)
	if err != nil {
		return fmt.Errorf("record drill %s: %w", d.st.ID, err)
	}
	return nil
}

// describe is an error as a step's detail: the activity's own message,
// without the SDK's wrapping.
func describe(err error) string {
	var app *temporal.ApplicationError
	var act *temporal.ActivityError
	switch {
	case errors.As(err, &app):
		msg := app.Message()
		if cause := errors.Unwrap(app); cause != nil {
			msg += ": " + cause.Error()
		}
		return clip(msg, maxDetail)
	case errors.As(err, &act) && errors.Unwrap(act) != nil:
		return clip(errors.Unwrap(act).Error(), maxDetail)
	}
	return clip(err.Error(), maxDetail)
}

// clip bounds s to n bytes, cut on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
