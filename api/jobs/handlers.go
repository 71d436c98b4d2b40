package jobs

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"go.temporal.io/api/serviceerror"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/workflows/job"
)

type handlers struct{ Deps }

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	var req createRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	in, errs := req.validate()
	if len(errs) == 0 && in.Type == jobs.TypeUpload {
		if err := h.checkUpload(r, in.Input, caller.Name, &errs); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return problem.Validation(errs...)
	}
	if err := mayStart(caller, in.Type); err != nil {
		return err
	}
	in.ID, in.Principal = idempotency.ResourceID(r.Context(), ids.Job), caller.Name
	// Answers at once, whether or not a worker runs: the job is queued in
	// Temporal, and a replay of the request that created an existing job
	// gets that job (its row, or its queued view); see Starter.Start.
	job, err := h.Starter.Start(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	return web.WriteJSON(w, http.StatusCreated, h.toView(job))
}

// checkUpload adds a field error when the upload of an upload.process job
// does not exist for the caller.
func (h *handlers) checkUpload(r *http.Request, input json.RawMessage, principal string, errs *fieldErrors) error {
	var in job.UploadInput
	if err := json.Unmarshal(input, &in); err != nil {
		return err
	}
	ok, err := h.Uploads.UploadExists(r.Context(), in.UploadID, principal)
	if err != nil {
		return err
	}
	if !ok {
		errs.add("#/input/upload_id", "not_found", "no such upload")
	}
	return nil
}

// listParams are the query parameters GET /v1/jobs knows.
var listParams = []string{page.ParamLimit, page.ParamCursor, "status", "type", auth.ParamPrincipal}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	f, filters, errs := listFilter(r.URL.Query(), caller)
	if len(errs) > 0 {
		if _, err := page.ParseLimit(r.URL.Query()); err != nil {
			var p *problem.Error
			if errors.As(err, &p) {
				errs = append(errs, p.Errors...)
			}
		}
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
	views := make([]jobView, len(rows))
	for i, j := range rows {
		views[i] = h.toView(j)
	}
	p := page.Build(views, req, func(v jobView) page.Cursor { return page.Cursor{CreatedAt: v.CreatedAt, ID: v.ID} },
		h.CursorSecret, caller.Name, filters)
	return page.Write(w, r, p)
}

// listFilter reads and checks the filters: status and type must be known
// values; principal is for admins, who otherwise see every principal's jobs.
func listFilter(q url.Values, caller auth.Principal) (ListFilter, url.Values, fieldErrors) {
	errs := fieldErrors(web.UnknownParams(q, listParams...))
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
	}{{"status", jobs.Statuses, &f.Status}, {"type", jobs.Types, &f.Type}} {
		v, e := web.EnumParam(q, p.name, p.allowed, filters)
		if e != nil {
			errs = append(errs, *e)
		}
		*p.dst = v
	}
	return f, filters, errs
}

// visible returns the job in the path if the caller may see it: its row, or
// before a worker has written the row, the queued job as Temporal holds it.
// Another principal's job is not found, so its existence is never revealed.
func (h *handlers) visible(r *http.Request) (jobs.Job, error) {
	caller, _ := auth.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no job %q", id)
	if !ids.HasPrefix(id, ids.Job) {
		return jobs.Job{}, notFound
	}
	j, err := lookup{rows: h.Store, temporal: h.Temporal}.find(r.Context(), id, caller.CanSee)
	if errors.Is(err, problem.ErrNotFound) {
		return jobs.Job{}, notFound
	}
	return j, err
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	j, err := h.visible(r)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, h.toView(j))
}

// attempts lists a job's ended attempts, newest first, in one page: a job
// has at most 100 attempts.
func (h *handlers) attempts(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) > 0 {
		return problem.Validation(validation.FieldError{Pointer: "#", Code: "unknown_parameter",
			Detail: "attempts take no query parameters: a job has at most 100, listed in one page"})
	}
	j, err := h.visible(r)
	if err != nil {
		return err
	}
	rows, err := h.Store.Attempts(r.Context(), j.ID)
	if err != nil {
		return err
	}
	views := make([]attemptView, len(rows))
	for i, a := range rows {
		views[i] = toAttemptView(a)
	}
	return web.WriteJSON(w, http.StatusOK, page.Page[attemptView]{Data: views})
}

func toAttemptView(a Attempt) attemptView {
	v := attemptView{Attempt: a.Attempt, Status: a.Status, Error: a.Error, Retryable: a.Retryable,
		StartedAt: a.StartedAt.UTC(), FinishedAt: a.FinishedAt.UTC()}
	if a.ResponseStatus != nil {
		v.Response = &responseView{Status: *a.ResponseStatus, BodyTruncated: a.BodyTruncated}
		if a.LatencyMS != nil {
			v.Response.LatencyMS = *a.LatencyMS
		}
		if a.ResponseBody != nil {
			v.Response.Body = *a.ResponseBody
		}
	}
	return v
}

// cancel requests the cancellation of the job's workflow and answers 202:
// the workflow stops the running attempt (through its heartbeats) and
// records "canceled" itself. A job no worker has started yet is canceled
// too: when a worker runs it, it writes its row and records "canceled"
// without an attempt.
func (h *handlers) cancel(w http.ResponseWriter, r *http.Request) error {
	j, err := h.visible(r)
	if err != nil {
		return err
	}
	if jobs.Final(j.Status) {
		return problem.Newf(problem.Conflict, "job %s has already ended: %s", j.ID, j.Status)
	}
	err = h.Temporal.CancelWorkflow(r.Context(), j.WorkflowID, j.RunID)
	var notFound *serviceerror.NotFound
	var already *serviceerror.CancellationAlreadyRequested
	switch {
	case errors.As(err, &notFound):
		return problem.Newf(problem.Conflict, "job %s has already ended", j.ID)
	case err != nil && !errors.As(err, &already):
		return problem.UnavailableAfter(2, "could not cancel the job's workflow", err)
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	return web.WriteJSON(w, http.StatusAccepted, h.toView(j))
}
