// Package scaling is the scaling record: what a scaling policy is (with the
// Kubernetes HPA's defaults for what it leaves out), the decisions the
// controller records and the actions that change a target's replica count.
// It is a leaf, like packages jobs and drills: the recommender, the
// workflows (whose contracts alias these types), their activities and the
// API all share it without reaching up a layer.
package scaling

import (
	"fmt"
	"slices"
	"time"

	"github.com/acme/platform/internal/validation"
)

// Targets: what a policy scales. Both are platform-wide, so a policy belongs
// to the platform, not to a tenant.
const (
	TargetWorker = "worker"
	TargetAPI    = "api"
)

// Targets lists every target.
var Targets = []string{TargetWorker, TargetAPI}

// Drivers: how a change is applied.
const (
	DriverDryRun     = "dry_run"
	DriverLocal      = "local"
	DriverKubernetes = "kubernetes"
)

// Drivers lists every driver a policy may name.
var Drivers = []string{DriverDryRun, DriverLocal, DriverKubernetes}

// Modes: auto applies decisions; recommend only records them.
const (
	ModeAuto      = "auto"
	ModeRecommend = "recommend"
)

// Signal names, as they appear in decisions.
const (
	SignalBacklog    = "backlog"
	SignalBacklogAge = "backlog_age"
	SignalLatency    = "p95_latency"
	SignalCPU        = "cpu_utilization"
	SignalMemory     = "memory_utilization"
	SignalSlots      = "slot_utilization"
)

// Signals holds a policy's targets per signal; nil leaves a signal out.
type Signals struct {
	// BacklogPerReplica is the task-queue backlog one worker replica should
	// carry (KEDA's targetQueueSize).
	BacklogPerReplica *float64 `json:"backlog_per_replica,omitempty"`
	// MaxBacklogAgeSeconds is the age of the oldest waiting task to keep.
	MaxBacklogAgeSeconds *float64 `json:"max_backlog_age_seconds,omitempty"`
	// P95LatencyMs is the API's target 95th-percentile latency.
	P95LatencyMs *float64 `json:"p95_latency_ms,omitempty"`
	// CPUUtilization and MemoryUtilization are fractions (0–1] of the
	// replicas' limits (cgroup v2).
	CPUUtilization    *float64 `json:"cpu_utilization,omitempty"`
	MemoryUtilization *float64 `json:"memory_utilization,omitempty"`
	// SlotUtilization is the fraction of the workers' activity slots in use.
	SlotUtilization *float64 `json:"slot_utilization,omitempty"`
}

// Behavior is HPA's scaling rules for one direction: a stabilization
// window, and rate policies (a percentage and a number of replicas per
// period, the larger change wins: HPA's selectPolicy Max). Zero step
// fields disable that policy.
type Behavior struct {
	StabilizationSeconds int `json:"stabilization_seconds"`
	MaxStepPercent       int `json:"max_step_percent"`
	MaxStepReplicas      int `json:"max_step_replicas"`
	PeriodSeconds        int `json:"period_seconds"`
}

// Policy is a target's autoscaling policy.
type Policy struct {
	Target          string   `json:"target"`
	Driver          string   `json:"driver"`
	Mode            string   `json:"mode"`
	MinReplicas     int32    `json:"min_replicas"`
	MaxReplicas     int32    `json:"max_replicas"`
	IntervalSeconds int      `json:"interval_seconds"`
	Signals         Signals  `json:"signals"`
	Tolerance       float64  `json:"tolerance"`
	ScaleUp         Behavior `json:"scale_up"`
	ScaleDown       Behavior `json:"scale_down"`
	// Version counts the policy's writes; its ETag is derived from it.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Defaults, from the Kubernetes HPA (autoscaling/v2): tolerance 0.1;
// scale-up without a window, doubling or adding 4 replicas per 15 s,
// whichever is more; scale-down after a 300 s window, by up to 100% per
// 15 s. Interval 15 s is HPA's sync period.
const (
	DefaultTolerance       = 0.1
	DefaultIntervalSeconds = 15
)

// DefaultScaleUp and DefaultScaleDown are HPA's default behaviors.
var (
	DefaultScaleUp   = Behavior{StabilizationSeconds: 0, MaxStepPercent: 100, MaxStepReplicas: 4, PeriodSeconds: 15}
	DefaultScaleDown = Behavior{StabilizationSeconds: 300, MaxStepPercent: 100, MaxStepReplicas: 0, PeriodSeconds: 15}
)

// BehaviorInput is a Behavior as a client sends it: absent fields take the
// default.
type BehaviorInput struct {
	StabilizationSeconds *int `json:"stabilization_seconds"`
	MaxStepPercent       *int `json:"max_step_percent"`
	MaxStepReplicas      *int `json:"max_step_replicas"`
	PeriodSeconds        *int `json:"period_seconds"`
}

// PolicyInput is the body of PUT /v1/scaling/policies/{target}.
type PolicyInput struct {
	Driver          *string        `json:"driver"`
	Mode            *string        `json:"mode"`
	MinReplicas     *int32         `json:"min_replicas"`
	MaxReplicas     *int32         `json:"max_replicas"`
	IntervalSeconds *int           `json:"interval_seconds"`
	Signals         *Signals       `json:"signals"`
	Tolerance       *float64       `json:"tolerance"`
	ScaleUp         *BehaviorInput `json:"scale_up"`
	ScaleDown       *BehaviorInput `json:"scale_down"`
}

// Limits on a policy's values.
const (
	MaxReplicasLimit   = 1000
	MinIntervalSeconds = 1
	MaxIntervalSeconds = 3600
	MaxWindowSeconds   = 3600
)

// Build applies the defaults to in and validates the result; errors carry
// JSON pointers into the body.
func Build(target string, in PolicyInput) (Policy, []validation.FieldError) {
	p := Policy{Target: target, Driver: DriverDryRun, Mode: ModeAuto, MinReplicas: 1,
		IntervalSeconds: DefaultIntervalSeconds, Tolerance: DefaultTolerance,
		ScaleUp: DefaultScaleUp, ScaleDown: DefaultScaleDown}
	setIf(&p.Driver, in.Driver)
	setIf(&p.Mode, in.Mode)
	setIf(&p.MinReplicas, in.MinReplicas)
	setIf(&p.IntervalSeconds, in.IntervalSeconds)
	setIf(&p.Tolerance, in.Tolerance)
	if in.Signals != nil {
		p.Signals = *in.Signals
	}
	p.MaxReplicas = p.MinReplicas
	setIf(&p.MaxReplicas, in.MaxReplicas)
	p.ScaleUp = in.ScaleUp.apply(DefaultScaleUp)
	p.ScaleDown = in.ScaleDown.apply(DefaultScaleDown)
	return p, Validate(p, in.MaxReplicas == nil)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (b *BehaviorInput) apply(def Behavior) Behavior {
	if b == nil {
		return def
	}
	setIf(&def.StabilizationSeconds, b.StabilizationSeconds)
	setIf(&def.MaxStepPercent, b.MaxStepPercent)
	setIf(&def.MaxStepReplicas, b.MaxStepReplicas)
	setIf(&def.PeriodSeconds, b.PeriodSeconds)
	return def
}

// Validate checks a complete policy. maxMissing says max_replicas was left
// out, which is an error: a policy must bound its target.
func Validate(p Policy, maxMissing bool) []validation.FieldError {
	var errs []validation.FieldError
	add := func(ptr, code, format string, args ...any) {
		errs = append(errs, validation.FieldError{Pointer: ptr, Code: code, Detail: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(Targets, p.Target) {
		add("#/target", "invalid", "must be one of %v", Targets)
	}
	if !slices.Contains(Drivers, p.Driver) {
		add("#/driver", "invalid", "must be one of %v", Drivers)
	}
	if p.Mode != ModeAuto && p.Mode != ModeRecommend {
		add("#/mode", "invalid", "must be auto or recommend")
	}
	if p.MinReplicas < 1 || p.MinReplicas > MaxReplicasLimit {
		add("#/min_replicas", "out_of_range", "must be between 1 and %d", MaxReplicasLimit)
	}
	switch {
	case maxMissing:
		add("#/max_replicas", "required", "is required")
	case p.MaxReplicas < p.MinReplicas || p.MaxReplicas > MaxReplicasLimit:
		add("#/max_replicas", "out_of_range", "must be between min_replicas and %d", MaxReplicasLimit)
	}
	if p.IntervalSeconds < MinIntervalSeconds || p.IntervalSeconds > MaxIntervalSeconds {
		add("#/interval_seconds", "out_of_range", "must be between %d and %d", MinIntervalSeconds, MaxIntervalSeconds)
	}
	if p.Tolerance < 0 || p.Tolerance >= 1 {
		add("#/tolerance", "out_of_range", "must be at least 0 and below 1")
	}
	errs = append(errs, p.Signals.validate()...)
	errs = append(errs, p.ScaleUp.validate("#/scale_up")...)
	errs = append(errs, p.ScaleDown.validate("#/scale_down")...)
	return errs
}

func (s Signals) validate() []validation.FieldError {
	var errs []validation.FieldError
	check := func(name string, v *float64, max float64) {
		if v != nil && (*v <= 0 || *v > max) {
			errs = append(errs, validation.FieldError{Pointer: "#/signals/" + name, Code: "out_of_range",
				Detail: fmt.Sprintf("must be above 0 and at most %g", max)})
		}
	}
	check("backlog_per_replica", s.BacklogPerReplica, 1e6)
	check("max_backlog_age_seconds", s.MaxBacklogAgeSeconds, 86400)
	check("p95_latency_ms", s.P95LatencyMs, 600000)
	check("cpu_utilization", s.CPUUtilization, 1)
	check("memory_utilization", s.MemoryUtilization, 1)
	check("slot_utilization", s.SlotUtilization, 1)
	if s == (Signals{}) {
		errs = append(errs, validation.FieldError{Pointer: "#/signals", Code: "required", Detail: "name at least one signal"})
	}
	return errs
}

func (b Behavior) validate(ptr string) []validation.FieldError {
	var errs []validation.FieldError
	add := func(field, detail string) {
		errs = append(errs, validation.FieldError{Pointer: ptr + "/" + field, Code: "out_of_range", Detail: detail})
	}
	if b.StabilizationSeconds < 0 || b.StabilizationSeconds > MaxWindowSeconds {
		add("stabilization_seconds", fmt.Sprintf("must be between 0 and %d", MaxWindowSeconds))
	}
	if b.MaxStepPercent < 0 || b.MaxStepPercent > 1000 {
		add("max_step_percent", "must be between 0 and 1000")
	}
	if b.MaxStepReplicas < 0 || b.MaxStepReplicas > MaxReplicasLimit {
		add("max_step_replicas", fmt.Sprintf("must be between 0 and %d", MaxReplicasLimit))
	}
	if b.PeriodSeconds < 1 || b.PeriodSeconds > 1800 {
		add("period_seconds", "must be between 1 and 1800")
	}
	if b.MaxStepPercent == 0 && b.MaxStepReplicas == 0 {
		add("max_step_percent", "max_step_percent or max_step_replicas must be above 0")
	}
	return errs
}

// Reasons a decision changed nothing, in decisions' outcome.
const (
	ReasonNoChange      = "no_change"
	ReasonTolerance     = "tolerance"
	ReasonWindow        = "window"
	ReasonRatePolicy    = "rate_policy"
	ReasonBounds        = "bounds"
	ReasonPaused        = "paused"
	ReasonOverride      = "override"
	ReasonMissingSignal = "missing_signal"
	ReasonRecommendMode = "recommend_mode"
	ReasonDriverError   = "driver_error"
	// ReasonActionInFlight: an earlier action is still applying.
	ReasonActionInFlight = "action_in_flight"
	// ReasonActionFailed: the action could not be started.
	ReasonActionFailed = "action_failed"
)

// SignalReading is one signal's value and what it recommends.
type SignalReading struct {
	Name string `json:"name"`
	// Value is nil when the signal could not be read.
	Value  *float64 `json:"value"`
	Target float64  `json:"target"`
	// Replicas is the signal's recommendation; 0 when missing.
	Replicas int32  `json:"replicas"`
	Error    string `json:"error,omitempty"`
}

// Decision is one controller interval: the signals, what each recommends,
// the combined, stabilized, rate-limited and bounded numbers, and what
// happened.
type Decision struct {
	ID            string          `json:"id"`
	Target        string          `json:"target"`
	PolicyVersion int64           `json:"policy_version"`
	Mode          string          `json:"mode"`
	At            time.Time       `json:"at"`
	Current       int32           `json:"current_replicas"`
	Ready         int32           `json:"ready_replicas"`
	Signals       []SignalReading `json:"signals"`
	Combined      int32           `json:"combined"`
	Stabilized    int32           `json:"stabilized"`
	RateLimited   int32           `json:"rate_limited"`
	Desired       int32           `json:"desired"`
	// Outcome is "scaled" with ActionID, or "none" with Reason.
	Outcome  string `json:"outcome"`
	ActionID string `json:"action_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Notes explain partial effects, such as a rate policy capping a step.
	Notes []string `json:"notes"`
}

// Decision outcomes.
const (
	OutcomeScaled = "scaled"
	OutcomeNone   = "none"
)

// Action statuses.
const (
	ActionRunning    = "running"
	ActionSucceeded  = "succeeded"
	ActionFailed     = "failed"
	ActionRolledBack = "rolled_back"
)

// ActionStatuses lists every action status.
var ActionStatuses = []string{ActionRunning, ActionSucceeded, ActionFailed, ActionRolledBack}

// Action step names.
const (
	StepRead     = "read_current"
	StepApply    = "apply"
	StepReady    = "wait_ready"
	StepServe    = "check_serving"
	StepRollback = "rollback"
	// StepRollbackReady waits for the previous count to be ready again.
	StepRollbackReady = "rollback_ready"
)

// Step is one step of an action, with its timing.
type Step struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Detail     string     `json:"detail,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Action is one change of a target's replica count.
type Action struct {
	ID        string    `json:"id"`
	Target    string    `json:"target"`
	Driver    string    `json:"driver"`
	Replicas  int32     `json:"replicas"`
	Previous  int32     `json:"previous_replicas"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"` // "api" or "controller"
	Principal string    `json:"principal"`
	Status    string    `json:"status"`
	Steps     []Step    `json:"steps"`
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
