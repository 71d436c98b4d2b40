package rollouts

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/workflows/rollout"
)

// createRequest is the body of POST /v1/rollouts.
type createRequest struct {
	Flag    string         `json:"flag"`
	Variant string         `json:"variant"`
	Control string         `json:"control"`
	Steps   []rollout.Step `json:"steps"`
	Guard   guardRequest   `json:"guard"`
}

// guardRequest is the guard of a create request: rollout.GuardInput, whose
// prometheus settings name queries only. The server is the platform's
// (PLATFORM_PROMETHEUS_URL); a url, which requests once carried, is refused
// with its pointer rather than as an unknown field of the guard.
type guardRequest struct {
	rollout.GuardInput
	Prometheus *prometheusRequest `json:"prometheus,omitempty"`
}

type prometheusRequest struct {
	rollout.PrometheusGuard
	URL *json.RawMessage `json:"url,omitempty"`
}

// input is the guard as the workflow takes it, and the field errors of what
// the workflow's validation cannot see: a url, and a Prometheus guard when
// the platform has no Prometheus (hasPrometheus false).
func (g guardRequest) input(hasPrometheus bool) (rollout.GuardInput, []validation.FieldError) {
	in := g.GuardInput
	var errs []validation.FieldError
	if g.Prometheus != nil {
		in.Prometheus = &g.Prometheus.PrometheusGuard
		if g.Prometheus.URL != nil {
			errs = append(errs, validation.FieldError{Pointer: "#/guard/prometheus/url", Code: "unknown_field",
				Detail: "is not a known field: rollouts name queries only, the Prometheus server is the platform's"})
		}
	}
	if in.Source == rollout.GuardSourcePrometheus && !hasPrometheus {
		errs = append(errs, validation.FieldError{Pointer: "#/guard/source", Code: "unavailable",
			Detail: `"prometheus" is unavailable: this platform has no Prometheus server configured; use "events"`})
	}
	return in, errs
}

// commandRequest is the optional body of pause, resume and abort.
type commandRequest struct {
	Reason string `json:"reason"`
}

// eventsRequest is the body of POST /v1/rollouts/{id}/events.
type eventsRequest struct {
	Events []event `json:"events"`
}

// event is one outcome a service reports: whether serving targeting_key
// the variant failed, and how long it took.
type event struct {
	TargetingKey string   `json:"targeting_key"`
	Variant      string   `json:"variant"`
	Error        *bool    `json:"error"`
	LatencyMs    *float64 `json:"latency_ms"`
}

// maxEvents bounds a batch, so one request stays one quick insert.
const maxEvents = 1000

// validateEvents checks every event; variants must be the rollout's two.
func validateEvents(events []event, variant, control string) []validation.FieldError {
	var errs []validation.FieldError
	add := func(ptr, code, detail string) {
		errs = append(errs, validation.FieldError{Pointer: ptr, Code: code, Detail: detail})
	}
	if len(events) == 0 || len(events) > maxEvents {
		add("#/events", "out_of_range", fmt.Sprintf("must hold 1 to %d events", maxEvents))
		return errs
	}
	for i, e := range events {
		ptr := "#/events/" + strconv.Itoa(i)
		if e.TargetingKey == "" || len(e.TargetingKey) > 256 {
			add(ptr+"/targeting_key", "required", "must be 1 to 256 characters")
		}
		if e.Variant != variant && e.Variant != control {
			add(ptr+"/variant", "unknown_variant", fmt.Sprintf("must be the rollout's variant %q or its control %q", variant, control))
		}
		if e.Error == nil {
			add(ptr+"/error", "required", "must be true or false")
		}
		if l := e.LatencyMs; l != nil && (math.IsNaN(*l) || *l < 0 || *l > 1e7) {
			add(ptr+"/latency_ms", "out_of_range", "must be between 0 and 10000000")
		}
	}
	return errs
}

// rolloutView is a rollout as the API shows it. Steps and checks appear in
// GET /v1/rollouts/{id}; the list shows the summary.
type rolloutView struct {
	ID          string            `json:"id"`
	Principal   string            `json:"principal"`
	Flag        string            `json:"flag"`
	Variant     string            `json:"variant"`
	Control     string            `json:"control"`
	Status      string            `json:"status"`
	Reason      string            `json:"reason,omitempty"`
	CurrentStep int               `json:"current_step"`
	Percent     int               `json:"percent"`
	FlagVersion *int64            `json:"flag_version"`
	Guard       rollout.GuardSpec `json:"guard"`
	Steps       []stepView        `json:"steps,omitempty"`
	Evidence    json.RawMessage   `json:"evidence,omitempty"`
	WorkflowID  string            `json:"workflow_id"`
	RunID       string            `json:"run_id,omitempty"`
	TemporalURL string            `json:"temporal_url,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	FinishedAt  *time.Time        `json:"finished_at"`
}

// stepView is a step of the spec with its progress and checks.
type stepView struct {
	Step         int        `json:"step"`
	Percent      int        `json:"percent"`
	HoldSeconds  int        `json:"hold_seconds"`
	Attempt      int        `json:"attempt"`
	StartedAt    *time.Time `json:"started_at"`
	EndedAt      *time.Time `json:"ended_at"`
	Decision     string     `json:"decision,omitempty"`
	Failures     int        `json:"failures"`
	Inconclusive int        `json:"inconclusive"`
	// Checks are the step's newest checks, at most ChecksPerStep of
	// ChecksTotal, oldest first.
	Checks      []checkView `json:"checks"`
	ChecksTotal int         `json:"checks_total"`
}

// checkView is one guard check: the verdict, the numbers and thresholds
// behind it (result), and how they were obtained (evidence).
type checkView struct {
	Seq      int             `json:"seq"`
	Attempt  int             `json:"attempt"`
	At       time.Time       `json:"at"`
	Phase    string          `json:"phase"`
	Verdict  string          `json:"verdict"`
	Decision string          `json:"decision"`
	Result   json.RawMessage `json:"result"`
	Evidence json.RawMessage `json:"evidence"`
}

func summary(r rolloutRow, uiURL string) rolloutView {
	var spec rollout.Spec
	_ = json.Unmarshal(r.Spec, &spec) // written by the begin activity from a valid spec
	v := rolloutView{ID: r.ID, Principal: r.Principal, Flag: r.Flag, Variant: r.Variant, Control: r.Control,
		Status: r.Status, Reason: r.Reason, CurrentStep: r.CurrentStep, Percent: r.Percent, FlagVersion: r.FlagVersion,
		Guard: spec.Guard, WorkflowID: r.WorkflowID, RunID: r.RunID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		FinishedAt: web.UTC(r.FinishedAt)}
	if len(r.Evidence) > 0 {
		v.Evidence = r.Evidence
	}
	if uiURL != "" {
		v.TemporalURL = uiURL + url.PathEscape(r.WorkflowID)
	}
	return v
}

// detail is the summary with every step of the spec, its progress and checks.
func detail(r rolloutRow, steps []stepRow, checks []checkRow, uiURL string) rolloutView {
	v := summary(r, uiURL)
	var spec rollout.Spec
	_ = json.Unmarshal(r.Spec, &spec)
	v.Steps = make([]stepView, len(spec.Steps))
	for i, s := range spec.Steps {
		v.Steps[i] = stepView{Step: i, Percent: s.Percent, HoldSeconds: s.HoldSeconds, Checks: []checkView{}}
	}
	for _, s := range steps {
		if s.Step < len(v.Steps) {
			sv := &v.Steps[s.Step]
			started := s.StartedAt.UTC()
			sv.Attempt, sv.StartedAt, sv.EndedAt, sv.Decision = s.Attempt, &started, web.UTC(s.EndedAt), s.Decision
			sv.Failures, sv.Inconclusive = s.Failures, s.Inconclusive
		}
	}
	for _, c := range checks {
		if c.Step < len(v.Steps) {
			v.Steps[c.Step].ChecksTotal = c.Total
			v.Steps[c.Step].Checks = append(v.Steps[c.Step].Checks, checkView{Seq: c.Seq, Attempt: c.Attempt,
				At: c.At.UTC(), Phase: c.Phase, Verdict: c.Verdict, Decision: c.Decision, Result: c.Result, Evidence: c.Evidence})
		}
	}
	return v
}

// fieldErrors converts the spec's field errors.
func fieldErrors(errs []validation.FieldError) []validation.FieldError {
	out := make([]validation.FieldError, len(errs))
	for i, e := range errs {
		out[i] = validation.FieldError{Pointer: e.Pointer, Code: e.Code, Detail: e.Detail}
	}
	return out
}
