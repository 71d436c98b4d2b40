package drills

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/workflows/drill"
)

// createRequest is the body of POST /v1/drills: the workflow's input, as an
// operator would type it in the Temporal UI.
type createRequest struct {
	Scenario   string           `json:"scenario"`
	Objectives drill.Objectives `json:"objectives"`
	Params     json.RawMessage  `json:"params"`
}

// abortRequest is the optional body of POST /v1/drills/{id}/abort.
type abortRequest struct {
	Reason string `json:"reason"`
}

// drillView is a drill as the API shows it.
type drillView struct {
	ID           string             `json:"id"`
	Scenario     string             `json:"scenario"`
	Status       string             `json:"status"`
	Verdict      *string            `json:"verdict"`
	Reasons      []string           `json:"reasons"`
	Objectives   drill.Objectives   `json:"objectives"`
	Measurements map[string]float64 `json:"measurements"`
	Timeline     []drill.Step       `json:"timeline"`
	BackupID     *string            `json:"backup_id"`
	Principal    string             `json:"principal"`
	Workflow     workflowView       `json:"workflow"`
	CreatedAt    time.Time          `json:"created_at"`
	StartedAt    *time.Time         `json:"started_at"`
	FinishedAt   *time.Time         `json:"finished_at"`
}

type workflowView struct {
	ID    string `json:"id"`
	RunID string `json:"run_id"`
	URL   string `json:"url,omitempty"`
}

// runURL links a workflow run in the Temporal UI.
func runURL(uiURL, namespace, workflowID, runID string) string {
	if uiURL == "" || runID == "" {
		return ""
	}
	return strings.TrimRight(uiURL, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" +
		url.PathEscape(workflowID) + "/" + url.PathEscape(runID) + "/history"
}

func (h *handlers) toView(d drill.Drill) drillView {
	v := drillView{ID: d.ID, Scenario: d.Scenario, Status: d.Status, Reasons: d.Reasons, Objectives: d.Objectives,
		Measurements: d.Measurements, Timeline: d.Timeline, Principal: d.Principal,
		Workflow:  workflowView{ID: d.WorkflowID, RunID: d.RunID, URL: runURL(h.TemporalUIURL, h.Namespace, d.WorkflowID, d.RunID)},
		CreatedAt: d.CreatedAt.UTC(), StartedAt: web.UTC(d.StartedAt), FinishedAt: web.UTC(d.FinishedAt)}
	if d.Verdict != "" {
		v.Verdict = &d.Verdict
	}
	if d.BackupID != "" {
		v.BackupID = &d.BackupID
	}
	if v.Reasons == nil {
		v.Reasons = []string{}
	}
	if v.Measurements == nil {
		v.Measurements = map[string]float64{}
	}
	if v.Timeline == nil {
		v.Timeline = []drill.Step{}
	}
	return v
}
