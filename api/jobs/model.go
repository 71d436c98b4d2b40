package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows/job"
)

// createRequest is the body of POST /v1/jobs. Input and retry are decoded
// on their own, so that their field errors point inside them (#/retry/…).
type createRequest struct {
	Type  string          `json:"type"`
	Input json.RawMessage `json:"input"`
	Retry json.RawMessage `json:"retry"`
}

// maxURLLength bounds a webhook URL.
const maxURLLength = 2048

// webhookInput, rollupInput and uploadInput are the inputs clients send,
// decoded strictly; pointers tell a missing field from an empty one.
type webhookInput struct {
	URL     *string         `json:"url"`
	Payload json.RawMessage `json:"payload"`
}

type rollupInput struct {
	From *string `json:"from"`
	To   *string `json:"to"`
}

type uploadInput struct {
	UploadID *string `json:"upload_id"`
}

// fieldErrors collects field errors with their JSON pointers.
type fieldErrors []validation.FieldError

func (e *fieldErrors) add(ptr, code, detail string) {
	*e = append(*e, validation.FieldError{Pointer: ptr, Code: code, Detail: detail})
}

// validate checks the whole body and returns the job's type, normalised
// input and policy, with every invalid field.
func (req createRequest) validate() (in job.Input, errs fieldErrors) {
	in.Type = req.Type
	switch {
	case req.Type == "":
		errs.add("#/type", "required", "is required: one of "+strings.Join(jobs.Types, ", "))
	case !slices.Contains(jobs.Types, req.Type):
		errs.add("#/type", "invalid", "must be one of "+strings.Join(jobs.Types, ", "))
	}
	var inputErrs fieldErrors
	in.Input, inputErrs = validateInput(req.Type, req.Input)
	errs = append(errs, inputErrs...)
	var retryErrs fieldErrors
	in.Retry, retryErrs = validateRetry(req.Retry)
	return in, append(errs, retryErrs...)
}

// adminTypes are the job types only admin keys start: analytics.rollup
// aggregates every principal's usage, and its result counts their rows.
var adminTypes = []string{jobs.TypeRollup}

// mayStart refuses a job type the caller may not start. As with keys, the
// request is validated first: its errors reveal nothing the caller lacks.
func mayStart(caller auth.Principal, jobType string) error {
	if slices.Contains(adminTypes, jobType) && !caller.IsAdmin() {
		return auth.InsufficientScope(auth.ScopeAdmin)
	}
	return nil
}

// validateRetry applies the requested policy over the defaults.
func validateRetry(raw json.RawMessage) (retry.Policy, fieldErrors) {
	var overrides retry.Overrides
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		if errs := decodeWithin("#/retry", raw, &overrides); errs != nil {
			return retry.Policy{}, errs
		}
	}
	policy, issues := overrides.Resolve()
	var errs fieldErrors
	for _, i := range issues {
		errs.add("#/retry/"+i.Field, i.Code, i.Detail)
	}
	return policy, errs
}

// validateInput checks input for jobType and returns it compacted.
func validateInput(jobType string, input json.RawMessage) (json.RawMessage, fieldErrors) {
	var errs fieldErrors
	if len(bytes.TrimSpace(input)) == 0 || bytes.Equal(bytes.TrimSpace(input), []byte("null")) {
		errs.add("#/input", "required", "is required: an object")
		return nil, errs
	}
	if bytes.TrimSpace(input)[0] != '{' {
		errs.add("#/input", "invalid_type", "must be an object")
		return nil, errs
	}
	switch jobType {
	case jobs.TypeWebhook:
		errs = validateWebhook(input)
	case jobs.TypeRollup:
		errs = validateRollup(input)
	case jobs.TypeUpload:
		errs = validateUpload(input)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, input); err != nil {
		errs.add("#/input", "invalid", "is not valid JSON")
	}
	return compact.Bytes(), errs
}

// decodeWithin decodes the member at pointer strictly into v; its field
// errors point inside that member.
func decodeWithin(pointer string, raw json.RawMessage, v any) fieldErrors {
	err := web.DecodeJSONBytes(raw, v)
	if err == nil {
		return nil
	}
	var p *problem.Error
	if errors.As(err, &p) && len(p.Errors) > 0 {
		out := make(fieldErrors, len(p.Errors))
		for i, fe := range p.Errors {
			fe.Pointer = pointer + strings.TrimPrefix(fe.Pointer, "#")
			out[i] = fe
		}
		return out
	}
	return fieldErrors{{Pointer: pointer, Code: "invalid_type", Detail: "must be an object"}}
}

func decodeInput(input json.RawMessage, v any) fieldErrors { return decodeWithin("#/input", input, v) }

func validateWebhook(input json.RawMessage) fieldErrors {
	var in webhookInput
	if errs := decodeInput(input, &in); errs != nil {
		return errs
	}
	var errs fieldErrors
	if in.URL == nil {
		errs.add("#/input/url", "required", "is required: an http or https URL")
	} else if detail := checkURL(*in.URL); detail != "" {
		errs.add("#/input/url", "invalid", detail)
	}
	switch payload := bytes.TrimSpace(in.Payload); {
	case len(payload) == 0 || string(payload) == "null":
		errs.add("#/input/payload", "required", "is required: the JSON object to deliver")
	case payload[0] != '{':
		errs.add("#/input/payload", "invalid_type", "must be an object")
	}
	return errs
}

// checkURL says what is wrong with a webhook URL, or "". Whether its host
// may be reached is decided at delivery, on the address actually dialled.
func checkURL(raw string) string {
	if len(raw) > maxURLLength {
		return fmt.Sprintf("must be at most %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		return "must be an absolute http or https URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must use http or https"
	case u.User != nil:
		return "must not carry credentials; receivers verify the signature instead"
	case u.Fragment != "":
		return "must not have a fragment"
	}
	return ""
}

func validateRollup(input json.RawMessage) fieldErrors {
	var in rollupInput
	if errs := decodeInput(input, &in); errs != nil {
		return errs
	}
	var errs fieldErrors
	from := parseTime(&errs, "#/input/from", in.From)
	to := parseTime(&errs, "#/input/to", in.To)
	if from.IsZero() || to.IsZero() {
		return errs
	}
	switch {
	case !from.Before(to):
		errs.add("#/input/to", "out_of_range", "must be after from")
	case to.Sub(from) > 31*24*time.Hour:
		errs.add("#/input/to", "out_of_range", "must be at most 31 days after from")
	}
	return errs
}

// parseTime reads a required RFC 3339 timestamp.
func parseTime(errs *fieldErrors, ptr string, v *string) time.Time {
	if v == nil {
		errs.add(ptr, "required", "is required: an RFC 3339 timestamp")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		errs.add(ptr, "invalid", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
		return time.Time{}
	}
	return t
}

func validateUpload(input json.RawMessage) fieldErrors {
	var in uploadInput
	if errs := decodeInput(input, &in); errs != nil {
		return errs
	}
	var errs fieldErrors
	switch {
	case in.UploadID == nil:
		errs.add("#/input/upload_id", "required", "is required: the id of an upload (upl_…)")
	case !ids.HasPrefix(*in.UploadID, ids.Upload):
		errs.add("#/input/upload_id", "invalid", "must be an upload id (upl_…)")
	}
	return errs
}

// jobView is a job as the API shows it.
type jobView struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	LastError  *errorView      `json:"last_error"`
	Input      json.RawMessage `json:"input"`
	Result     json.RawMessage `json:"result"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Workflow   workflowView    `json:"workflow"`
}

type errorView struct {
	Message   string    `json:"message"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	Retryable bool      `json:"retryable"`
}

// workflowView names the job's run and links to it in the Temporal UI.
type workflowView struct {
	ID    string `json:"id"`
	RunID string `json:"run_id"`
	URL   string `json:"url"`
}

// RunURL is the Temporal UI page of a workflow run's history.
func RunURL(uiURL, namespace, workflowID, runID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", strings.TrimRight(uiURL, "/"),
		url.PathEscape(namespace), url.PathEscape(workflowID), url.PathEscape(runID))
}

func (h *handlers) toView(j jobs.Job) jobView {
	v := jobView{ID: j.ID, Type: j.Type, Status: j.Status, Attempts: j.Attempts, Input: j.Input, Result: j.Result,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(), StartedAt: web.UTC(j.StartedAt), FinishedAt: web.UTC(j.FinishedAt),
		Workflow: workflowView{ID: j.WorkflowID, RunID: j.RunID, URL: RunURL(h.TemporalUIURL, h.Namespace, j.WorkflowID, j.RunID)}}
	if e := j.LastError; e != nil {
		v.LastError = &errorView{Message: e.Message, Attempt: e.Attempt, At: e.At.UTC(), Retryable: e.Retryable}
	}
	return v
}

// attemptView is one ended attempt.
type attemptView struct {
	Attempt    int           `json:"attempt"`
	Status     string        `json:"status"`
	Error      *string       `json:"error"`
	Retryable  bool          `json:"retryable"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Response   *responseView `json:"response"`
}

// responseView is what a webhook receiver answered.
type responseView struct {
	Status        int     `json:"status"`
	LatencyMS     float64 `json:"latency_ms"`
	Body          string  `json:"body"`
	BodyTruncated bool    `json:"body_truncated"`
}
