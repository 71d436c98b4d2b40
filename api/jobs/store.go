package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/jobrow"
)

// Store reads jobs. It never writes them: a job's row has one writer, its
// workflow.
type Store struct {
	DB *pgxpool.Pool
	// Reads, when set, sends GET and list reads to a replica that is current
	// enough for the caller; nil reads from DB.
	Reads *database.Router
}

// Get returns job id.
func (s *Store) Get(ctx context.Context, id string) (jobs.Job, error) {
	j, err := jobrow.Scan(s.Reads.For(ctx, s.DB).QueryRow(ctx, `SELECT `+jobrow.Columns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Job{}, fmt.Errorf("get job %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return jobs.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// ListFilter selects jobs; empty fields select all.
type ListFilter struct {
	Principal string
	Status    string
	Type      string
}

// listJobs is completed with the filters' conditions, each an equality on a
// column that leads one of the jobs_*_page indexes, then the keyset
// condition; the order matches those indexes.
const listJobs = `
SELECT ` + jobrow.Columns + ` FROM jobs
WHERE %s
ORDER BY created_at DESC, id DESC
LIMIT $1`

// List returns up to req's fetch limit of jobs matching f, newest first,
// after req's cursor.
func (s *Store) List(ctx context.Context, f ListFilter, req page.Request) ([]jobs.Job, error) {
	args := []any{req.FetchLimit()}
	var conds []string
	for _, c := range []struct{ col, val string }{{"principal", f.Principal}, {"status", f.Status}, {"type", f.Type}} {
		if c.val != "" {
			args = append(args, c.val)
			conds = append(conds, c.col+" = $"+strconv.Itoa(len(args)))
		}
	}
	where, after := req.Where("created_at", "id", len(args)+1)
	conds = append(conds, where)
	args = append(args, after...)
	rows, err := s.Reads.For(ctx, s.DB).Query(ctx, fmt.Sprintf(listJobs, strings.Join(conds, " AND ")), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.Job, error) { return jobrow.Scan(row) })
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// Attempt is one ended attempt of a job.
type Attempt struct {
	Attempt        int
	Status         string
	Error          *string
	Retryable      bool
	StartedAt      time.Time
	FinishedAt     time.Time
	ResponseStatus *int
	LatencyMS      *float64
	ResponseBody   *string
	BodyTruncated  bool
}

const listAttempts = `
SELECT attempt, status, error, retryable, started_at, finished_at, response_status, latency_ms, response_body, body_truncated
FROM job_attempts WHERE job_id = $1
ORDER BY attempt DESC`

// Attempts returns the ended attempts of job id, newest first. A job has at
// most 100 (retry.MaxAttempts).
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	rows, err := s.Reads.For(ctx, s.DB).Query(ctx, listAttempts, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts of job %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := row.Scan(&a.Attempt, &a.Status, &a.Error, &a.Retryable, &a.StartedAt, &a.FinishedAt,
			&a.ResponseStatus, &a.LatencyMS, &a.ResponseBody, &a.BodyTruncated)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of job %s: %w", id, err)
	}
	return out, nil
}
