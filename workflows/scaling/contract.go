// Package scaling holds the scaling workflows: platform.scaling.controller,
// one long-running workflow per target that reads the signals every
// interval, decides with scaling/recommend, records the decision and starts
// actions; and platform.scaling.action, which changes a target's replica
// count through its driver, waits for the new replicas to be ready and
// serving, and rolls back when they are not. Both run on the platform's
// control task queue. The controller takes plain JSON signals from the
// Temporal UI: "pause" ({}), "resume" ({}), "override"
// ({"replicas": 3, "until": "2026-12-02T10:00:00Z"}; replicas 0 clears it).
//
// This file is the contract between the workflows, their activities and the
// API.
package scaling

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	sc "github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/recommend"
)

// Names of the workflows, activities, signals and queries.
const (
	ControllerName = "platform.scaling.controller"
	ActionName     = "platform.scaling.action"

	// LoadPolicyActivity reads a target's policy (Found false once deleted).
	LoadPolicyActivity = "platform.scaling.load_policy"
	// ReadSignalsActivity reads the signals a policy names.
	ReadSignalsActivity = "platform.scaling.read_signals"
	// ReplicasActivity reads the desired and ready counts from the driver.
	ReplicasActivity = "platform.scaling.replicas"
	// ScaleActivity asks the driver for a count.
	ScaleActivity = "platform.scaling.scale"
	// WaitReadyActivity polls the driver until the count is ready.
	WaitReadyActivity = "platform.scaling.wait_ready"
	// CheckServingActivity checks that the target serves: workers poll
	// their task queue, API replicas answer /readyz.
	CheckServingActivity = "platform.scaling.check_serving"
	// RecordDecisionActivity inserts a decision row (its one writer).
	RecordDecisionActivity = "platform.scaling.record_decision"
	// RecordActionActivity upserts an action's row (its one writer).
	RecordActionActivity = "platform.scaling.record_action"

	PauseSignal    = "pause"
	ResumeSignal   = "resume"
	OverrideSignal = "override"
	// StateQuery returns the controller's State.
	StateQuery = "state"
)

// ControllerWorkflowID is the id of a target's controller.
func ControllerWorkflowID(target string) string { return "platform-scaling-controller-" + target }

// ControllerStartOptions start target's controller on queue, or find the
// run that is already there (one controller per target), and let a new run
// follow an ended one. The API's PUT and signals and the worker's start-up
// all start controllers with them.
func ControllerStartOptions(target, queue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: ControllerWorkflowID(target), TaskQueue: queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}

// ActionWorkflowID is the id of an action's workflow.
func ActionWorkflowID(id string) string { return "platform-scaling-action-" + id }

// OverrideInput is the override signal: hold Replicas until Until. Zero
// replicas clears the override.
type OverrideInput struct {
	Replicas int32     `json:"replicas"`
	Until    time.Time `json:"until"`
}

// State is what the controller carries across intervals and runs.
type State struct {
	Paused   bool           `json:"paused"`
	Override *OverrideInput `json:"override,omitempty"`
	// History and Changes feed the stabilization windows and rate policies.
	History []recommend.Point  `json:"history,omitempty"`
	Changes []recommend.Change `json:"changes,omitempty"`
	// LastDecision is the id of the latest decision row.
	LastDecision string `json:"last_decision,omitempty"`
	// PolicyVersion is the version the last interval used.
	PolicyVersion int64 `json:"policy_version,omitempty"`
}

// ControllerInput starts or continues a target's controller.
type ControllerInput struct {
	Target string `json:"target"`
	State  State  `json:"state"`
	// IterationsPerRun bounds a run's history; 0 means 100.
	IterationsPerRun int `json:"iterations_per_run,omitempty"`
}

// LoadPolicyInput and LoadPolicyResult are the load_policy activity's.
type LoadPolicyInput struct {
	Target string `json:"target"`
}

// LoadPolicyResult is the policy, if the target has one.
type LoadPolicyResult struct {
	Found  bool      `json:"found"`
	Policy sc.Policy `json:"policy"`
}

// ReadSignalsInput names the target and its policy.
type ReadSignalsInput struct {
	Policy  sc.Policy `json:"policy"`
	Current int32     `json:"current"`
}

// ReadSignalsResult holds one reading per signal the policy names.
type ReadSignalsResult struct {
	Readings []Reading `json:"readings"`
}

// Reading is a recommend.Reading that travels through history, with the
// error that made it missing.
type Reading struct {
	Name   string   `json:"name"`
	Value  *float64 `json:"value"`
	Target float64  `json:"target"`
	Total  bool     `json:"total,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// DriverInput names a target and its driver.
type DriverInput struct {
	Target string `json:"target"`
	Driver string `json:"driver"`
}

// ReplicasResult is a driver's count.
type ReplicasResult struct {
	Desired int32 `json:"desired"`
	Ready   int32 `json:"ready"`
}

// ScaleInput asks a driver for a count.
type ScaleInput struct {
	Target   string `json:"target"`
	Driver   string `json:"driver"`
	Replicas int32  `json:"replicas"`
	// TimeoutSeconds bounds wait_ready.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// RecordDecisionInput is a decision to insert.
type RecordDecisionInput struct {
	Decision sc.Decision `json:"decision"`
}

// RecordActionInput is an action's state to upsert.
type RecordActionInput struct {
	Action sc.Action `json:"action"`
}

// ActionInput starts platform.scaling.action.
type ActionInput struct {
	ID        string `json:"id"`
	Target    string `json:"target"`
	Driver    string `json:"driver"`
	Replicas  int32  `json:"replicas"`
	Reason    string `json:"reason"`
	Source    string `json:"source"`
	Principal string `json:"principal"`
	// TimeoutSeconds bounds waiting for ready and serving; 0 means 120.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// DefaultActionTimeout bounds an action's wait for ready replicas.
const DefaultActionTimeout = 120 * time.Second

// ErrTypeInvalidInput marks bad input to the workflows.
const ErrTypeInvalidInput = "InvalidInput"
