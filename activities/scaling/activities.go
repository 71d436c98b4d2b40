package scaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	wf "github.com/acme/platform/workflows/scaling"
)

// Activities are the scaling workflows' side effects.
type Activities struct {
	DB       *pgxpool.Pool
	Temporal client.Client
	// Drivers maps a policy's driver name to its implementation.
	Drivers map[string]Driver
	// JobQueues are the task queues whose backlog sizes the worker target
	// (the tenants' jobs queue; platform work is not what it scales for).
	JobQueues []string
	// PrometheusURL, when set, is where API latency is read; otherwise the
	// replicas' own /metrics are.
	PrometheusURL string
	Log           *slog.Logger
	HTTP          *http.Client

	decisions *prometheus.CounterVec
	actions   *prometheus.CounterVec
	desired   *prometheus.GaugeVec
}

// NewMetrics creates the activities' metrics on reg. Their labels are the
// target, outcome, reason and status: fixed sets, nothing a tenant sends.
func (a *Activities) NewMetrics(reg prometheus.Registerer) error {
	a.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scaling_decisions_total",
		Help: "Autoscaler decisions by target, outcome and reason."}, []string{"target", "outcome", "reason"})
	a.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scaling_actions_total",
		Help: "Finished scaling actions by target and status."}, []string{"target", "status"})
	a.desired = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scaling_desired_replicas",
		Help: "The replica count the autoscaler last decided, by target."}, []string{"target"})
	for _, c := range []prometheus.Collector{a.decisions, a.actions, a.desired} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

const selectPolicy = `SELECT policy, version, updated_at FROM scaling_policies WHERE target = $1`

// LoadPolicy reads a target's policy.
func (a *Activities) LoadPolicy(ctx context.Context, in wf.LoadPolicyInput) (wf.LoadPolicyResult, error) {
	var raw []byte
	var res wf.LoadPolicyResult
	var at time.Time
	err := a.DB.QueryRow(ctx, selectPolicy, in.Target).Scan(&raw, &res.Policy.Version, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("load the %s scaling policy: %w", in.Target, err)
	}
	v := res.Policy.Version
	if err := json.Unmarshal(raw, &res.Policy); err != nil {
		return res, temporal.NewNonRetryableApplicationError("decode the "+in.Target+" scaling policy", wf.ErrTypeInvalidInput, err)
	}
	res.Policy.Version, res.Policy.UpdatedAt, res.Found = v, at, true
	return res, nil
}

// Replicas reads the driver's counts.
func (a *Activities) Replicas(ctx context.Context, in wf.DriverInput) (wf.ReplicasResult, error) {
	d, err := a.driver(in.Driver)
	if err != nil {
		return wf.ReplicasResult{}, err
	}
	desired, ready, err := d.Replicas(ctx, in.Target)
	if err != nil {
		return wf.ReplicasResult{}, fmt.Errorf("read %s replicas: %w", in.Target, err)
	}
	return wf.ReplicasResult{Desired: desired, Ready: ready}, nil
}

// Scale asks the driver for a count.
func (a *Activities) Scale(ctx context.Context, in wf.ScaleInput) error {
	d, err := a.driver(in.Driver)
	if err != nil {
		return err
	}
	if err := d.Scale(ctx, in.Target, in.Replicas); err != nil {
		return fmt.Errorf("scale %s to %d: %w", in.Target, in.Replicas, err)
	}
	if a.desired != nil {
		a.desired.WithLabelValues(in.Target).Set(float64(in.Replicas))
	}
	return nil
}

// ErrTypeNotReady marks a count that did not become ready in time.
const ErrTypeNotReady = "NotReady"

// WaitReady polls the driver until the desired count is in place and
// ready, heartbeating, for at most in.TimeoutSeconds.
func (a *Activities) WaitReady(ctx context.Context, in wf.ScaleInput) error {
	d, err := a.driver(in.Driver)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(max(in.TimeoutSeconds, 1)) * time.Second)
	var desired, ready int32
	for {
		desired, ready, err = d.Replicas(ctx, in.Target)
		if err == nil && desired == in.Replicas && ready >= in.Replicas {
			return nil
		}
		activity.RecordHeartbeat(ctx, ready)
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	msg := fmt.Sprintf("%d of %d %s replicas ready after %ds", ready, in.Replicas, in.Target, in.TimeoutSeconds)
	if err != nil {
		msg += ": " + err.Error()
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeNotReady, nil)
}
