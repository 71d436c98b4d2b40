package rollout

import (
	"time"

	"github.com/acme/platform/flags/guard"
)

// The rollout activities' inputs and results. The activities live in
// package activities; these types are their contract.

// Spec is what a rollout's row keeps of its input: the steps and the
// effective guard.
type Spec struct {
	Steps []Step    `json:"steps"`
	Guard GuardSpec `json:"guard"`
}

// BeginInput is the input of the begin activity. Invalid, when set,
// is why the input was refused: the row is written as failed with it.
type BeginInput struct {
	ID         string `json:"id"`
	Principal  string `json:"principal"`
	Flag       string `json:"flag"`
	Variant    string `json:"variant"`
	Control    string `json:"control"`
	Spec       Spec   `json:"spec"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Invalid    string `json:"invalid,omitempty"`
}

// BeginResult says which variant is control and the flag version
// the rollout starts from, or why it cannot start.
type BeginResult struct {
	Control     string `json:"control"`
	FlagVersion int64  `json:"flag_version"`
	Failed      bool   `json:"failed"`
	Reason      string `json:"reason,omitempty"`
}

// SplitInput is the input of the split activity: write the step's
// fractional split if the flag is still at ExpectedVersion (or whatever
// version it has, when Adopt).
type SplitInput struct {
	ID              string `json:"id"`
	Flag            string `json:"flag"`
	Control         string `json:"control"`
	Variant         string `json:"variant"`
	Step            int    `json:"step"`
	Percent         int    `json:"percent"`
	ExpectedVersion int64  `json:"expected_version"`
	Adopt           bool   `json:"adopt"`
}

// SplitResult is the version written and when, or the conflict found.
type SplitResult struct {
	Version        int64     `json:"version"`
	At             time.Time `json:"at"`
	Conflict       bool      `json:"conflict"`
	CurrentVersion int64     `json:"current_version"`
	ChangedBy      string    `json:"changed_by,omitempty"`
}

// ObserveInput is the input of the observe activity: the cohorts' numbers
// since the step began. Baseline replaces the control cohort when Percent is
// 100 and control has no traffic left.
type ObserveInput struct {
	ID          string        `json:"id"`
	Flag        string        `json:"flag"`
	Variant     string        `json:"variant"`
	Control     string        `json:"control"`
	Percent     int           `json:"percent"`
	Since       time.Time     `json:"since"`
	Guard       GuardSpec     `json:"guard"`
	Baseline    *guard.Cohort `json:"baseline,omitempty"`
	FlagVersion int64         `json:"flag_version"`
}

// ObserveResult is the observation, the evidence behind it, and the flag's
// current version (and its writer) so that a human change is noticed
// during the hold.
type ObserveResult struct {
	Observation guard.Observation `json:"observation"`
	Evidence    Evidence          `json:"evidence"`
	FlagVersion int64             `json:"flag_version"`
	ChangedBy   string            `json:"changed_by,omitempty"`
}

// Evidence is how an observation was made: the source, the window, the
// queries as run and the values they returned.
type Evidence struct {
	Source              string             `json:"source"`
	WindowStart         time.Time          `json:"window_start,omitzero"`
	WindowEnd           time.Time          `json:"window_end,omitzero"`
	Queries             map[string]string  `json:"queries,omitempty"`
	Values              map[string]float64 `json:"values,omitempty"`
	ControlFromBaseline bool               `json:"control_from_baseline,omitempty"`
	Notes               []string           `json:"notes,omitempty"`
}

// ResetInput is the input of the reset activity: serve Control to everyone
// if the flag is still at ExpectedVersion. Cause is ResetRegression,
// ResetInconclusive or ResetAbort; Reason goes to the audit.
type ResetInput struct {
	ID              string `json:"id"`
	Flag            string `json:"flag"`
	Control         string `json:"control"`
	ExpectedVersion int64  `json:"expected_version"`
	Cause           string `json:"cause"`
	Reason          string `json:"reason"`
}

// ResetResult is the version written, or the conflict found.
type ResetResult struct {
	Version        int64  `json:"version"`
	Conflict       bool   `json:"conflict"`
	CurrentVersion int64  `json:"current_version"`
	ChangedBy      string `json:"changed_by,omitempty"`
}

// RecordInput is the input of the record activity: the rollout row's
// state, optionally a step row and a check, and on a terminal status the
// evidence.
type RecordInput struct {
	ID          string         `json:"id"`
	Status      string         `json:"status"`
	Reason      string         `json:"reason"`
	Control     string         `json:"control"`
	Step        int            `json:"step"`
	Percent     int            `json:"percent"`
	FlagVersion int64          `json:"flag_version"`
	Finished    bool           `json:"finished"`
	Evidence    *FinalEvidence `json:"evidence,omitempty"`
	StepRecord  *StepRecord    `json:"step_record,omitempty"`
	Check       *CheckRecord   `json:"check,omitempty"`
}

// StepRecord is a rollout_steps row.
type StepRecord struct {
	Step         int       `json:"step"`
	Attempt      int       `json:"attempt"`
	Percent      int       `json:"percent"`
	HoldSeconds  int       `json:"hold_seconds"`
	FlagVersion  int64     `json:"flag_version"`
	StartedAt    time.Time `json:"started_at"`
	Decision     string    `json:"decision,omitempty"`
	Failures     int       `json:"failures"`
	Inconclusive int       `json:"inconclusive"`
}

// CheckRecord is a rollout_checks row: a verdict with its numbers and
// evidence, and the decision it led to.
type CheckRecord struct {
	Seq      int         `json:"seq"`
	Step     int         `json:"step"`
	Attempt  int         `json:"attempt"`
	At       time.Time   `json:"at"`
	Phase    string      `json:"phase"`
	Decision string      `json:"decision"`
	Result   guard.Check `json:"result"`
	Evidence Evidence    `json:"evidence"`
}

// FinalEvidence is why a rollout ended: the decision, the step, its last
// checks and the evidence of the deciding observation.
type FinalEvidence struct {
	Decision string        `json:"decision"`
	Step     int           `json:"step"`
	Percent  int           `json:"percent"`
	Checks   []guard.Check `json:"checks,omitempty"`
	Evidence *Evidence     `json:"evidence,omitempty"`
}

// ErrTypeObserveFailed is the type of an observe activity error whose
// message is a category safe to show a tenant ("prometheus: timeout");
// other errors are noted without their text.
const ErrTypeObserveFailed = "ObserveFailed"
