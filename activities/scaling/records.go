package scaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	sc "github.com/acme/platform/scaling"
	wf "github.com/acme/platform/workflows/scaling"
)

const insertDecision = `INSERT INTO scaling_decisions (id, target, created_at, decision) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO NOTHING`

// RecordDecision inserts a decision row; a retried insert changes nothing.
func (a *Activities) RecordDecision(ctx context.Context, in wf.RecordDecisionInput) error {
	d := in.Decision
	b, err := json.Marshal(d)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encode decision", wf.ErrTypeInvalidInput, err)
	}
	tag, err := a.DB.Exec(ctx, insertDecision, d.ID, d.Target, d.At, b)
	if err != nil {
		return fmt.Errorf("record decision %s: %w", d.ID, err)
	}
	if tag.RowsAffected() == 1 && a.decisions != nil {
		a.decisions.WithLabelValues(d.Target, d.Outcome, d.Reason).Inc()
	}
	return nil
}

// upsertAction writes an action's row unless a newer write is there.
const upsertAction = `INSERT INTO scaling_actions (id, target, status, created_at, updated_at, action)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, action = EXCLUDED.action
WHERE scaling_actions.updated_at <= EXCLUDED.updated_at`

// RecordAction upserts an action's row.
func (a *Activities) RecordAction(ctx context.Context, in wf.RecordActionInput) error {
	x := in.Action
	b, err := json.Marshal(x)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encode action", wf.ErrTypeInvalidInput, err)
	}
	tag, err := a.DB.Exec(ctx, upsertAction, x.ID, x.Target, x.Status, x.CreatedAt, x.UpdatedAt, b)
	if err != nil {
		return fmt.Errorf("record action %s: %w", x.ID, err)
	}
	if tag.RowsAffected() == 1 && x.Status != sc.ActionRunning && a.actions != nil {
		a.actions.WithLabelValues(x.Target, x.Status).Inc()
	}
	return nil
}

// ErrTypeNotServing marks replicas that are ready but do not serve.
const ErrTypeNotServing = "NotServing"

// CheckServing checks that the target serves at its new count: every
// replica the driver lists answers /readyz, and for workers, the job queue
// has a poller seen in the last minute.
func (a *Activities) CheckServing(ctx context.Context, in wf.ScaleInput) error {
	d, err := a.driver(in.Driver)
	if err != nil {
		return err
	}
	if ep, ok := d.(Endpointer); ok {
		addrs, err := ep.Endpoints(ctx, in.Target)
		if err != nil {
			return err
		}
		for _, addr := range addrs {
			if !a.ready(ctx, addr) {
				return temporal.NewNonRetryableApplicationError(addr+" does not answer /readyz", ErrTypeNotServing, nil)
			}
		}
	}
	if in.Target != sc.TargetWorker || in.Replicas == 0 || len(a.JobQueues) == 0 {
		return nil
	}
	// A worker whose slots are all busy does not poll for activities, so a
	// recent poll of either task type counts; the server may take a moment
	// to list a new poller.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := a.polled(ctx, a.JobQueues[0])
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return temporal.NewNonRetryableApplicationError("no worker polls "+a.JobQueues[0], ErrTypeNotServing, nil)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// polled reports whether queue has a poller seen in the last minute.
func (a *Activities) polled(ctx context.Context, queue string) (bool, error) {
	desc, err := a.Temporal.DescribeTaskQueueEnhanced(ctx, client.DescribeTaskQueueEnhancedOptions{TaskQueue: queue,
		TaskQueueTypes: []client.TaskQueueType{client.TaskQueueTypeWorkflow, client.TaskQueueTypeActivity}, ReportPollers: true})
	if err != nil {
		return false, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	//lint:ignore SA1019 in SDK v1.51 DescribeTaskQueueEnhanced reports stats and pollers only here (VersioningInfo has neither)
	for _, v := range desc.VersionsInfo {
		for _, ti := range v.TypesInfo {
			for _, p := range ti.Pollers {
				if p.LastAccessTime.IsZero() || time.Since(p.LastAccessTime) < time.Minute {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

func (a *Activities) ready(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// StartControllers starts the controller of every target with a policy on
// queue, leaving one that already runs as it is. A worker calls it at
// start, so a controller that ended without its policy being deleted (a
// PUT whose start failed, a terminated or timed-out run, a lost Temporal
// namespace) runs again.
func (a *Activities) StartControllers(ctx context.Context, queue string) error {
	rows, err := a.DB.Query(ctx, `SELECT target FROM scaling_policies ORDER BY target`)
	if err != nil {
		return fmt.Errorf("list scaling policies: %w", err)
	}
	targets, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list scaling policies: %w", err)
	}
	var errs []error
	for _, t := range targets {
		_, err := a.Temporal.ExecuteWorkflow(ctx, wf.ControllerStartOptions(t, queue), wf.ControllerName, wf.ControllerInput{Target: t})
		if err != nil {
			errs = append(errs, fmt.Errorf("start the %s scaling controller: %w", t, err))
		}
	}
	return errors.Join(errs...)
}
