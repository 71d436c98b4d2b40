package rollouts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/problem"
)

// The API only reads a rollout's rows: its workflow's activities write
// them. Outcome events are the one thing the API writes, into their own
// append-only table.

// rolloutRow is a rollouts row.
type rolloutRow struct {
	ID          string
	Principal   string
	Flag        string
	Variant     string
	Control     string
	Status      string
	Reason      string
	Spec        json.RawMessage
	CurrentStep int
	Percent     int
	FlagVersion *int64
	Evidence    json.RawMessage
	WorkflowID  string
	RunID       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	FinishedAt  *time.Time
}

const rolloutColumns = `id, principal, flag, variant, control, status, reason, spec, current_step, percent, flag_version,
    evidence, workflow_id, run_id, created_at, updated_at, finished_at`

func scanRollout(row pgx.Row) (rolloutRow, error) {
	var r rolloutRow
	err := row.Scan(&r.ID, &r.Principal, &r.Flag, &r.Variant, &r.Control, &r.Status, &r.Reason, &r.Spec, &r.CurrentStep,
		&r.Percent, &r.FlagVersion, &r.Evidence, &r.WorkflowID, &r.RunID, &r.CreatedAt, &r.UpdatedAt, &r.FinishedAt)
	return r, err
}

// Store reads a rollout's rows and writes its outcome events.
type Store struct{ DB *pgxpool.Pool }

func (s *Store) get(ctx context.Context, id string) (rolloutRow, error) {
	r, err := scanRollout(s.DB.QueryRow(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return rolloutRow{}, fmt.Errorf("get rollout %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return rolloutRow{}, fmt.Errorf("get rollout %s: %w", id, err)
	}
	return r, nil
}

const listRollouts = `
SELECT ` + rolloutColumns + ` FROM rollouts
WHERE ($1 = '' OR principal = $1) AND ($2 = '' OR flag = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
ORDER BY created_at DESC, id DESC
LIMIT $5`

// list returns up to limit rollouts, newest first, of one principal (all
// when empty) and one flag (all when empty), after the position when set.
func (s *Store) list(ctx context.Context, principal, flag string, afterAt *time.Time, afterID string, limit int) ([]rolloutRow, error) {
	rows, err := s.DB.Query(ctx, listRollouts, principal, flag, afterAt, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rolloutRow, error) { return scanRollout(row) })
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return out, nil
}

// stepRow is a rollout_steps row.
type stepRow struct {
	Step, Attempt, Percent, HoldSeconds int
	FlagVersion                         int64
	StartedAt                           time.Time
	EndedAt                             *time.Time
	Decision                            string
	Failures, Inconclusive              int
}

const selectSteps = `
SELECT step, attempt, percent, hold_seconds, flag_version, started_at, ended_at, decision, failures, inconclusive
FROM rollout_steps WHERE rollout_id = $1 ORDER BY step`

func (s *Store) steps(ctx context.Context, id string) ([]stepRow, error) {
	rows, err := s.DB.Query(ctx, selectSteps, id)
	if err != nil {
		return nil, fmt.Errorf("read steps of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stepRow, error) {
		var r stepRow
		err := row.Scan(&r.Step, &r.Attempt, &r.Percent, &r.HoldSeconds, &r.FlagVersion, &r.StartedAt, &r.EndedAt,
			&r.Decision, &r.Failures, &r.Inconclusive)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of %s: %w", id, err)
	}
	return out, nil
}

// checkRow is a rollout_checks row.
type checkRow struct {
	Seq, Step, Attempt, Total int
	At                        time.Time
	Phase, Verdict, Decision  string
	Result, Evidence          json.RawMessage
}

// ChecksPerStep bounds the checks a rollout's detail shows per step: the
// newest ones, with the step's total beside them. A rollout checking every
// few seconds for a week would otherwise answer with hundreds of thousands
// of checks in one body (review M10); every check stays in rollout_checks.
const ChecksPerStep = 50

const selectChecks = `
SELECT seq, step, attempt, total, at, phase, verdict, decision, result, evidence FROM (
    SELECT seq, step, attempt, at, phase, verdict, decision, result, evidence,
           row_number() OVER (PARTITION BY step ORDER BY seq DESC) AS newest,
           count(*) OVER (PARTITION BY step) AS total
    FROM rollout_checks WHERE rollout_id = $1) c
WHERE newest <= $2 ORDER BY seq`

func (s *Store) checks(ctx context.Context, id string) ([]checkRow, error) {
	rows, err := s.DB.Query(ctx, selectChecks, id, ChecksPerStep)
	if err != nil {
		return nil, fmt.Errorf("read checks of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (checkRow, error) {
		var r checkRow
		err := row.Scan(&r.Seq, &r.Step, &r.Attempt, &r.Total, &r.At, &r.Phase, &r.Verdict, &r.Decision, &r.Result, &r.Evidence)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read checks of %s: %w", id, err)
	}
	return out, nil
}

const selectActive = `SELECT id, principal FROM rollouts WHERE flag = $1 AND status IN ('running', 'paused') LIMIT 1`

// active returns the id and owner of the flag's running or paused rollout,
// if any.
func (s *Store) active(ctx context.Context, flag string) (id, principal string, err error) {
	err = s.DB.QueryRow(ctx, selectActive, flag).Scan(&id, &principal)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("look up active rollout of %s: %w", flag, err)
	}
	return id, principal, nil
}

const insertEvents = `
INSERT INTO rollout_events (rollout_id, targeting_key, variant, error, latency_ms)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::boolean[], $5::double precision[])`

// insertEvents stores a batch of outcome events in one statement; they all
// get the same arrival time.
func (s *Store) insertEvents(ctx context.Context, id string, events []event) error {
	keys := make([]string, len(events))
	variants := make([]string, len(events))
	errs := make([]bool, len(events))
	latencies := make([]*float64, len(events))
	for i, e := range events {
		keys[i], variants[i], errs[i], latencies[i] = e.TargetingKey, e.Variant, *e.Error, e.LatencyMs
	}
	if _, err := s.DB.Exec(ctx, insertEvents, id, keys, variants, errs, latencies); err != nil {
		return fmt.Errorf("store events of %s: %w", id, err)
	}
	return nil
}
