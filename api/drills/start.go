package drills

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/workflows/drill"
)

// MemoKey names the entry the API puts in a drill workflow's memo: who
// started it, when, and a fingerprint of the request, so the drill is
// visible before its first row is written and a replay under the same
// Idempotency-Key is told from another request.
const MemoKey = "platform.drill"

// Memo is the API's entry in a drill workflow's memo.
type Memo struct {
	Principal   string    `json:"principal"`
	Scenario    string    `json:"scenario"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
}

// Starter starts drill workflows on the control task queue, as jobs.Starter
// does for jobs: id from the business key (principal and Idempotency-Key),
// conflict policy FAIL and reuse policy REJECT_DUPLICATE so one id never
// runs twice, a bounded context that outlives the client's hang-up, and a
// replay recognised by the fingerprint in the memo.
type Starter struct {
	Temporal  client.Client
	TaskQueue string
	Store     *Store
}

// startTimeout bounds a start below the request timeout.
const startTimeout = 10 * time.Second

// Start starts the drill and returns it as accepted (queued), or, when an
// equal request under the same key started it before, that drill.
func (s *Starter) Start(ctx context.Context, in drill.Input) (drill.Drill, error) {
	fp, err := fingerprint(in)
	if err != nil {
		return drill.Drill{}, err
	}
	memo := Memo{Principal: in.Principal, Scenario: in.Scenario, Fingerprint: fp,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       drill.WorkflowID(in.ID),
		TaskQueue:                                s.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{MemoKey: memo},
	}, drill.Name, in)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return s.existing(ctx, in, fp)
	}
	if err != nil {
		return drill.Drill{}, problem.UnavailableAfter(2, "could not start the drill; retry with the same Idempotency-Key",
			fmt.Errorf("start drill %s: %w", in.ID, err))
	}
	return queued(in.ID, memo, run.GetID(), run.GetRunID(), in.Objectives), nil
}

// existing returns the drill holding in's id when an equal request made it;
// another request under the same key is a 422.
func (s *Starter) existing(ctx context.Context, in drill.Input, fp string) (drill.Drill, error) {
	l := lookup{rows: s.Store, temporal: s.Temporal}
	w, err := l.describe(ctx, in.ID)
	if err != nil {
		return drill.Drill{}, err
	}
	if w.memo == nil || w.memo.Principal != in.Principal || w.memo.Fingerprint != fp {
		return drill.Drill{}, problem.Newf(problem.IdempotencyKeyReused,
			"this Idempotency-Key already started drill %s from a different request", in.ID)
	}
	return l.find(ctx, in.ID, func(owner string) bool { return owner == in.Principal })
}

// fingerprint is a SHA-256 of the request in a canonical form (object
// members sorted, numbers as written).
func fingerprint(in drill.Input) (string, error) {
	var params any
	if len(in.Params) > 0 {
		if err := json.Unmarshal(in.Params, &params); err != nil {
			return "", fmt.Errorf("fingerprint drill: %w", err)
		}
	}
	b, err := json.Marshal(map[string]any{"scenario": in.Scenario, "objectives": in.Objectives, "params": params})
	if err != nil {
		return "", fmt.Errorf("fingerprint drill: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// queued is a drill accepted but not yet written by its workflow.
func queued(id string, m Memo, workflowID, runID string, objectives drill.Objectives) drill.Drill {
	return drill.Drill{ID: id, Principal: m.Principal, Scenario: m.Scenario, Status: drill.Queued,
		Objectives: objectives, Measurements: map[string]float64{}, Timeline: []drill.Step{},
		WorkflowID: workflowID, RunID: runID, CreatedAt: m.CreatedAt}
}

// lookup finds a drill: its row, or, before its workflow wrote one, the
// workflow's memo.
type lookup struct {
	rows     *Store
	temporal client.Client
}

type startedWorkflow struct {
	id, runID string
	startedAt time.Time
	memo      *Memo
}

func (l lookup) describe(ctx context.Context, id string) (startedWorkflow, error) {
	d, err := l.temporal.DescribeWorkflow(ctx, drill.WorkflowID(id), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return startedWorkflow{}, fmt.Errorf("drill %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return startedWorkflow{}, problem.UnavailableAfter(2, "could not read the drill's workflow", err)
	}
	w := startedWorkflow{id: d.WorkflowExecution.ID, runID: d.WorkflowExecution.RunID, startedAt: d.WorkflowStartTime}
	if p, ok := d.Memo.GetFields()[MemoKey]; ok {
		var m Memo
		if err := converter.GetDefaultDataConverter().FromPayload(p, &m); err != nil {
			return startedWorkflow{}, fmt.Errorf("drill %s: read memo: %w", id, err)
		}
		w.memo = &m
	}
	return w, nil
}

// find returns drill id if canSee its principal. A workflow started without
// the API's memo (from the Temporal UI or a schedule) belongs to "system"
// until its row says otherwise.
func (l lookup) find(ctx context.Context, id string, canSee func(string) bool) (drill.Drill, error) {
	d, err := l.rows.Get(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		var w startedWorkflow
		if w, err = l.describe(ctx, id); err == nil {
			m := Memo{Principal: "system", CreatedAt: w.startedAt.UTC()}
			if w.memo != nil {
				m = *w.memo
			}
			d = queued(id, m, w.id, w.runID, drill.Objectives{})
		}
	}
	if err == nil && !canSee(d.Principal) {
		err = fmt.Errorf("drill %s: %w", id, problem.ErrNotFound)
	}
	return d, err
}
