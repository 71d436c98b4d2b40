package rollout

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

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/workflows/rollout"
)

// Activities are the side effects of the platform.rollout workflow: the
// rollout's rows (written only here, keyed by the rollout id), the flag
// writes (compare-and-set through the flag store, audited as
// "rollout:<id>"), and the guard's observations.
type Activities struct {
	DB    *pgxpool.Pool
	Flags *store.Store
	// HTTP queries Prometheus (NewPrometheusClient); PrometheusURL is the
	// server, from configuration (PLATFORM_PROMETHEUS_URL), never from a
	// rollout. Empty fails every Prometheus observation as not_configured.
	HTTP          *http.Client
	PrometheusURL string
	Log           *slog.Logger

	rollbacks *prometheus.CounterVec
}

// New returns the rollout activities, with rollout_rollbacks_total
// registered on reg (reused when already registered).
func New(db *pgxpool.Pool, reg prometheus.Registerer, log *slog.Logger) (*Activities, error) {
	rollbacks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rollout_rollbacks_total",
		Help: "Activities that auto-disabled their variant after a regression, by flag.",
	}, []string{"flag"})
	var exists prometheus.AlreadyRegisteredError
	switch err := reg.Register(rollbacks); {
	case errors.As(err, &exists):
		rollbacks = exists.ExistingCollector.(*prometheus.CounterVec)
	case err != nil:
		return nil, fmt.Errorf("register rollout metrics: %w", err)
	}
	return &Activities{DB: db, Flags: &store.Store{DB: db}, HTTP: NewPrometheusClient(10 * time.Second),
		Log: log, rollbacks: rollbacks}, nil
}

const insertRollout = `
INSERT INTO rollouts (id, principal, flag, variant, control, status, reason, spec, flag_version, workflow_id, run_id, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $6 = 'failed' THEN clock_timestamp() END)
ON CONFLICT (id) DO UPDATE SET run_id = EXCLUDED.run_id
RETURNING status, reason, control, COALESCE(flag_version, 0)`

const activeRollout = `SELECT id, principal FROM rollouts WHERE flag = $1 AND status IN ('running', 'paused') AND id <> $2 LIMIT 1`

// Begin checks the flag and writes the rollout's row: running, or failed
// with the reason it cannot start (an invalid input, an unknown flag or
// variant, another active rollout on the flag). A retry returns what the
// first attempt wrote.
func (a *Activities) Begin(ctx context.Context, in rollout.BeginInput) (rollout.BeginResult, error) {
	res := rollout.BeginResult{Control: in.Control}
	if in.Invalid != "" {
		res.Failed, res.Reason = true, in.Invalid
	} else if err := a.checkFlag(ctx, in, &res); err != nil {
		return rollout.BeginResult{}, err
	}
	out, err := a.insertRollout(ctx, in, res)
	if database.IsUniqueViolation(err) {
		res.Failed, res.Reason = true, a.activeReason(ctx, in)
		out, err = a.insertRollout(ctx, in, res)
	}
	if err != nil {
		return rollout.BeginResult{}, fmt.Errorf("begin rollout %s: %w", in.ID, err)
	}
	return out, nil
}

// activeReason says why the rollout cannot start: the flag has another
// active rollout. The reason is shown to the rollout's principal, so it
// names the other rollout only when that principal owns it too.
func (a *Activities) activeReason(ctx context.Context, in rollout.BeginInput) string {
	var other, owner string
	_ = a.DB.QueryRow(ctx, activeRollout, in.Flag, in.ID).Scan(&other, &owner)
	if other != "" && owner == in.Principal {
		return fmt.Sprintf("flag %s already has an active rollout %s", in.Flag, other)
	}
	return fmt.Sprintf("flag %s already has an active rollout", in.Flag)
}

// checkFlag resolves control and the starting version, or fills in why the
// rollout cannot start.
func (a *Activities) checkFlag(ctx context.Context, in rollout.BeginInput, res *rollout.BeginResult) error {
	rec, err := a.Flags.Get(ctx, in.Flag)
	if errors.Is(err, store.ErrNotFound) {
		res.Failed, res.Reason = true, fmt.Sprintf("flag %s does not exist", in.Flag)
		return nil
	}
	if err != nil {
		return err
	}
	if res.Control == "" {
		res.Control = rec.Def.DefaultVariant
	}
	switch {
	case rec.Def.Variants[in.Variant] == nil:
		res.Failed, res.Reason = true, fmt.Sprintf("%q is not a variant of flag %s", in.Variant, in.Flag)
	case res.Control == "":
		res.Failed, res.Reason = true, fmt.Sprintf("flag %s has no default variant: name the control variant", in.Flag)
	case rec.Def.Variants[res.Control] == nil:
		res.Failed, res.Reason = true, fmt.Sprintf("control %q is not a variant of flag %s", res.Control, in.Flag)
	case res.Control == in.Variant:
		res.Failed, res.Reason = true, fmt.Sprintf("variant %q is the flag's control; name another control", in.Variant)
	}
	res.FlagVersion = rec.Version
	return nil
}

func (a *Activities) insertRollout(ctx context.Context, in rollout.BeginInput, res rollout.BeginResult) (rollout.BeginResult, error) {
	status := rollout.Running
	if res.Failed {
		status = rollout.Failed
	}
	spec, err := json.Marshal(in.Spec)
	if err != nil {
		return res, err
	}
	var out rollout.BeginResult
	err = a.DB.QueryRow(ctx, insertRollout, in.ID, in.Principal, in.Flag, in.Variant, res.Control, status, res.Reason,
		spec, res.FlagVersion, in.WorkflowID, in.RunID).Scan(&status, &out.Reason, &out.Control, &out.FlagVersion)
	out.Failed = status == rollout.Failed
	return out, err
}

// errFlagMoved aborts a compare-and-set write whose base version is gone.
var errFlagMoved = errors.New("the flag changed under the rollout")

// Split writes the step's fractional split with compare-and-set on the
// version the rollout last wrote. A flag changed by anyone else is a
// conflict to report, never something to overwrite, unless the input
// adopts the current version (a resume). A retry after a lost response
// finds its own write and succeeds.
func (a *Activities) Split(ctx context.Context, in rollout.SplitInput) (rollout.SplitResult, error) {
	actor := rollout.Actor(in.ID)
	var conflict rollout.SplitResult
	change := store.Change{Actor: actor, Reason: fmt.Sprintf("rollout %s step %d: %d%% to %s", in.ID, in.Step, in.Percent, in.Variant)}
	rec, _, err := a.Flags.Update(ctx, in.Flag, store.Cond{}, change, func(cur *store.Record) (*flags.Flag, error) {
		if cur == nil {
			conflict = a.deleted(ctx, in.Flag)
			return nil, errFlagMoved
		}
		def, err := flags.SetFractionalSplit(cur.Def, in.Control, in.Variant, in.Percent)
		if err != nil || (!in.Adopt && !ours(cur, in.ExpectedVersion, actor, def)) {
			conflict = rollout.SplitResult{Conflict: true, CurrentVersion: cur.Version, ChangedBy: cur.UpdatedBy}
			return nil, errFlagMoved
		}
		return &def, nil
	})
	if errors.Is(err, errFlagMoved) {
		return conflict, nil
	}
	if err != nil {
		return rollout.SplitResult{}, fmt.Errorf("split flag %s for rollout %s: %w", in.Flag, in.ID, err)
	}
	a.Log.Info("rollout split written", "rollout", in.ID, "flag", in.Flag, "step", in.Step, "percent", in.Percent,
		"variant", in.Variant, "version", rec.Version)
	return rollout.SplitResult{Version: rec.Version, At: rec.UpdatedAt}, nil
}

// ours reports whether the rollout may write over cur: it is the version
// the rollout expects, or the rollout's own write of exactly want (a retry).
func ours(cur *store.Record, expected int64, actor string, want flags.Flag) bool {
	if cur.Version == expected {
		return true
	}
	if cur.UpdatedBy != actor {
		return false
	}
	a, errA := store.Definition(cur.Def)
	b, errB := store.Definition(want)
	return errA == nil && errB == nil && string(a) == string(b)
}

// deleted describes a flag deleted under the rollout, naming who did it.
func (a *Activities) deleted(ctx context.Context, key string) rollout.SplitResult {
	res := rollout.SplitResult{Conflict: true, ChangedBy: "a deletion"}
	if entries, err := a.Flags.Audit(ctx, key, 1); err == nil && len(entries) == 1 {
		res.CurrentVersion, res.ChangedBy = entries[0].Version, entries[0].Actor+" (deleted it)"
	}
	return res
}

// Reset serves control to everyone in one compare-and-set write (the
// auto-disable of a regression, the end of an inconclusive or aborted
// rollout). A flag changed by anyone else is left as they set it.
func (a *Activities) Reset(ctx context.Context, in rollout.ResetInput) (rollout.ResetResult, error) {
	actor := rollout.Actor(in.ID)
	var conflict rollout.ResetResult
	change := store.Change{Actor: actor, Reason: fmt.Sprintf("rollout %s %s: %s", in.ID, in.Cause, in.Reason)}
	rec, _, err := a.Flags.Update(ctx, in.Flag, store.Cond{}, change, func(cur *store.Record) (*flags.Flag, error) {
		if cur == nil {
			d := a.deleted(ctx, in.Flag)
			conflict = rollout.ResetResult{Conflict: true, CurrentVersion: d.CurrentVersion, ChangedBy: d.ChangedBy}
			return nil, errFlagMoved
		}
		def, err := flags.Disable(cur.Def, in.Control)
		if err != nil || !ours(cur, in.ExpectedVersion, actor, def) {
			conflict = rollout.ResetResult{Conflict: true, CurrentVersion: cur.Version, ChangedBy: cur.UpdatedBy}
			return nil, errFlagMoved
		}
		return &def, nil
	})
	if errors.Is(err, errFlagMoved) {
		a.Log.Warn("rollout did not reset its flag: someone else changed it", "rollout", in.ID, "flag", in.Flag,
			"cause", in.Cause, "version", conflict.CurrentVersion, "changed_by", conflict.ChangedBy)
		return conflict, nil
	}
	if err != nil {
		return rollout.ResetResult{}, fmt.Errorf("reset flag %s for rollout %s: %w", in.Flag, in.ID, err)
	}
	a.logReset(in, rec.Version)
	return rollout.ResetResult{Version: rec.Version}, nil
}

func (a *Activities) logReset(in rollout.ResetInput, version int64) {
	attrs := []any{"rollout", in.ID, "flag", in.Flag, "control", in.Control, "version", version, "reason", in.Reason}
	switch in.Cause {
	case rollout.ResetRegression:
		a.rollbacks.WithLabelValues(in.Flag).Inc()
		a.Log.Warn("rollout rolled back: flag auto-disabled, control served to everyone", attrs...)
	case rollout.ResetInconclusive:
		a.Log.Warn("rollout gave up without a verdict: control served to everyone", attrs...)
	default:
		a.Log.Info("rollout aborted: control served to everyone", attrs...)
	}
}

const (
	updateRollout = `
UPDATE rollouts SET status = $2, reason = $3, control = $4, current_step = $5, percent = $6, flag_version = $7,
    evidence = COALESCE($8, evidence), updated_at = clock_timestamp(),
    finished_at = CASE WHEN $9 THEN COALESCE(finished_at, clock_timestamp()) ELSE finished_at END
WHERE id = $1`
	upsertStep = `
INSERT INTO rollout_steps (rollout_id, step, attempt, percent, hold_seconds, flag_version, started_at, ended_at, decision, failures, inconclusive)
VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 <> '' THEN clock_timestamp() END, $8, $9, $10)
ON CONFLICT (rollout_id, step) DO UPDATE SET attempt = EXCLUDED.attempt, percent = EXCLUDED.percent,
    hold_seconds = EXCLUDED.hold_seconds, flag_version = EXCLUDED.flag_version, started_at = EXCLUDED.started_at,
    ended_at = CASE WHEN EXCLUDED.decision = '' THEN NULL ELSE COALESCE(rollout_steps.ended_at, EXCLUDED.ended_at) END,
    decision = EXCLUDED.decision, failures = EXCLUDED.failures, inconclusive = EXCLUDED.inconclusive`
	insertCheck = `
INSERT INTO rollout_checks (rollout_id, seq, step, attempt, at, phase, verdict, decision, result, evidence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (rollout_id, seq) DO NOTHING`
)

// Record writes the rollout's row from the workflow's state, and the step
// and check when given, in one transaction. Every write is keyed (rollout,
// step, check sequence), so a retry rewrites the same values.
func (a *Activities) Record(ctx context.Context, in rollout.RecordInput) error {
	var evidence []byte
	if in.Evidence != nil {
		var err error
		if evidence, err = json.Marshal(in.Evidence); err != nil {
			return fmt.Errorf("record rollout %s: %w", in.ID, err)
		}
	}
	err := database.InTx(ctx, a.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, updateRollout, in.ID, in.Status, in.Reason, in.Control, in.Step, in.Percent,
			in.FlagVersion, evidence, in.Finished); err != nil {
			return err
		}
		if s := in.StepRecord; s != nil {
			if _, err := tx.Exec(ctx, upsertStep, in.ID, s.Step, s.Attempt, s.Percent, s.HoldSeconds, s.FlagVersion,
				s.StartedAt, s.Decision, s.Failures, s.Inconclusive); err != nil {
				return err
			}
		}
		if c := in.Check; c != nil {
			return insertCheckRow(ctx, tx, in.ID, c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record rollout %s: %w", in.ID, err)
	}
	return nil
}

func insertCheckRow(ctx context.Context, tx pgx.Tx, id string, c *rollout.CheckRecord) error {
	result, err := json.Marshal(c.Result)
	if err != nil {
		return err
	}
	evidence, err := json.Marshal(c.Evidence)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, insertCheck, id, c.Seq, c.Step, c.Attempt, c.At, c.Phase, string(c.Result.Verdict),
		c.Decision, result, evidence)
	return err
}
