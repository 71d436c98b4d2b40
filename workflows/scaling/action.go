package scaling

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	sc "github.com/acme/platform/scaling"
)

// ActionWorkflow changes a target's replica count: it reads the current
// count, applies the new one through the driver, waits until the replicas
// are ready and checks that they serve; when they do not within the
// timeout it scales back to the previous count and ends rolled_back. It
// records the action's row at every step. A failed or rolled-back action is
// a completed workflow whose Action says so.
func ActionWorkflow(ctx workflow.Context, in ActionInput) (sc.Action, error) {
	if in.Replicas < 0 || in.Replicas > sc.MaxReplicasLimit || !slices.Contains(sc.Targets, in.Target) || in.ID == "" {
		return sc.Action{}, temporal.NewNonRetryableApplicationError("invalid action input", ErrTypeInvalidInput, nil)
	}
	now := workflow.Now(ctx).UTC().Truncate(time.Microsecond)
	a := &action{in: in, st: sc.Action{ID: in.ID, Target: in.Target, Driver: in.Driver, Replicas: in.Replicas,
		Reason: in.Reason, Source: in.Source, Principal: in.Principal, Status: sc.ActionRunning,
		Steps: []sc.Step{}, CreatedAt: now, UpdatedAt: now}}
	a.run(ctx)
	return a.st, nil
}

type action struct {
	in ActionInput
	st sc.Action
}

func (a *action) timeout() time.Duration {
	if a.in.TimeoutSeconds > 0 {
		return time.Duration(a.in.TimeoutSeconds) * time.Second
	}
	return DefaultActionTimeout
}

func (a *action) run(ctx workflow.Context) {
	a.record(ctx)
	var cur ReplicasResult
	if err := a.step(ctx, sc.StepRead, func() error {
		return workflow.ExecuteActivity(short(ctx), ReplicasActivity, DriverInput{Target: a.in.Target, Driver: a.in.Driver}).Get(ctx, &cur)
	}); err != nil {
		a.finish(ctx, sc.ActionFailed, err)
		return
	}
	a.st.Previous = cur.Desired
	if err := a.step(ctx, sc.StepApply, func() error { return a.scale(ctx, a.in.Replicas) }); err != nil {
		a.finish(ctx, sc.ActionFailed, err)
		return
	}
	err := a.step(ctx, sc.StepReady, func() error { return a.waitReady(ctx, a.in.Replicas) })
	if err == nil {
		err = a.step(ctx, sc.StepServe, func() error {
			in := ScaleInput{Target: a.in.Target, Driver: a.in.Driver, Replicas: a.in.Replicas}
			return workflow.ExecuteActivity(short(ctx), CheckServingActivity, in).Get(ctx, nil)
		})
	}
	if err == nil {
		a.finish(ctx, sc.ActionSucceeded, nil)
		return
	}
	a.rollback(ctx, err)
}

// rollback restores the previous count. The action ends rolled_back once
// the driver has taken the previous count back (its readiness is recorded
// as a step of its own), failed if even that is refused.
func (a *action) rollback(ctx workflow.Context, cause error) {
	if err := a.step(ctx, sc.StepRollback, func() error { return a.scale(ctx, a.st.Previous) }); err != nil {
		a.finish(ctx, sc.ActionFailed, fmt.Errorf("%s; rollback: %s", rootMessage(cause), rootMessage(err)))
		return
	}
	_ = a.step(ctx, sc.StepRollbackReady, func() error { return a.waitReady(ctx, a.st.Previous) })
	a.finish(ctx, sc.ActionRolledBack, cause)
}

func (a *action) scale(ctx workflow.Context, n int32) error {
	in := ScaleInput{Target: a.in.Target, Driver: a.in.Driver, Replicas: n}
	return workflow.ExecuteActivity(short(ctx), ScaleActivity, in).Get(ctx, nil)
}

func (a *action) waitReady(ctx workflow.Context, n int32) error {
	in := ScaleInput{Target: a.in.Target, Driver: a.in.Driver, Replicas: n, TimeoutSeconds: int(a.timeout() / time.Second)}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: a.timeout() + 10*time.Second, HeartbeatTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteActivity(actx, WaitReadyActivity, in).Get(ctx, nil)
}

// step runs fn as a named step, recording its start and end.
func (a *action) step(ctx workflow.Context, name string, fn func() error) error {
	a.st.Steps = append(a.st.Steps, sc.Step{Name: name, Status: sc.ActionRunning, StartedAt: workflow.Now(ctx).UTC()})
	i := len(a.st.Steps) - 1
	a.record(ctx)
	err := fn()
	end := workflow.Now(ctx).UTC()
	a.st.Steps[i].FinishedAt = &end
	a.st.Steps[i].Status = sc.ActionSucceeded
	if err != nil {
		a.st.Steps[i].Status = sc.ActionFailed
		a.st.Steps[i].Detail = truncate(rootMessage(err), 500)
	}
	return err
}

func (a *action) finish(ctx workflow.Context, status string, err error) {
	a.st.Status = status
	if err != nil {
		a.st.Error = truncate(rootMessage(err), 500)
	}
	a.record(ctx)
}

// record upserts the row; a failure to record is logged, not fatal: the
// workflow's result still holds the action.
func (a *action) record(ctx workflow.Context) {
	a.st.UpdatedAt = workflow.Now(ctx).UTC()
	err := workflow.ExecuteActivity(recordOptions(ctx), RecordActionActivity, RecordActionInput{Action: a.st}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("scaling action not recorded", "action", a.st.ID, "error", err)
	}
}

// short is the options of quick driver calls: a few retries.
func short(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second},
	})
}

func recordOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: 500 * time.Millisecond},
	})
}

// rootMessage is the innermost message of an activity error.
func rootMessage(err error) string {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			if app, ok := err.(*temporal.ApplicationError); ok {
				return app.Message()
			}
			return err.Error()
		}
		if app, ok := err.(*temporal.ApplicationError); ok {
			return app.Message()
		}
		err = u.Unwrap()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
