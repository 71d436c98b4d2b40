package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows/job"
)

func TestJobs_CreateAndRecordAreIdempotent(t *testing.T) {
	db, _ := testenv.Postgres(t)
	a := &Jobs{DB: db}
	ctx := context.Background()
	in := job.CreateInput{Job: job.Input{ID: "job_1", Principal: "acme", Type: jobs.TypeWebhook,
		Input: json.RawMessage(`{"url":"https://example.com"}`), Retry: retry.Defaults()}, WorkflowID: "job_1", RunID: "run"}
	first, err := a.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Create(ctx, in)
	if err != nil || again.CreatedAt != first.CreatedAt || again.Status != jobs.Queued || again.Retry != retry.Defaults() {
		t.Fatalf("second create = %+v, %v (first %+v)", again, err, first)
	}

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	running := job.RecordInput{ID: "job_1", Status: jobs.Running, Attempts: 1, At: t0, Started: true}
	failed := job.AttemptRecord{Attempt: 1, Status: job.AttemptFailed, Error: "503", Retryable: true,
		StartedAt: t0, FinishedAt: t0.Add(time.Second), Exchange: &job.HTTPExchange{Status: 503, LatencyMS: 12, Body: "busy"}}
	retrying := job.RecordInput{ID: "job_1", Status: jobs.Retrying, Attempts: 1, At: t0.Add(time.Second),
		LastError: &jobs.LastError{Message: "503", Attempt: 1, At: t0.Add(time.Second), Retryable: true}, Attempt: &failed}
	// A repeated transition writes the same values; started_at keeps its
	// first value even when a later transition claims to start.
	later := running
	later.At = t0.Add(time.Hour)
	for _, rec := range []job.RecordInput{running, retrying, retrying, later} {
		if err := a.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	var status string
	var attempts, rows int
	var started time.Time
	var lastError jobs.LastError
	err = db.QueryRow(ctx, `SELECT status, attempts, started_at, last_error, (SELECT count(*) FROM job_attempts WHERE job_id = 'job_1') FROM jobs WHERE id = 'job_1'`).
		Scan(&status, &attempts, &started, &lastError, &rows)
	if err != nil || status != jobs.Running || attempts != 1 || !started.Equal(t0) || rows != 1 || lastError.Message != "503" {
		t.Errorf("row: %s %d %s %+v, %d attempt rows, %v", status, attempts, started, lastError, rows, err)
	}
	err = a.Record(ctx, job.RecordInput{ID: "job_nope", Status: jobs.Running, At: t0})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Errorf("recording a missing job = %v, want a non-retryable error", err)
	}
}

// storeUpload writes an upload the way the API does: a large object and a row.
func storeUpload(t *testing.T, db *pgxpool.Pool, id, principal, contentType string, content []byte) {
	t.Helper()
	sum := sha256.Sum256(content)
	err := pgx.BeginFunc(context.Background(), db, func(tx pgx.Tx) error {
		los := tx.LargeObjects()
		oid, err := los.Create(context.Background(), 0)
		if err != nil {
			return err
		}
		lo, err := los.Open(context.Background(), oid, pgx.LargeObjectModeWrite)
		if err != nil {
			return err
		}
		if _, err := lo.Write(content); err != nil {
			return err
		}
		_, err = tx.Exec(context.Background(), `INSERT INTO uploads (id, principal, oid, size, sha256, content_type) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, principal, oid, len(content), hex.EncodeToString(sum[:]), contentType)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putJob writes job id's row with input, as the workflow's create does
// before any attempt, replacing the input of a row written before.
func putJob(t *testing.T, db *pgxpool.Pool, id, principal string, input json.RawMessage) {
	t.Helper()
	_, err := db.Exec(context.Background(), `INSERT INTO jobs (id, principal, type, status, input, retry, workflow_id, run_id)
VALUES ($1, $2, 'webhook', 'queued', $3, $4, $1, 'run') ON CONFLICT (id) DO UPDATE SET principal = $2, input = $3`,
		id, principal, input, retry.Defaults())
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadInput_ReadsOnlyTheOwnersRow(t *testing.T) {
	db, _ := testenv.Postgres(t)
	putJob(t, db, "job_1", "acme", json.RawMessage(`{"upload_id":"upl_1"}`))
	var in job.UploadInput
	if err := loadInput(t.Context(), db, job.AttemptInput{JobID: "job_1", Principal: "acme", Attempt: 1}, &in); err != nil || in.UploadID != "upl_1" {
		t.Fatalf("own job: %+v, %v", in, err)
	}
	err := loadInput(t.Context(), db, job.AttemptInput{JobID: "job_1", Principal: "beta", Attempt: 1}, &in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != "JobRowMissing" {
		t.Errorf("another principal's job: %v, want a non-retryable JobRowMissing", err)
	}
}

func process(t *testing.T, a *Uploads, principal, uploadID string) (UploadSummary, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.Process)
	input, _ := json.Marshal(job.UploadInput{UploadID: uploadID})
	putJob(t, a.DB, "job_1", principal, input)
	val, err := env.ExecuteActivity(a.Process, job.AttemptInput{JobID: "job_1", Principal: principal, Attempt: 1})
	var summary UploadSummary
	if err != nil {
		return summary, err
	}
	var res job.AttemptResult
	if err := val.Get(&res); err != nil {
		return summary, err
	}
	return summary, json.Unmarshal(res.Result, &summary)
}

func TestUploads_ProcessVerifiesDetectsAndCounts(t *testing.T) {
	db, _ := testenv.Postgres(t)
	a := &Uploads{DB: db}
	big := []byte("id,n\n")
	for i := 0; i < 20000; i++ { // several reads of the large object
		big = append(big, []byte("12345,67890\n")...)
	}
	storeUpload(t, db, "upl_big", "acme", "text/csv", big)
	summary, err := process(t, a, "acme", "upl_big")
	if err != nil || summary.Rows != 20000 || summary.Columns != 2 || summary.Size != int64(len(big)) || summary.DetectedType != "text/plain; charset=utf-8" {
		t.Fatalf("summary %+v, %v", summary, err)
	}

	storeUpload(t, db, "upl_bad", "acme", "text/csv", []byte("a,b\n1\n"))
	if _, err := db.Exec(context.Background(), `UPDATE uploads SET sha256 = 'x' || substr(sha256, 2) WHERE id = 'upl_bad'`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ principal, id, errType string }{
		{"acme", "upl_bad", UploadCorruptErrorType}, // the checksum is judged before the records
		{"beta", "upl_big", UploadMissingErrorType}, // another principal's upload
		{"acme", "upl_none", UploadMissingErrorType},
	} {
		_, err := process(t, a, c.principal, c.id)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != c.errType {
			t.Errorf("%s as %s: %v, want %s", c.id, c.principal, err, c.errType)
		}
	}
}

func TestHourRange_WidensToWholeUTCHours(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	from, to := HourRange(at("2026-01-01T10:30:00+02:00"), at("2026-01-01T11:00:00Z"))
	if !from.Equal(at("2026-01-01T08:00:00Z")) || !to.Equal(at("2026-01-01T11:00:00Z")) {
		t.Errorf("HourRange = %s..%s", from, to)
	}
	from, to = HourRange(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:01Z"))
	if !from.Equal(at("2026-01-01T10:00:00Z")) || !to.Equal(at("2026-01-01T11:00:00Z")) {
		t.Errorf("HourRange = %s..%s", from, to)
	}
}
