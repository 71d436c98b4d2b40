package scaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	sc "github.com/acme/platform/scaling"
	wf "github.com/acme/platform/workflows/scaling"
)

// actionRequest is the body of POST /v1/scaling/actions. Driver defaults to
// the target's policy's; TimeoutSeconds bounds the wait for the new
// replicas to be ready and serving (default 120).
type actionRequest struct {
	Target         string  `json:"target"`
	Replicas       *int32  `json:"replicas"`
	Reason         string  `json:"reason"`
	Driver         *string `json:"driver"`
	TimeoutSeconds *int    `json:"timeout_seconds"`
}

// createAction starts a platform.scaling.action workflow: id from the
// Idempotency-Key (principal and key) when given, conflict policy FAIL and
// reuse policy REJECT_DUPLICATE so one id never runs twice, and an
// already-started id answered with that action.
func (h *handlers) createAction(w http.ResponseWriter, r *http.Request) error {
	var req actionRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	in, err := h.actionInput(r, req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	_, err = h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: wf.ActionWorkflowID(in.ID), TaskQueue: h.ControlTaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, wf.ActionName, in)
	if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return problem.UnavailableAfter(2, "could not start the action; retry with the same Idempotency-Key", err)
	}
	a, err := h.Store.Action(r.Context(), in.ID)
	if errors.Is(err, problem.ErrNotFound) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		a, err = sc.Action{ID: in.ID, Target: in.Target, Driver: in.Driver, Replicas: in.Replicas, Reason: in.Reason,
			Source: in.Source, Principal: in.Principal, Status: sc.ActionRunning, Steps: []sc.Step{}, CreatedAt: now, UpdatedAt: now}, nil
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/scaling/actions/"+a.ID)
	return web.WriteJSON(w, http.StatusCreated, a)
}

func (h *handlers) actionInput(r *http.Request, req actionRequest) (wf.ActionInput, error) {
	caller, _ := auth.FromContext(r.Context())
	var errs []validation.FieldError
	add := func(ptr, code, detail string) {
		errs = append(errs, validation.FieldError{Pointer: ptr, Code: code, Detail: detail})
	}
	if !slices.Contains(sc.Targets, req.Target) {
		add("#/target", "invalid", "must be worker or api")
	}
	if req.Replicas == nil || *req.Replicas < 1 || *req.Replicas > sc.MaxReplicasLimit {
		add("#/replicas", "out_of_range", fmt.Sprintf("must be between 1 and %d", sc.MaxReplicasLimit))
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
		add("#/reason", "invalid", "must be 1 to 500 characters")
	}
	if req.TimeoutSeconds != nil && (*req.TimeoutSeconds < 1 || *req.TimeoutSeconds > 3600) {
		add("#/timeout_seconds", "out_of_range", "must be between 1 and 3600")
	}
	driver := ""
	if req.Driver != nil {
		driver = *req.Driver
		if !slices.Contains(sc.Drivers, driver) {
			add("#/driver", "invalid", fmt.Sprintf("must be one of %v", sc.Drivers))
		}
	} else if slices.Contains(sc.Targets, req.Target) {
		p, err := h.Store.Get(r.Context(), req.Target)
		switch {
		case err == nil:
			driver = p.Driver
		case errors.Is(err, problem.ErrNotFound):
			add("#/driver", "required", "is required when the target has no scaling policy")
		default:
			return wf.ActionInput{}, err
		}
	}
	if len(errs) > 0 {
		return wf.ActionInput{}, problem.Validation(errs...)
	}
	in := wf.ActionInput{ID: idempotency.ResourceID(r.Context(), ids.Scaling), Target: req.Target, Driver: driver,
		Replicas: *req.Replicas, Reason: req.Reason, Source: "api", Principal: caller.Name}
	if req.TimeoutSeconds != nil {
		in.TimeoutSeconds = *req.TimeoutSeconds
	}
	return in, nil
}

// getAction returns an action's row, or, before its workflow wrote one, the
// workflow's input.
func (h *handlers) getAction(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no scaling action %q", truncate(id, 64))
	if !ids.HasPrefix(id, ids.Scaling) || len(id) > 64 {
		return notFound
	}
	a, err := h.Store.Action(r.Context(), id)
	if errors.Is(err, problem.ErrNotFound) {
		if _, derr := h.Temporal.DescribeWorkflow(r.Context(), wf.ActionWorkflowID(id), ""); derr == nil {
			return web.WriteJSON(w, http.StatusOK, sc.Action{ID: id, Status: sc.ActionRunning, Steps: []sc.Step{}})
		}
		return notFound
	}
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, a)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func isEnded(err error) bool {
	return err != nil && strings.Contains(err.Error(), "workflow execution already completed")
}
