package drills

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/drills/chart"
	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/drills/report"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/workflows/drill"
)

type handlers struct{ Deps }

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	var req createRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	in := drill.Input{Principal: caller.Name, Scenario: req.Scenario, Objectives: req.Objectives, Params: req.Params}
	if errs := drill.Validate(in); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	if drill.UsesPatroni(in) && !h.HasPatroni {
		return problem.Validation(validation.FieldError{Pointer: "#/params/driver", Code: "unavailable",
			Detail: "this server has no Patroni REST API configured (PLATFORM_DRILL_PATRONI_URL); use sql or dry_run"})
	}
	in.ID = idempotency.ResourceID(r.Context(), ids.Drill)
	d, err := h.Starter.Start(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/drills/"+d.ID)
	return web.WriteJSON(w, http.StatusCreated, h.toView(d))
}

// listParams are the query parameters GET /v1/drills knows.
var listParams = []string{page.ParamLimit, page.ParamCursor, "scenario", "status", auth.ParamPrincipal}

var statuses = []string{drill.Queued, drill.Running, drill.Succeeded, drill.Failed, drill.Aborted}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := web.UnknownParams(q, listParams...)
	principal, bound, perrs := auth.PrincipalFilter(q, caller)
	errs = append(errs, perrs...)
	f := ListFilter{Principal: principal}
	filters := url.Values{}
	if bound != "" {
		filters.Set(auth.ParamPrincipal, bound)
	}
	for _, p := range []struct {
		name    string
		allowed []string
		dst     *string
	}{{"scenario", drill.Scenarios, &f.Scenario}, {"status", statuses, &f.Status}} {
		v, e := web.EnumParam(q, p.name, p.allowed, filters)
		if e != nil {
			errs = append(errs, *e)
		}
		*p.dst = v
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	rows, err := h.Store.List(r.Context(), f, req)
	if err != nil {
		return err
	}
	views := make([]drillView, len(rows))
	for i, d := range rows {
		views[i] = h.toView(d)
	}
	key := func(v drillView) page.Cursor { return page.Cursor{CreatedAt: v.CreatedAt, ID: v.ID} }
	return page.Write(w, r, page.Build(views, req, key, h.CursorSecret, caller.Name, filters))
}

// visible returns the drill in the path if the caller may see it; another
// principal's drill is not found, exactly like a missing one.
func (h *handlers) visible(r *http.Request) (drill.Drill, error) {
	caller, _ := auth.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no drill %q", id)
	if len(id) > 255 {
		return drill.Drill{}, notFound
	}
	d, err := lookup{rows: h.Store, temporal: h.Temporal}.find(r.Context(), id, caller.CanSee)
	if errors.Is(err, problem.ErrNotFound) {
		return drill.Drill{}, notFound
	}
	return d, err
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	d, err := h.visible(r)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, h.toView(d))
}

// abort asks the drill's workflow to stop; it cleans up and ends aborted.
// The update is refused for a drill that has ended (409).
func (h *handlers) abort(w http.ResponseWriter, r *http.Request) error {
	var req abortRequest
	if r.ContentLength != 0 {
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if len(req.Reason) > 500 {
		return problem.Validation(validation.FieldError{Pointer: "#/reason", Code: "too_long", Detail: "must be at most 500 characters"})
	}
	d, err := h.visible(r)
	if err != nil {
		return err
	}
	handle, err := h.Temporal.UpdateWorkflow(r.Context(), client.UpdateWorkflowOptions{
		WorkflowID: drill.WorkflowID(d.ID), UpdateName: drill.Abort, Args: []any{drill.AbortInput{Reason: req.Reason}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(r.Context(), nil)
	}
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound) || isEnded(err):
		return problem.Newf(problem.Conflict, "drill %s has ended", d.ID)
	case isRejected(err):
		return problem.Newf(problem.Conflict, "drill %s cannot be aborted now", d.ID)
	case err != nil:
		return problem.UnavailableAfter(2, "could not reach the drill's workflow", err)
	}
	d, err = h.visible(r)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusAccepted, h.toView(d))
}

// isRejected reports whether the workflow's update validator refused the
// abort: the drill is finishing or has finished.
func isRejected(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == drill.ErrTypeInvalidTransition
}

// report renders the drill's postmortem draft as Markdown, with the
// manifest of its backup when the store still has it.
func (h *handlers) report(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	d, err := h.visible(r)
	if err != nil {
		return err
	}
	var m *drill.Manifest
	if d.BackupID != "" && h.Backups != nil {
		if got, err := h.Backups.Manifest(r.Context(), d.BackupID); err == nil {
			m = &got
		}
	}
	body := report.Render(d, m, runURL(h.TemporalUIURL, h.Namespace, d.WorkflowID, d.RunID))
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
	return nil
}

// chart draws one of a load experiment's charts from the drill's recorded
// measurements. An unknown name and a drill without load data for it are
// the same 404 as a missing drill's, with their own detail.
func (h *handlers) chart(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	d, err := h.visible(r)
	if err != nil {
		return err
	}
	name := mux.Vars(r)["name"]
	if !slices.Contains(chart.Names, name) {
		return problem.Newf(problem.NotFound, "no such chart; charts are named after endpoint classes: %s", strings.Join(chart.Names, ", "))
	}
	s, ok := chart.Find(d.Measurements, name)
	if !ok {
		return problem.Newf(problem.NotFound, "drill %s has no load measurements for %s", d.ID, name)
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(chart.SVG(s, experiment.DefaultP99[name]))
	}
	return nil
}

// isEnded reports whether err says the workflow has already completed.
func isEnded(err error) bool {
	return err != nil && strings.Contains(err.Error(), "workflow execution already completed")
}
