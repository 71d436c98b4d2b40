package scaling

import (
	"fmt"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/internal/ids"
	sc "github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/recommend"
)

// DefaultIterationsPerRun is how many intervals a controller run makes
// before it continues as new, keeping its history small.
const DefaultIterationsPerRun = 100

// ControllerWorkflow is a target's autoscaler. Every interval of its policy
// it reads the driver's counts and the signals, decides with
// scaling/recommend, applies the decision through platform.scaling.action
// (a child workflow) unless paused, overridden or in recommend mode, and
// records the decision with its reasons. It ends when the policy is
// deleted and continues as new every IterationsPerRun intervals.
func ControllerWorkflow(ctx workflow.Context, in ControllerInput) error {
	c := &controller{in: in, st: in.State}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (State, error) { return c.st, nil }); err != nil {
		return err
	}
	n := in.IterationsPerRun
	if n <= 0 {
		n = DefaultIterationsPerRun
	}
	for c.iter = 0; c.iter < n; c.iter++ {
		var pol LoadPolicyResult
		if err := workflow.ExecuteActivity(recordOptions(ctx), LoadPolicyActivity, LoadPolicyInput{Target: in.Target}).Get(ctx, &pol); err != nil {
			workflow.GetLogger(ctx).Warn("scaling policy not loaded; next interval retries", "error", err)
			c.sleep(ctx, DefaultIntervalSeconds)
			continue
		}
		if !pol.Found {
			return nil
		}
		c.interval(ctx, pol.Policy)
		c.sleep(ctx, pol.Policy.IntervalSeconds)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	c.drainSignals(ctx)
	if c.inflight != nil {
		_ = c.inflight.Get(ctx, nil)
	}
	return workflow.NewContinueAsNewError(ctx, ControllerName, ControllerInput{Target: in.Target, State: c.st, IterationsPerRun: in.IterationsPerRun})
}

// DefaultIntervalSeconds is the pause after a failed policy load.
const DefaultIntervalSeconds = sc.DefaultIntervalSeconds

type controller struct {
	in   ControllerInput
	st   State
	iter int
	// inflight is the action started by an earlier interval, until it ends:
	// the controller keeps its rhythm (and its windows) while an action
	// waits for replicas, and starts no second one meanwhile.
	inflight workflow.ChildWorkflowFuture
}

// sleep waits for the interval or a signal, whichever comes first: a
// pause, resume or override takes effect at once.
func (c *controller) sleep(ctx workflow.Context, seconds int) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	s := workflow.NewSelector(ctx)
	s.AddFuture(workflow.NewTimer(tctx, time.Duration(seconds)*time.Second), func(workflow.Future) {})
	c.addSignals(ctx, s)
	s.Select(ctx)
	c.drainSignals(ctx)
}

func (c *controller) addSignals(ctx workflow.Context, s workflow.Selector) {
	s.AddReceive(workflow.GetSignalChannel(ctx, PauseSignal), func(ch workflow.ReceiveChannel, _ bool) {
		ch.Receive(ctx, nil)
		c.st.Paused = true
	})
	s.AddReceive(workflow.GetSignalChannel(ctx, ResumeSignal), func(ch workflow.ReceiveChannel, _ bool) {
		ch.Receive(ctx, nil)
		c.st.Paused = false
	})
	s.AddReceive(workflow.GetSignalChannel(ctx, OverrideSignal), func(ch workflow.ReceiveChannel, _ bool) {
		var o OverrideInput
		ch.Receive(ctx, &o)
		c.setOverride(o)
	})
}

func (c *controller) setOverride(o OverrideInput) {
	if o.Replicas <= 0 {
		c.st.Override = nil
		return
	}
	o.Replicas = min(o.Replicas, sc.MaxReplicasLimit)
	c.st.Override = &o
}

// drainSignals applies signals that arrived meanwhile, so none is lost to
// a continue-as-new.
func (c *controller) drainSignals(ctx workflow.Context) {
	for {
		s := workflow.NewSelector(ctx)
		c.addSignals(ctx, s)
		if !s.HasPending() {
			return
		}
		s.Select(ctx)
	}
}

// interval makes and records one decision.
func (c *controller) interval(ctx workflow.Context, p sc.Policy) {
	now := workflow.Now(ctx).UTC().Truncate(time.Microsecond)
	c.st.PolicyVersion = p.Version
	info := workflow.GetInfo(ctx)
	d := sc.Decision{ID: ids.Derive(ids.Decision, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, strconv.Itoa(c.iter)),
		Target: p.Target, PolicyVersion: p.Version, Mode: p.Mode, At: now, Outcome: sc.OutcomeNone, Notes: []string{}}
	var rep ReplicasResult
	err := workflow.ExecuteActivity(short(ctx), ReplicasActivity, DriverInput{Target: p.Target, Driver: p.Driver}).Get(ctx, &rep)
	if err != nil {
		d.Reason = sc.ReasonDriverError
		d.Notes = append(d.Notes, "driver: "+rootMessage(err))
		c.record(ctx, d)
		return
	}
	d.Current, d.Ready = rep.Desired, rep.Ready
	readings := c.readSignals(ctx, p, rep.Desired)
	r := recommend.Decide(recommend.Input{Now: now, Current: rep.Desired, Readings: toRecommend(readings), Policy: p,
		History: c.st.History, Changes: recommend.PruneChanges(c.st.Changes, now, p)})
	c.st.History = r.History
	d.Signals = withErrors(r.Signals, readings)
	d.Combined, d.Stabilized, d.RateLimited, d.Desired, d.Reason = r.Combined, r.Stabilized, r.RateLimited, r.Desired, r.Reason
	d.Notes = append(d.Notes, r.Notes...)
	want, reason := c.steer(now, p, r)
	if reason != "" {
		d.Reason = reason
	}
	if c.inflight != nil && c.inflight.IsReady() {
		c.inflight = nil
	}
	switch {
	case want == rep.Desired || reason == sc.ReasonPaused || reason == sc.ReasonRecommendMode:
	case c.inflight != nil:
		d.Reason = sc.ReasonActionInFlight
	default:
		d.Desired = want
		c.apply(ctx, p, &d, rep.Desired, want, now)
	}
	c.record(ctx, d)
}

// steer applies the operator's controls to the recommendation: an
// override replaces it, a pause or recommend mode keeps it from applying.
func (c *controller) steer(now time.Time, p sc.Policy, r recommend.Result) (int32, string) {
	if o := c.st.Override; o != nil && !now.Before(o.Until) {
		c.st.Override = nil
	}
	switch {
	case c.st.Paused:
		return r.Desired, sc.ReasonPaused
	case c.st.Override != nil:
		return c.st.Override.Replicas, sc.ReasonOverride
	case p.Mode == sc.ModeRecommend && r.Reason == "":
		return r.Desired, sc.ReasonRecommendMode
	}
	return r.Desired, ""
}

// apply starts the action as a child workflow and returns once it has
// started; the next intervals see it in flight until it ends.
func (c *controller) apply(ctx workflow.Context, p sc.Policy, d *sc.Decision, from, to int32, now time.Time) {
	info := workflow.GetInfo(ctx)
	id := ids.Derive(ids.Scaling, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, strconv.Itoa(c.iter))
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            ActionWorkflowID(id),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	})
	in := ActionInput{ID: id, Target: p.Target, Driver: p.Driver, Replicas: to, Source: "controller", Principal: "system",
		Reason: fmt.Sprintf("controller: %d → %d (decision %s)", from, to, d.ID)}
	f := workflow.ExecuteChildWorkflow(cctx, ActionName, in)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		d.Reason = sc.ReasonActionFailed
		d.Notes = append(d.Notes, "action not started: "+rootMessage(err))
		return
	}
	c.inflight = f
	d.Outcome, d.ActionID = sc.OutcomeScaled, id
	c.st.Changes = append(recommend.PruneChanges(c.st.Changes, now, p), recommend.Change{At: now, Delta: to - from})
}

func (c *controller) readSignals(ctx workflow.Context, p sc.Policy, current int32) []Reading {
	var res ReadSignalsResult
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	if err := workflow.ExecuteActivity(actx, ReadSignalsActivity, ReadSignalsInput{Policy: p, Current: current}).Get(ctx, &res); err != nil {
		// Every signal is missing: the recommender holds the count.
		return missingAll(p, rootMessage(err))
	}
	return res.Readings
}

func (c *controller) record(ctx workflow.Context, d sc.Decision) {
	if err := workflow.ExecuteActivity(recordOptions(ctx), RecordDecisionActivity, RecordDecisionInput{Decision: d}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("scaling decision not recorded", "decision", d.ID, "error", err)
		return
	}
	c.st.LastDecision = d.ID
}

// missingAll is one missing reading per signal of p.
func missingAll(p sc.Policy, why string) []Reading {
	var out []Reading
	for _, t := range SignalTargets(p.Signals) {
		out = append(out, Reading{Name: t.Name, Target: t.Target, Total: t.Total, Error: why})
	}
	return out
}

// SignalTarget is a signal a policy names, with its target.
type SignalTarget struct {
	Name   string
	Target float64
	Total  bool
}

// SignalTargets lists the signals s names, in a fixed order.
func SignalTargets(s sc.Signals) []SignalTarget {
	var out []SignalTarget
	for _, t := range []struct {
		name  string
		v     *float64
		total bool
	}{
		{sc.SignalBacklog, s.BacklogPerReplica, true},
		{sc.SignalBacklogAge, s.MaxBacklogAgeSeconds, false},
		{sc.SignalLatency, s.P95LatencyMs, false},
		{sc.SignalCPU, s.CPUUtilization, false},
		{sc.SignalMemory, s.MemoryUtilization, false},
		{sc.SignalSlots, s.SlotUtilization, false},
	} {
		if t.v != nil {
			out = append(out, SignalTarget{Name: t.name, Target: *t.v, Total: t.total})
		}
	}
	return out
}

func toRecommend(rs []Reading) []recommend.Reading {
	out := make([]recommend.Reading, len(rs))
	for i, r := range rs {
		out[i] = recommend.Reading{Name: r.Name, Value: r.Value, Target: r.Target, Total: r.Total}
	}
	return out
}

func withErrors(s []sc.SignalReading, rs []Reading) []sc.SignalReading {
	for i := range s {
		if i < len(rs) {
			s[i].Error = rs[i].Error
		}
	}
	if s == nil {
		return []sc.SignalReading{}
	}
	return s
}
