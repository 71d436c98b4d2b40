package scaling

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	sc "github.com/acme/platform/scaling"
	wf "github.com/acme/platform/workflows/scaling"
)

// targetView is GET /v1/scaling/targets/{target}.
type targetView struct {
	Target        string       `json:"target"`
	PolicyVersion *int64       `json:"policy_version"`
	Mode          *string      `json:"mode"`
	Driver        *string      `json:"driver"`
	Desired       *int32       `json:"desired_replicas"`
	Ready         *int32       `json:"ready_replicas"`
	Controller    string       `json:"controller"` // running, stopped, unknown
	Paused        bool         `json:"paused"`
	Override      *overrideVw  `json:"override"`
	LastDecision  *sc.Decision `json:"last_decision"`
}

type overrideVw struct {
	Replicas int32     `json:"replicas"`
	Until    time.Time `json:"until"`
}

func (h *handlers) target(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	t, err := pathTarget(r)
	if err != nil {
		return err
	}
	v, err := h.targetView(r.Context(), t)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

// targetView assembles the policy, the last decision (the counts the
// controller last read from the driver) and the controller's state.
func (h *handlers) targetView(ctx context.Context, t string) (targetView, error) {
	v := targetView{Target: t, Controller: "stopped"}
	p, err := h.Store.Get(ctx, t)
	switch {
	case err == nil:
		v.PolicyVersion, v.Mode, v.Driver = &p.Version, &p.Mode, &p.Driver
	case !errors.Is(err, problem.ErrNotFound):
		return v, err
	}
	if v.LastDecision, err = h.Store.LastDecision(ctx, t); err != nil {
		return v, err
	}
	if d := v.LastDecision; d != nil {
		v.Desired, v.Ready = &d.Current, &d.Ready
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := h.Temporal.QueryWorkflow(qctx, wf.ControllerWorkflowID(t), "", wf.StateQuery)
	var st wf.State
	switch {
	case err == nil && res.Get(&st) == nil:
		v.Controller, v.Paused = "running", st.Paused
		if o := st.Override; o != nil {
			v.Override = &overrideVw{Replicas: o.Replicas, Until: o.Until}
		}
	case err != nil && !isNotFound(err) && !isEnded(err):
		v.Controller = "unknown"
	}
	return v, nil
}

func (h *handlers) decisions(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := web.UnknownParams(q, page.ParamLimit, page.ParamCursor, "target")
	filters := url.Values{}
	target, e := web.EnumParam(q, "target", sc.Targets, filters)
	if e != nil {
		errs = append(errs, *e)
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	rows, err := h.Store.Decisions(r.Context(), target, req)
	if err != nil {
		return err
	}
	key := func(d sc.Decision) page.Cursor { return page.Cursor{CreatedAt: d.At, ID: d.ID} }
	return page.Write(w, r, page.Build(rows, req, key, h.CursorSecret, caller.Name, filters))
}

func (h *handlers) listActions(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := web.UnknownParams(q, page.ParamLimit, page.ParamCursor, "target", "status")
	filters := url.Values{}
	target, e := web.EnumParam(q, "target", sc.Targets, filters)
	if e != nil {
		errs = append(errs, *e)
	}
	status, e := web.EnumParam(q, "status", sc.ActionStatuses, filters)
	if e != nil {
		errs = append(errs, *e)
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	rows, err := h.Store.Actions(r.Context(), target, status, req)
	if err != nil {
		return err
	}
	key := func(a sc.Action) page.Cursor { return page.Cursor{CreatedAt: a.CreatedAt, ID: a.ID} }
	return page.Write(w, r, page.Build(rows, req, key, h.CursorSecret, caller.Name, filters))
}
