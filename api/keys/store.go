// Package keys is the API keys resource: the store of hashed keys, the
// /v1/keys handlers, and the functions the CLI twin uses.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/database"
)

// Key is a stored API key, without its secret.
type Key struct {
	ID         string
	Principal  string
	Name       string
	Scopes     []string
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// NewKey is what Create needs.
type NewKey struct {
	ID        string
	Principal string
	Name      string
	Scopes    []string
	CreatedBy string
	ExpiresAt *time.Time
	// Secret, when set, is used instead of a random one (platform dev's
	// stored admin key); it must start with plk_.
	Secret string
}

// Store keeps API keys in Postgres.
type Store struct {
	DB *pgxpool.Pool
	// Reads, when set, sends GET and list reads to a replica that is current
	// enough for the caller; nil reads from DB.
	Reads *database.Router
}

var _ auth.KeyLookup = (*Store)(nil)

// NewSecret returns a fresh key secret: plk_ and 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return auth.KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

const insertKey = `
INSERT INTO api_keys (id, principal, name, scopes, hash, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), $7)
ON CONFLICT DO NOTHING
RETURNING created_at`

// Create stores a key and returns it with its secret, the only time the
// secret exists outside the caller. A key whose id or secret already exists
// is a conflict: ids derived from an Idempotency-Key collide here.
func (s *Store) Create(ctx context.Context, in NewKey) (Key, string, error) {
	secret := in.Secret
	if secret == "" {
		secret = NewSecret()
	}
	k := Key{ID: in.ID, Principal: in.Principal, Name: in.Name, Scopes: in.Scopes, CreatedBy: in.CreatedBy, ExpiresAt: in.ExpiresAt}
	err := s.DB.QueryRow(ctx, insertKey, in.ID, in.Principal, in.Name, in.Scopes, auth.Hash(secret), in.CreatedBy, in.ExpiresAt).Scan(&k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, "", fmt.Errorf("create key %s: %w", in.ID, problem.ErrConflict)
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("create key %s: %w", in.ID, err)
	}
	return k, secret, nil
}

const keyColumns = `id, principal, name, scopes, COALESCE(created_by, ''), created_at, last_used_at, expires_at, revoked_at`

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	err := row.Scan(&k.ID, &k.Principal, &k.Name, &k.Scopes, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.ExpiresAt, &k.RevokedAt)
	return k, err
}

// Get returns the key id.
func (s *Store) Get(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(s.Reads.For(ctx, s.DB).QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("get key %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("get key %s: %w", id, err)
	}
	return k, nil
}

// revokeTree revokes a key and every key minted from it, down the
// created_by chain. UNION, not UNION ALL, so a cycle (impossible through the
// API, a key's creator being older) cannot loop.
const revokeTree = `
WITH RECURSIVE tree (id) AS (
    SELECT id FROM api_keys WHERE id = $1
    UNION
    SELECT k.id FROM api_keys k JOIN tree t ON k.created_by = t.id
)
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, clock_timestamp())
WHERE id IN (SELECT id FROM tree)
RETURNING id`

// Revoke marks key id revoked, with every key it minted, and their keys in
// turn: a key leaked or retired takes what it made with it. Revoking twice
// keeps the first time, and catches keys minted meanwhile (a revoked key
// works on other API processes for up to the auth cache TTL). It returns
// the ids of every key in the tree.
func (s *Store) Revoke(ctx context.Context, id string) ([]string, error) {
	rows, err := s.DB.Query(ctx, revokeTree, id)
	if err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return ids, nil
}

const lookupKey = `
SELECT id, principal, scopes, hash, expires_at, revoked_at, last_used_at
FROM api_keys WHERE hash = $1`

// LookupKey finds a key by its hash and notes its use, at most once a minute
// per key so that busy keys do not turn every request into a write.
func (s *Store) LookupKey(ctx context.Context, hash []byte) (auth.Key, error) {
	var k auth.Key
	var lastUsed *time.Time
	err := s.DB.QueryRow(ctx, lookupKey, hash).Scan(&k.ID, &k.Principal, &k.Scopes, &k.Hash, &k.ExpiresAt, &k.RevokedAt, &lastUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Key{}, auth.ErrUnknownKey
	}
	if err != nil {
		return auth.Key{}, fmt.Errorf("look up key: %w", err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > time.Minute {
		// Best effort: a failed touch must not fail the request.
		_, _ = s.DB.Exec(ctx, `UPDATE api_keys SET last_used_at = clock_timestamp() WHERE id = $1`, k.ID)
	}
	return k, nil
}

// ListFilter selects keys: by principal when set, and when Within is not
// nil, only keys none of whose scopes fall outside it.
type ListFilter struct {
	Principal string
	Within    []string
}

// List returns one page of keys, newest first, with one extra row so the
// caller can tell whether more follow. The keyset condition comes from
// page.Request.Where; with a principal the planner uses
// api_keys_principal_page, otherwise api_keys_page.
func (s *Store) List(ctx context.Context, f ListFilter, req page.Request) ([]Key, error) {
	var conds []string
	args := []any{req.FetchLimit()}
	if f.Principal != "" {
		args = append(args, f.Principal)
		conds = append(conds, fmt.Sprintf("principal = $%d", len(args)))
	}
	if f.Within != nil {
		args = append(args, f.Within)
		conds = append(conds, fmt.Sprintf("scopes <@ $%d", len(args)))
	}
	where, after := req.Where("created_at", "id", len(args)+1)
	query := `SELECT ` + keyColumns + ` FROM api_keys WHERE ` + strings.Join(append(conds, where), " AND ") +
		` ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := s.Reads.For(ctx, s.DB).Query(ctx, query, append(args, after...)...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) { return scanKey(row) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}
