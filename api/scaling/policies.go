package scaling

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/validation"
	sc "github.com/acme/platform/scaling"
	wf "github.com/acme/platform/workflows/scaling"
)

type handlers struct{ Deps }

// pathTarget returns the target in the path; an unknown one is not found.
func pathTarget(r *http.Request) (string, error) {
	t := mux.Vars(r)["target"]
	if !slices.Contains(sc.Targets, t) {
		return "", problem.Newf(problem.NotFound, "no scaling target %q (targets: worker, api)", truncate(t, 64))
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ETag is a policy's entity tag.
func ETag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: nil when absent; a tag that is no version of
// ours matches nothing (412).
func ifMatch(r *http.Request) *int64 {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.Trim(v, `"`), "v"), 10, 64)
	if err != nil || !strings.HasPrefix(v, `"v`) {
		n = -1
	}
	return &n
}

func (h *handlers) listPolicies(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	ps, err := h.Store.List(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"data": ps, "has_more": false, "next_cursor": nil})
}

func (h *handlers) getPolicy(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	t, err := pathTarget(r)
	if err != nil {
		return err
	}
	p, err := h.Store.Get(r.Context(), t)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", ETag(p.Version))
	return web.WriteJSON(w, http.StatusOK, p)
}

// putPolicy creates or replaces a target's policy (conditional on If-Match
// when sent) and makes sure its controller runs. The controller reads the
// policy from its row every interval, so a controller that could not be
// started here is started by the next PUT or by any worker at start.
func (h *handlers) putPolicy(w http.ResponseWriter, r *http.Request) error {
	t, err := pathTarget(r)
	if err != nil {
		return err
	}
	var in sc.PolicyInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, errs := sc.Build(t, in)
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	caller, _ := auth.FromContext(r.Context())
	p, created, err := h.Store.Put(r.Context(), p, ifMatch(r), caller.Name)
	if err != nil {
		return err
	}
	if err := StartController(r.Context(), h.Temporal, h.ControlTaskQueue, t); err != nil {
		return problem.UnavailableAfter(2, "the policy is saved but its controller did not start; PUT it again", err)
	}
	w.Header().Set("ETag", ETag(p.Version))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return web.WriteJSON(w, status, p)
}

// StartController starts target's controller unless it runs.
func StartController(ctx context.Context, c client.Client, queue, target string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := c.ExecuteWorkflow(ctx, wf.ControllerStartOptions(target, queue), wf.ControllerName, wf.ControllerInput{Target: target})
	if err != nil {
		return fmt.Errorf("start the %s scaling controller: %w", target, err)
	}
	return nil
}

// deletePolicy removes the policy; its controller ends at its next
// interval, when it finds no policy.
func (h *handlers) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	t, err := pathTarget(r)
	if err != nil {
		return err
	}
	if err := h.Store.Delete(r.Context(), t, ifMatch(r)); err != nil {
		return err
	}
	return web.NoContent(w)
}

func (h *handlers) pause(w http.ResponseWriter, r *http.Request) error {
	return h.signal(w, r, wf.PauseSignal, struct{}{})
}

func (h *handlers) resume(w http.ResponseWriter, r *http.Request) error {
	return h.signal(w, r, wf.ResumeSignal, struct{}{})
}

// overrideRequest is the body of POST …/override.
type overrideRequest struct {
	Replicas *int32     `json:"replicas"`
	Until    *time.Time `json:"until"`
}

// MaxOverride is the longest an override may hold.
const MaxOverride = 7 * 24 * time.Hour

func (h *handlers) override(w http.ResponseWriter, r *http.Request) error {
	var req overrideRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	var errs []validation.FieldError
	if req.Replicas == nil || *req.Replicas < 0 || *req.Replicas > sc.MaxReplicasLimit {
		errs = append(errs, validation.FieldError{Pointer: "#/replicas", Code: "out_of_range",
			Detail: fmt.Sprintf("must be between 1 and %d, or 0 to clear the override", sc.MaxReplicasLimit)})
	}
	now := time.Now()
	if req.Replicas != nil && *req.Replicas > 0 && (req.Until == nil || !req.Until.After(now) || req.Until.Sub(now) > MaxOverride) {
		errs = append(errs, validation.FieldError{Pointer: "#/until", Code: "out_of_range",
			Detail: "must be a time in the next 7 days"})
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	in := wf.OverrideInput{Replicas: *req.Replicas}
	if req.Until != nil {
		in.Until = req.Until.UTC()
	}
	return h.signal(w, r, wf.OverrideSignal, in)
}

// signal sends a control signal to the target's controller (started if
// it is not running) and answers with the target's state.
func (h *handlers) signal(w http.ResponseWriter, r *http.Request, name string, arg any) error {
	t, err := pathTarget(r)
	if err != nil {
		return err
	}
	if name != wf.OverrideSignal && r.ContentLength != 0 {
		var empty struct{}
		if err := web.DecodeJSON(r, &empty); err != nil {
			return err
		}
	}
	if _, err := h.Store.Get(r.Context(), t); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	_, err = h.Temporal.SignalWithStartWorkflow(ctx, wf.ControllerWorkflowID(t), name, arg,
		wf.ControllerStartOptions(t, h.ControlTaskQueue), wf.ControllerName, wf.ControllerInput{Target: t})
	if err != nil {
		return problem.UnavailableAfter(2, "could not reach the target's controller", err)
	}
	v, err := h.targetView(r.Context(), t)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusAccepted, v)
}
