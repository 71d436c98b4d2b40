package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/problem"
)

// Store keeps uploads: the bytes as a large object, the facts in a row.
type Store struct {
	DB *pgxpool.Pool
}

// Upload is a stored upload.
type Upload struct {
	ID          string
	Principal   string
	Size        int64
	SHA256      string
	ContentType string
	CreatedAt   time.Time
}

// NewUpload is what Create needs besides the body: its size and SHA-256
// were measured as it was received.
type NewUpload struct {
	ID          string
	Principal   string
	ContentType string
	Size        int64
	SHA256      string
}

// chunk is how much one large-object write sends.
const chunk = 256 << 10

const insertUpload = `
INSERT INTO uploads (id, principal, oid, size, sha256, content_type)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO NOTHING
RETURNING created_at`

// Create copies body (received already: a local file, not the client's
// socket, so the transaction is short) into a new large object and records
// it, in one transaction: an interrupted write leaves nothing behind. An id
// that exists already (derived from a reused Idempotency-Key) returns the
// existing upload when its content is the same, and is a conflict otherwise.
func (s *Store) Create(ctx context.Context, in NewUpload, body io.Reader) (Upload, error) {
	u := Upload{ID: in.ID, Principal: in.Principal, ContentType: in.ContentType, Size: in.Size, SHA256: in.SHA256}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		oid, err := writeObject(ctx, tx, body, in.Size)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, insertUpload, u.ID, u.Principal, oid, u.Size, u.SHA256, u.ContentType).Scan(&u.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return errExists // rolls back, dropping the new object
		}
		return err
	})
	if errors.Is(err, errExists) {
		return s.same(ctx, u)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("store upload %s: %w", in.ID, err)
	}
	return u, nil
}

var errExists = errors.New("upload id exists")

// writeObject copies body into a new large object in chunks and checks
// that it had size bytes.
func writeObject(ctx context.Context, tx pgx.Tx, body io.Reader, size int64) (uint32, error) {
	los := tx.LargeObjects()
	oid, err := los.Create(ctx, 0)
	if err != nil {
		return 0, err
	}
	lo, err := los.Open(ctx, oid, pgx.LargeObjectModeWrite)
	if err != nil {
		return 0, err
	}
	defer lo.Close()
	n, err := io.CopyBuffer(lo, body, make([]byte, chunk))
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("wrote %d bytes of a %d-byte upload", n, size)
	}
	return oid, nil
}

// same returns the stored upload with u's id when it has u's principal and
// content.
func (s *Store) same(ctx context.Context, u Upload) (Upload, error) {
	old, err := s.get(ctx, u.ID)
	if err != nil {
		return Upload{}, err
	}
	if old.Principal != u.Principal || old.SHA256 != u.SHA256 || old.Size != u.Size || old.ContentType != u.ContentType {
		return Upload{}, fmt.Errorf("upload %s exists with other content: %w", u.ID, problem.ErrConflict)
	}
	return old, nil
}

func (s *Store) get(ctx context.Context, id string) (Upload, error) {
	u := Upload{ID: id}
	err := s.DB.QueryRow(ctx, `SELECT principal, size, sha256, content_type, created_at FROM uploads WHERE id = $1`, id).
		Scan(&u.Principal, &u.Size, &u.SHA256, &u.ContentType, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, fmt.Errorf("get upload %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("get upload %s: %w", id, err)
	}
	return u, nil
}

// UploadExists reports whether upload id exists and belongs to principal.
func (s *Store) UploadExists(ctx context.Context, id, principal string) (bool, error) {
	var ok bool
	err := s.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM uploads WHERE id = $1 AND principal = $2)`, id, principal).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up upload %s: %w", id, err)
	}
	return ok, nil
}
