package job

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/jobs/records"
	"github.com/acme/platform/workflows/job"
)

// Uploads processes uploaded files, stored as Postgres large objects.
type Uploads struct {
	DB *pgxpool.Pool
}

// Error types of upload attempts, as shown in the Temporal UI.
const (
	UploadMissingErrorType = "UploadMissing"
	UploadCorruptErrorType = "UploadCorrupt"
	UploadInvalidErrorType = "UploadInvalid"
)

// readBuffer is how much of a large object one read fetches.
const readBuffer = 256 << 10

// storedUpload is an uploads row.
type storedUpload struct {
	id, principal, sha256, contentType string
	oid                                uint32
	size                               int64
}

const uploadByID = `SELECT principal, oid, size, sha256, content_type FROM uploads WHERE id = $1`

// Process verifies the upload's checksum, detects its type and, for CSV and
// NDJSON, validates and counts its records in one streaming pass. A corrupt
// or mismatching file fails without retry; its summary is kept as the job's
// result either way.
func (a *Uploads) Process(ctx context.Context, in job.AttemptInput) (job.AttemptResult, error) {
	var want job.UploadInput
	if err := loadInput(ctx, a.DB, in, &want); err != nil {
		return job.AttemptResult{}, err
	}
	up, err := a.load(ctx, want.UploadID, in.Principal)
	if err != nil {
		return job.AttemptResult{}, err
	}
	s, err := heartbeating(ctx, func(ctx context.Context) (scan, error) { return a.scan(ctx, up) })
	if err != nil {
		return job.AttemptResult{}, err
	}
	result, err := json.Marshal(s.summary)
	if err != nil {
		return job.AttemptResult{}, err
	}
	if err := s.problem(up); err != nil {
		return job.AttemptResult{}, notRetryable(err.errType, err.message, job.AttemptFailure{Result: result})
	}
	return job.AttemptResult{Result: result}, nil
}

func (a *Uploads) load(ctx context.Context, id, principal string) (storedUpload, error) {
	up := storedUpload{id: id}
	err := a.DB.QueryRow(ctx, uploadByID, id).Scan(&up.principal, &up.oid, &up.size, &up.sha256, &up.contentType)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && up.principal != principal) {
		// Another principal's upload does not exist for this job.
		return up, notRetryable(UploadMissingErrorType, fmt.Sprintf("upload %s does not exist", id), job.AttemptFailure{})
	}
	if err != nil {
		return up, fmt.Errorf("load upload %s: %w", id, err)
	}
	return up, nil
}

// UploadSummary is the result of an upload.process job: the stored file's
// facts, its detected type and what its records hold.
type UploadSummary struct {
	UploadID     string `json:"upload_id"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	ContentType  string `json:"content_type"`
	DetectedType string `json:"detected_type"`
	records.Summary
}

// scan is what one pass over a stored file learned.
type scan struct {
	summary  UploadSummary
	mismatch error // declared and detected types disagree
}

// scan streams the large object once: every byte through the hash, the
// first bytes through type detection, the records through validation.
func (a *Uploads) scan(ctx context.Context, up storedUpload) (scan, error) {
	s := scan{summary: UploadSummary{UploadID: up.id, ContentType: up.contentType}}
	err := pgx.BeginTxFunc(ctx, a.DB, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		los := tx.LargeObjects()
		lo, err := los.Open(ctx, up.oid, pgx.LargeObjectModeRead)
		if err != nil {
			return err
		}
		defer lo.Close()
		hash := sha256.New()
		counted := &countingWriter{}
		br := bufio.NewReaderSize(io.TeeReader(lo, io.MultiWriter(hash, counted)), readBuffer)
		head, _ := br.Peek(records.SniffLen) // short files give what there is
		detected, format, mismatch := records.Detect(head, up.contentType)
		s.summary.DetectedType, s.mismatch = detected, mismatch
		if mismatch != nil {
			format = records.Other
		}
		if s.summary.Summary, err = records.Scan(br, format); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, br); err != nil { // the rest, for the checksum
			return err
		}
		s.summary.Size, s.summary.SHA256 = counted.n, hex.EncodeToString(hash.Sum(nil))
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object: the large object is gone
		return s, notRetryable(UploadCorruptErrorType, fmt.Sprintf("upload %s: the stored file is missing", up.id), job.AttemptFailure{})
	}
	if err != nil {
		return s, fmt.Errorf("read upload %s: %w", up.id, err)
	}
	return s, nil
}

// uploadProblem is why a file fails processing.
type uploadProblem struct{ errType, message string }

// problem judges the scan: a checksum or size that differs from what was
// stored at upload means corruption; then a type mismatch; then the first
// invalid record.
func (s scan) problem(up storedUpload) *uploadProblem {
	sum := s.summary
	switch {
	case sum.SHA256 != up.sha256 || sum.Size != up.size:
		return &uploadProblem{UploadCorruptErrorType, fmt.Sprintf(
			"upload %s is corrupt: stored with sha256 %s (%d bytes) but its content hashes to %s (%d bytes)",
			up.id, up.sha256, up.size, sum.SHA256, sum.Size)}
	case s.mismatch != nil:
		return &uploadProblem{UploadInvalidErrorType, fmt.Sprintf("upload %s: %v", up.id, s.mismatch)}
	case sum.FirstError != nil:
		return &uploadProblem{UploadInvalidErrorType, fmt.Sprintf("upload %s is not valid %s: %v", up.id, sum.Format, sum.FirstError)}
	}
	return nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
