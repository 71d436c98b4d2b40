package drill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/internal/validation"
)

// Activities of the failover scenario.
const (
	// CheckReplicationActivity finds the primary and a streaming standby
	// among the hosts of PLATFORM_DATABASE_URL and measures replication lag.
	CheckReplicationActivity = "platform.drill.check_replication"
	// CheckPatroniActivity is CheckReplicationActivity for the patroni
	// driver: it reads the leader and a healthy replica from the Patroni
	// REST API of PLATFORM_DRILL_PATRONI_URL, checks that the platform's
	// database is that cluster's, and measures lag on the leader.
	CheckPatroniActivity = "platform.drill.check_patroni"
	// FailoverActivity writes heartbeats through a read-write pool on the
	// platform's multi-host URL, fences the primary, promotes the standby
	// and measures write unavailability (RTO) and acknowledged heartbeats
	// missing on the new primary (RPO). With the patroni driver it asks
	// Patroni for a switchover instead of fencing and promoting itself;
	// with the dry_run driver it only writes and checks heartbeats.
	FailoverActivity = "platform.drill.failover"
)

// Steps of the failover scenario.
const (
	ReplicationStep = "check_replication"
	FailoverStep    = "failover"
)

// Failover drivers.
const (
	DriverSQL     = "sql"
	DriverDryRun  = "dry_run"
	DriverPatroni = "patroni"
)

// FailoverStoppedErrorType marks a failover that hit its stop condition (no
// successful write within max_unavailable_seconds) or could not fence or
// promote; NoStandbyErrorType, a cluster without a streaming standby.
const (
	FailoverStoppedErrorType = "FailoverStopped"
	NoStandbyErrorType       = "NoStandby"
)

// Failover parameter bounds and defaults.
const (
	DefaultMaxUnavailableSeconds = 30
	MaxMaxUnavailableSeconds     = 600
	DefaultHeartbeatIntervalMS   = 100
	MinHeartbeatIntervalMS       = 10
	MaxHeartbeatIntervalMS       = 10_000
)

// FailoverParams are failover's parameters. The hosts are never a
// parameter: they come from the server's PLATFORM_DATABASE_URL.
type FailoverParams struct {
	Driver                string `json:"driver"`
	MaxUnavailableSeconds int    `json:"max_unavailable_seconds"`
	HeartbeatIntervalMS   int    `json:"heartbeat_interval_ms"`
}

// ReplicationResult is CheckReplicationActivity's result: host:port of the
// current primary and of the standby that a failover would promote (with
// the patroni driver, CheckPatroniActivity's: the leader's and the
// candidate's Patroni member names).
type ReplicationResult struct {
	Primary    string  `json:"primary"`
	Standby    string  `json:"standby"`
	SyncState  string  `json:"sync_state"`
	LagBytes   float64 `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
}

// FailoverInput is FailoverActivity's input. The activity accepts Primary
// and Standby only if they are hosts of PLATFORM_DATABASE_URL (patroni:
// the leader and a replica of the configured Patroni cluster).
type FailoverInput struct {
	DrillID             string `json:"drill_id"`
	Driver              string `json:"driver"`
	Primary             string `json:"primary"`
	Standby             string `json:"standby"`
	MaxUnavailable      int    `json:"max_unavailable_seconds"`
	HeartbeatIntervalMS int    `json:"heartbeat_interval_ms"`
}

// FailoverResult is FailoverActivity's result. Times are zero for a dry
// run. With the patroni driver, FencedAt is when the switchover was
// requested and PromotedAt when Patroni answered that it was done.
type FailoverResult struct {
	NewPrimary   string    `json:"new_primary"`
	FencedAt     time.Time `json:"fenced_at"`
	PromotedAt   time.Time `json:"promoted_at"`
	FirstWriteAt time.Time `json:"first_write_at"`
	RTOSeconds   float64   `json:"rto_seconds"`
	RPOSeconds   float64   `json:"rpo_seconds"`
	RPOWrites    int       `json:"rpo_writes"`
	Acknowledged int       `json:"heartbeats_acknowledged"`
	Failed       int       `json:"heartbeats_failed"`
}

// decodeFailoverParams decodes failover's params strictly and fills the
// defaults.
func decodeFailoverParams(raw json.RawMessage) (FailoverParams, []validation.FieldError) {
	var errs fieldErrors
	var in struct {
		Driver                *string `json:"driver"`
		MaxUnavailableSeconds *int    `json:"max_unavailable_seconds"`
		HeartbeatIntervalMS   *int    `json:"heartbeat_interval_ms"`
	}
	p := FailoverParams{MaxUnavailableSeconds: DefaultMaxUnavailableSeconds, HeartbeatIntervalMS: DefaultHeartbeatIntervalMS}
	raw = bytes.TrimSpace(raw)
	if len(raw) != 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			errs.add(paramsPointer(err), "invalid", "must be an object of driver (string), max_unavailable_seconds and heartbeat_interval_ms (integers): "+err.Error())
			return p, errs
		}
	}
	switch {
	case in.Driver == nil:
		errs.add("#/params/driver", "required", "is required: sql, patroni or dry_run")
	case *in.Driver == DriverSQL || *in.Driver == DriverPatroni || *in.Driver == DriverDryRun:
		p.Driver = *in.Driver
	default:
		errs.add("#/params/driver", "invalid", "must be sql, patroni or dry_run")
	}
	if v := in.MaxUnavailableSeconds; v != nil {
		if *v < 1 || *v > MaxMaxUnavailableSeconds {
			errs.add("#/params/max_unavailable_seconds", "out_of_range", fmt.Sprintf("must be 1 to %d", MaxMaxUnavailableSeconds))
		}
		p.MaxUnavailableSeconds = *v
	}
	if v := in.HeartbeatIntervalMS; v != nil {
		if *v < MinHeartbeatIntervalMS || *v > MaxHeartbeatIntervalMS {
			errs.add("#/params/heartbeat_interval_ms", "out_of_range", fmt.Sprintf("must be %d to %d", MinHeartbeatIntervalMS, MaxHeartbeatIntervalMS))
		}
		p.HeartbeatIntervalMS = *v
	}
	return p, errs
}

// UsesPatroni reports whether in is a failover drill with the patroni
// driver, which the API refuses when the server has no Patroni URL.
func UsesPatroni(in Input) bool {
	if in.Scenario != ScenarioFailover {
		return false
	}
	p, errs := decodeFailoverParams(in.Params)
	return len(errs) == 0 && p.Driver == DriverPatroni
}

// paramsPointer points at the member a decoding error names.
func paramsPointer(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return "#/params/" + pointerToken(typeErr.Field)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "#/params/" + pointerToken(strings.Trim(name, `"`))
	}
	return "#/params"
}

// failover checks replication, then fails over (or, dry, only writes and
// checks heartbeats). RTO is from the fence to the first successful write
// after it; RPO counts acknowledged heartbeats missing on the new primary.
func (d *drill) failover(ctx workflow.Context) error {
	p, _ := decodeFailoverParams(d.in.Params)
	var rep ReplicationResult
	err := d.step(ctx, ReplicationStep, func(ctx workflow.Context) (string, error) {
		check, what := CheckReplicationActivity, "primary %s streams to standby %s"
		if p.Driver == DriverPatroni {
			check, what = CheckPatroniActivity, "Patroni leader %s streams to replica %s"
		}
		if err := workflow.ExecuteActivity(replicationOptions(ctx), check).Get(ctx, &rep); err != nil {
			return "", err
		}
		d.st.Measurements["replication_lag_bytes"] = rep.LagBytes
		d.st.Measurements["replication_lag_seconds"] = rep.LagSeconds
		return fmt.Sprintf(what+" (%s), replay lag %s bytes, %s s", rep.Primary, rep.Standby,
			rep.SyncState, fmtNum(rep.LagBytes), fmtNum(rep.LagSeconds)), nil
	})
	if err != nil {
		return err
	}
	return d.step(ctx, FailoverStep, func(ctx workflow.Context) (string, error) {
		in := FailoverInput{DrillID: d.st.ID, Driver: p.Driver, Primary: rep.Primary, Standby: rep.Standby,
			MaxUnavailable: p.MaxUnavailableSeconds, HeartbeatIntervalMS: p.HeartbeatIntervalMS}
		var res FailoverResult
		if err := workflow.ExecuteActivity(failoverOptions(ctx, p), FailoverActivity, in).Get(ctx, &res); err != nil {
			return "", err
		}
		m := d.st.Measurements
		m["heartbeats_acknowledged"], m["heartbeats_failed"] = float64(res.Acknowledged), float64(res.Failed)
		m["rpo_writes"], m[drills.RPOSeconds] = float64(res.RPOWrites), res.RPOSeconds
		if p.Driver == DriverDryRun {
			return fmt.Sprintf("dry run: %d heartbeats acknowledged by %s, %d missing; nothing fenced or promoted",
				res.Acknowledged, rep.Primary, res.RPOWrites), nil
		}
		m[drills.RTOSeconds] = res.RTOSeconds
		if p.Driver == DriverPatroni {
			return fmt.Sprintf("Patroni switched over from %s to %s: requested at %s, done at %s, first write at %s; "+
				"longest write gap %s s; %d heartbeats acknowledged, %d missing on the new leader (%s s); %s rejoined as a streaming replica",
				rep.Primary, res.NewPrimary, utcMilli(res.FencedAt), utcMilli(res.PromotedAt), utcMilli(res.FirstWriteAt),
				fmtNum(res.RTOSeconds), res.Acknowledged, res.RPOWrites, fmtNum(res.RPOSeconds), rep.Primary), nil
		}
		return fmt.Sprintf("fenced %s at %s, promoted %s at %s, first write at %s: %s s without writes; "+
			"%d heartbeats acknowledged, %d missing on the new primary (%s s)", rep.Primary, utcMilli(res.FencedAt),
			res.NewPrimary, utcMilli(res.PromotedAt), utcMilli(res.FirstWriteAt), fmtNum(res.RTOSeconds),
			res.Acknowledged, res.RPOWrites, fmtNum(res.RPOSeconds)), nil
	})
}

func fmtNum(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func utcMilli(t time.Time) string { return t.UTC().Format("15:04:05.000Z") }

func replicationOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 10 * time.Second, MaximumAttempts: 3, NonRetryableErrorTypes: []string{NoStandbyErrorType}},
	})
}

// failoverOptions: one attempt only, since a retry of a half-done failover
// would fence the new primary. The activity heartbeats; its deadline
// leaves room for the stop condition and the RPO check.
func failoverOptions(ctx workflow.Context, p FailoverParams) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Duration(p.MaxUnavailableSeconds)*time.Second + 5*time.Minute,
		HeartbeatTimeout:    30 * time.Second, WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}
