package uploads

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows/job"
)

type handlers struct{ Deps }

// create stores the spooled body (receive put it in the context; the
// body-limit middleware capped it at PLATFORM_UPLOAD_MAX_BYTES) and, with
// ?process=true, starts its job.
func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	sp, ok := spoolFrom(r.Context())
	if !ok {
		return errors.New("uploads: create runs without a received body")
	}
	process, err := processParam(r.URL.Query())
	if err != nil {
		return err
	}
	contentType, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	if sp.size == 0 {
		return problem.Validation(validation.FieldError{Pointer: "#", Code: "required", Detail: "the upload body is empty"})
	}
	up, err := h.Store.Create(r.Context(), NewUpload{ID: idempotency.ResourceID(r.Context(), ids.Upload),
		Principal: caller.Name, ContentType: contentType, Size: sp.size, SHA256: sp.sha256}, sp.file)
	if err != nil {
		return err
	}
	v := toView(up)
	if process {
		if v.JobID, err = h.startProcessing(r, up); err != nil {
			return err
		}
	}
	return web.WriteJSON(w, http.StatusCreated, v)
}

// startProcessing starts the upload's upload.process job; its id derives
// from the same Idempotency-Key as the upload's, so a retry attaches to it.
func (h *handlers) startProcessing(r *http.Request, up Upload) (string, error) {
	input, err := json.Marshal(job.UploadInput{UploadID: up.ID})
	if err != nil {
		return "", err
	}
	job, err := h.Starter.Start(r.Context(), job.Input{ID: idempotency.ResourceID(r.Context(), ids.Job),
		Principal: up.Principal, Type: jobs.TypeUpload, Input: input, Retry: retry.Defaults()})
	if err != nil {
		return "", err
	}
	return job.ID, nil
}

// processParam reads ?process=true|false; any other parameter is an error.
func processParam(q url.Values) (bool, error) {
	errs := web.UnknownParams(q, "process")
	process := false
	if vs, ok := q["process"]; ok {
		if len(vs) != 1 || (vs[0] != "true" && vs[0] != "false") {
			errs = append(errs, validation.FieldError{Pointer: "#/process", Code: "invalid", Detail: "must be true or false, once"})
		}
		process = len(vs) == 1 && vs[0] == "true"
	}
	if len(errs) > 0 {
		return false, problem.Validation(errs...)
	}
	return process, nil
}

// mediaType normalises the declared Content-Type; none means
// application/octet-stream.
func mediaType(v string) (string, error) {
	if v == "" {
		return "application/octet-stream", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", problem.Newf(problem.UnsupportedMediaType, "Content-Type %q is not a valid media type", v)
	}
	return mime.FormatMediaType(mt, params), nil
}
