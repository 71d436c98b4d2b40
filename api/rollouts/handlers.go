// Package rollouts is the /v1/rollouts resource: guarded rollouts of a flag
// variant, each run by a platform.rollout workflow. Handlers start, message
// and read workflows; the workflow's activities alone write a rollout's
// rows. The one write here is of outcome events, into their own table.
package rollouts

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/open-feature/go-sdk/openfeature"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	apiflags "github.com/acme/platform/api/flags"
	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/workflows/rollout"
)

// EnabledFlag is the platform's own kill switch for new rollouts, evaluated
// through OpenFeature with the caller's principal as targeting key. Absent
// or unevaluable, rollouts are allowed.
const EnabledFlag = "platform.rollouts.enabled"

// Deps holds what the rollout handlers use.
type Deps struct {
	DB        *pgxpool.Pool
	Flags     *store.Store
	Temporal  client.Client
	TaskQueue string
	// Features evaluates the platform's own flags; nil allows everything.
	Features *openfeature.Client
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
	// HasPrometheus says whether the platform has a Prometheus server for
	// rollout guards (PLATFORM_PROMETHEUS_URL); without one, guards with
	// source "prometheus" are refused.
	HasPrometheus bool
	// WorkflowURL is the Temporal UI's URL of the namespace's workflows
	// ("…/namespaces/default/workflows/"); empty leaves links out.
	WorkflowURL string
}

// Routes registers the rollouts resource on r.
func Routes(r *mux.Router, d Deps) {
	store := &Store{DB: d.DB}
	h := &handlers{Deps: d, rows: store, starter: &Starter{Temporal: d.Temporal, TaskQueue: d.TaskQueue, Store: store}}
	read := func(f web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeRolloutsRead, f) }
	write := func(f web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeRolloutsWrite, f) }
	r.Handle("/v1/rollouts", write(h.create)).Methods(http.MethodPost)
	r.Handle("/v1/rollouts", read(h.list)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/rollouts/{id}", read(h.get)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/rollouts/{id}/pause", write(h.command(rollout.Pause))).Methods(http.MethodPost)
	r.Handle("/v1/rollouts/{id}/resume", write(h.command(rollout.Resume))).Methods(http.MethodPost)
	r.Handle("/v1/rollouts/{id}/abort", write(h.command(rollout.Abort))).Methods(http.MethodPost)
	r.Handle("/v1/rollouts/{id}/events", write(h.events)).Methods(http.MethodPost)
}

type handlers struct {
	Deps
	rows    *Store
	starter *Starter
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	// A rollout rewrites its flag's targeting, so it takes the right to
	// write flags as well as the route's rollouts:write.
	if caller, _ := auth.FromContext(ctx); !caller.Has(auth.ScopeFlagsWrite) {
		return auth.InsufficientScope(auth.ScopeFlagsWrite)
	}
	var req createRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	in, err := h.validate(ctx, req)
	if err != nil {
		return err
	}
	st, err := h.starter.Start(ctx, in)
	if err != nil {
		return err
	}
	if st.Status == rollout.Failed {
		return problem.Newf(problem.Conflict, "rollout %s could not start: %s", in.ID, st.Reason)
	}
	v, err := h.read(ctx, in.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/rollouts/"+in.ID)
	return web.WriteJSON(w, http.StatusAccepted, v)
}

// validate turns the request into the workflow's input: the spec is
// valid, the flag and its variants exist, and the rollout may start now.
func (h *handlers) validate(ctx context.Context, req createRequest) (rollout.Input, error) {
	caller, _ := auth.FromContext(ctx)
	guardIn, errs := req.Guard.input(h.HasPrometheus)
	in := rollout.Input{Principal: caller.Name, Flag: req.Flag, Variant: req.Variant, Control: req.Control,
		Steps: req.Steps, Guard: guardIn}
	if errs = append(errs, in.Validate()...); len(errs) > 0 {
		return in, problem.Validation(fieldErrors(errs)...)
	}
	if err := apiflags.MayWrite(caller, in.Flag); err != nil {
		return in, err
	}
	if err := h.checkFlag(ctx, &in); err != nil {
		return in, err
	}
	in.ID = idempotency.ResourceID(ctx, ids.Rollout)
	return in, h.mayStart(ctx, caller, in)
}

// checkFlag checks the flag and variants against the store and resolves
// control (the flag's default variant unless named).
func (h *handlers) checkFlag(ctx context.Context, in *rollout.Input) error {
	rec, err := h.Flags.Get(ctx, in.Flag)
	if errors.Is(err, store.ErrNotFound) {
		return problem.Validation(validation.FieldError{Pointer: "#/flag", Code: "not_found", Detail: "is not a flag"})
	}
	if err != nil {
		return err
	}
	var errs []validation.FieldError
	if rec.Def.Variants[in.Variant] == nil {
		errs = append(errs, validation.FieldError{Pointer: "#/variant", Code: "unknown_variant", Detail: "is not a variant of the flag"})
	}
	if in.Control == "" {
		in.Control = rec.Def.DefaultVariant
	}
	switch {
	case in.Control == "":
		errs = append(errs, validation.FieldError{Pointer: "#/control", Code: "required", Detail: "the flag has no default variant: name the control variant"})
	case rec.Def.Variants[in.Control] == nil:
		errs = append(errs, validation.FieldError{Pointer: "#/control", Code: "unknown_variant", Detail: "is not a variant of the flag"})
	case in.Control == in.Variant:
		errs = append(errs, validation.FieldError{Pointer: "#/variant", Code: "invalid", Detail: "is the flag's default variant, the rollout's control: name another control"})
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	return nil
}

// mayStart refuses a rollout while the kill switch is off or the flag has
// another active rollout (two would overwrite each other's splits). The
// same rollout, started again under its Idempotency-Key, may go on. The
// other rollout is named only to a caller who may see it.
func (h *handlers) mayStart(ctx context.Context, caller auth.Principal, in rollout.Input) error {
	flag := in.Flag
	if h.Features != nil && !h.Features.Boolean(ctx, EnabledFlag, true, openfeature.NewEvaluationContext(caller.Name, nil)) {
		return problem.Newf(problem.Conflict, "new rollouts are switched off by flag %s", EnabledFlag)
	}
	active, owner, err := h.rows.active(ctx, flag)
	if err != nil {
		return err
	}
	switch {
	case active == "" || active == in.ID:
		return nil
	case caller.CanSee(owner):
		return problem.Newf(problem.Conflict, "flag %s already has an active rollout, %s", flag, active)
	}
	return problem.Newf(problem.Conflict, "flag %s already has an active rollout", flag)
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	if err := web.RejectUnknownParams(q, "flag", page.ParamLimit, page.ParamCursor); err != nil {
		return err
	}
	filters := url.Values{}
	if f := q.Get("flag"); f != "" {
		filters.Set("flag", f)
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	principal := caller.Name
	if caller.IsAdmin() {
		principal = ""
	}
	var afterAt *time.Time
	var afterID string
	if req.After != nil {
		afterAt, afterID = &req.After.CreatedAt, req.After.ID
	}
	rows, err := h.rows.list(r.Context(), principal, filters.Get("flag"), afterAt, afterID, req.FetchLimit())
	if err != nil {
		return err
	}
	views := make([]rolloutView, len(rows))
	for i, row := range rows {
		views[i] = summary(row, h.WorkflowURL)
	}
	p := page.Build(views, req, func(v rolloutView) page.Cursor { return page.Cursor{CreatedAt: v.CreatedAt, ID: v.ID} },
		h.CursorSecret, caller.Name, filters)
	return page.Write(w, r, p)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.view(r)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

// view reads the rollout with its steps and checks.
func (h *handlers) view(r *http.Request) (rolloutView, error) {
	ctx := r.Context()
	caller, _ := auth.FromContext(ctx)
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no rollout %q", id)
	if !ids.HasPrefix(id, ids.Rollout) {
		return rolloutView{}, notFound
	}
	row, err := h.rows.get(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return rolloutView{}, notFound
	}
	if err != nil {
		return rolloutView{}, err
	}
	if !caller.CanSee(row.Principal) {
		return rolloutView{}, notFound // never reveal another principal's rollout
	}
	return h.detailOf(ctx, row)
}

// read returns rollout id with its steps and checks.
func (h *handlers) read(ctx context.Context, id string) (rolloutView, error) {
	row, err := h.rows.get(ctx, id)
	if err != nil {
		return rolloutView{}, err
	}
	return h.detailOf(ctx, row)
}

func (h *handlers) detailOf(ctx context.Context, row rolloutRow) (rolloutView, error) {
	steps, err := h.rows.steps(ctx, row.ID)
	if err != nil {
		return rolloutView{}, err
	}
	checks, err := h.rows.checks(ctx, row.ID)
	if err != nil {
		return rolloutView{}, err
	}
	return detail(row, steps, checks, h.WorkflowURL), nil
}

// command sends pause, resume or abort as a workflow update: the workflow
// validates the transition, so an invalid one is refused (409) without
// touching its history.
func (h *handlers) command(name string) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req commandRequest
		if r.ContentLength != 0 {
			if err := web.DecodeJSON(r, &req); err != nil {
				return err
			}
		}
		v, err := h.view(r)
		if err != nil {
			return err
		}
		handle, err := h.Temporal.UpdateWorkflow(r.Context(), client.UpdateWorkflowOptions{
			WorkflowID: rollout.WorkflowID(v.ID), UpdateName: name,
			Args: []any{rollout.Command{Reason: req.Reason}}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		var st rollout.State
		if err == nil {
			err = handle.Get(r.Context(), &st)
		}
		if err != nil {
			return commandProblem(name, v, err)
		}
		v.Status, v.Reason = st.Status, st.Reason
		return web.WriteJSON(w, http.StatusOK, v)
	}
}

func commandProblem(name string, v rolloutView, err error) error {
	var missing *serviceerror.NotFound
	switch {
	case rollout.IsInvalidTransition(err):
		return &problem.Error{Code: problem.Conflict, Detail: "cannot " + name + " rollout " + v.ID + ": it is " + v.Status, Err: err}
	case errors.As(err, &missing):
		return &problem.Error{Code: problem.Conflict, Detail: "cannot " + name + " rollout " + v.ID + ": it has ended (" + v.Status + ")", Err: err}
	}
	return problem.UnavailableAfter(2, "could not reach the rollout workflow", err)
}

// events stores a batch of outcome events for the rollout's guard.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) error {
	var req eventsRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	v, err := h.view(r)
	if err != nil {
		return err
	}
	if v.Status != rollout.Running && v.Status != rollout.Paused {
		return problem.Newf(problem.Conflict, "rollout %s has ended (%s); its guard reads no more events", v.ID, v.Status)
	}
	if errs := validateEvents(req.Events, v.Variant, v.Control); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	if err := h.rows.insertEvents(r.Context(), v.ID, req.Events); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(req.Events)})
}
