// Package store keeps feature flags in Postgres, the platform's source of
// truth: one row per flag with its flagd definition, version and ETag, and
// an audit row for every change (who, when, before, after, why).
//
// Every write runs in one transaction that bumps the global flag revision,
// checks the caller's precondition against the locked current row, writes
// the flag and its audit row, and sends NOTIFY flags_changed, so a Watcher in
// any process reloads within milliseconds of the commit. Bumping the
// revision first serialises flag writes: flags change rarely, and a single
// order of changes makes versions unique, monotonic and comparable.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/internal/database"
)

// Channel is the Postgres NOTIFY channel of flag changes. The payload is
// "key:version".
const Channel = "flags_changed"

// Errors of the store. Callers map them to their own vocabulary (HTTP
// statuses, rollout decisions).
var (
	// ErrNotFound: the flag does not exist.
	ErrNotFound = errors.New("flag not found")
	// ErrPreconditionFailed: the flag's version or existence is not what the
	// caller required.
	ErrPreconditionFailed = errors.New("flag precondition failed")
)

// Actions recorded in the audit.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Record is a stored flag.
type Record struct {
	Key       string
	Def       flags.Flag
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string
}

// ETag is the record's HTTP entity tag: its version, quoted.
func (r Record) ETag() string { return ETag(r.Version) }

// ETag formats version as a strong entity tag.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// Cond is a write's precondition, checked against the locked current row.
type Cond struct {
	// IfMatch lists the versions the flag may have; empty means any.
	IfMatch []int64
	// MustExist requires the flag to exist (If-Match: *).
	MustExist bool
	// MustNotExist requires the flag not to exist (If-None-Match: *).
	MustNotExist bool
}

func (c Cond) check(cur *Record) error {
	switch {
	case cur == nil && (c.MustExist || len(c.IfMatch) > 0):
		return ErrPreconditionFailed
	case cur != nil && c.MustNotExist:
		return ErrPreconditionFailed
	case cur != nil && len(c.IfMatch) > 0 && !slices.Contains(c.IfMatch, cur.Version):
		return ErrPreconditionFailed
	}
	return nil
}

// Change says who makes a change and why; both land in the audit.
type Change struct {
	// Actor is "<principal>/<key id>", "rollout:<id>" or "cli".
	Actor string
	// Reason is free text, possibly empty.
	Reason string
}

// Outcome says what a write did.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Deleted   Outcome = "deleted"
	Unchanged Outcome = "unchanged" // the new definition equals the current one: nothing written
)

// Store reads and writes flags.
type Store struct {
	DB *pgxpool.Pool
}

const recordColumns = `key, definition, version, created_at, updated_at, updated_by`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var def []byte
	if err := row.Scan(&r.Key, &def, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.UpdatedBy); err != nil {
		return Record{}, err
	}
	if err := json.Unmarshal(def, &r.Def); err != nil {
		return Record{}, fmt.Errorf("decode flag %s: %w", r.Key, err)
	}
	r.Def.Key = r.Key
	return r, nil
}

// Get returns the flag key.
func (s *Store) Get(ctx context.Context, key string) (Record, error) {
	r, err := scanRecord(s.DB.QueryRow(ctx, `SELECT `+recordColumns+` FROM flags WHERE key = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("get flag %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get flag %s: %w", key, err)
	}
	return r, nil
}

// Position is a keyset position in created_at DESC, key DESC order.
type Position struct {
	CreatedAt time.Time
	Key       string
}

const listFlags = `
SELECT ` + recordColumns + ` FROM flags
WHERE ($1::timestamptz IS NULL OR (created_at, key) < ($1, $2))
ORDER BY created_at DESC, key DESC
LIMIT $3`

// List returns up to limit flags, newest first, after position (when not nil).
func (s *Store) List(ctx context.Context, after *Position, limit int) ([]Record, error) {
	var at *time.Time
	var key string
	if after != nil {
		at, key = &after.CreatedAt, after.Key
	}
	rows, err := s.DB.Query(ctx, listFlags, at, key, limit)
	if err != nil {
		return nil, fmt.Errorf("list flags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) { return scanRecord(row) })
	if err != nil {
		return nil, fmt.Errorf("list flags: %w", err)
	}
	return out, nil
}

// All returns every flag ordered by key.
func (s *Store) All(ctx context.Context) ([]Record, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+recordColumns+` FROM flags ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("read flags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) { return scanRecord(row) })
	if err != nil {
		return nil, fmt.Errorf("read flags: %w", err)
	}
	return out, nil
}

// Put creates or replaces flag key with def, which must be valid
// (flags.Validate; a *flags.ValidationError otherwise).
func (s *Store) Put(ctx context.Context, key string, def flags.Flag, cond Cond, ch Change) (Record, Outcome, error) {
	return s.Update(ctx, key, cond, ch, func(*Record) (*flags.Flag, error) { return &def, nil })
}

// Update rewrites flag key with what next returns for the locked current
// record (nil when the flag does not exist): a definition to write, or nil
// to delete. An error from next aborts the write and is returned as is, so
// a change computed from the current definition (a merge patch, a rollout
// split) can never be lost to a concurrent write.
func (s *Store) Update(ctx context.Context, key string, cond Cond, ch Change, next func(cur *Record) (*flags.Flag, error)) (Record, Outcome, error) {
	var out Record
	var outcome Outcome
	err := database.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		out, outcome, err = write(ctx, tx, key, cond, ch, next)
		return err
	})
	if errors.Is(err, errUnchanged) {
		return out, Unchanged, nil
	}
	if err != nil {
		return Record{}, "", fmt.Errorf("write flag %s: %w", key, err)
	}
	return out, outcome, nil
}

// Delete removes flag key and returns the revision of the deletion.
func (s *Store) Delete(ctx context.Context, key string, cond Cond, ch Change) (int64, error) {
	rec, _, err := s.Update(ctx, key, cond, ch, func(cur *Record) (*flags.Flag, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		return nil, nil
	})
	return rec.Version, err
}

// errUnchanged rolls back a write that would change nothing, so that the
// revision is not consumed and no audit row says something changed.
var errUnchanged = errors.New("unchanged")

const (
	bumpRevision = `UPDATE flag_revision SET revision = revision + 1 RETURNING revision`
	lockFlag     = `SELECT ` + recordColumns + ` FROM flags WHERE key = $1 FOR UPDATE`
	upsertFlag   = `
INSERT INTO flags (key, definition, version, updated_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO UPDATE SET definition = EXCLUDED.definition, version = EXCLUDED.version,
    updated_by = EXCLUDED.updated_by, updated_at = clock_timestamp()
RETURNING ` + recordColumns
	deleteFlag  = `DELETE FROM flags WHERE key = $1`
	insertAudit = `
INSERT INTO flag_audit (key, version, action, actor, before, after, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7)`
	notifyChange = `SELECT pg_notify('` + Channel + `', $1)`
)

// write is one flag write inside tx.
func write(ctx context.Context, tx pgx.Tx, key string, cond Cond, ch Change, next func(*Record) (*flags.Flag, error)) (Record, Outcome, error) {
	var rev int64
	if err := tx.QueryRow(ctx, bumpRevision).Scan(&rev); err != nil {
		return Record{}, "", fmt.Errorf("bump flag revision: %w", err)
	}
	cur, err := lock(ctx, tx, key)
	if err != nil {
		return Record{}, "", err
	}
	if err := cond.check(cur); err != nil {
		return Record{}, "", err
	}
	def, err := next(cur)
	if err != nil {
		return Record{}, "", err
	}
	if def == nil {
		return remove(ctx, tx, cur, rev, ch)
	}
	if err := flags.Validate(key, *def); err != nil {
		return Record{}, "", err
	}
	after, err := canonical(*def)
	if err != nil {
		return Record{}, "", err
	}
	var before []byte
	outcome := Created
	if cur != nil {
		outcome = Updated
		if before, err = canonical(cur.Def); err != nil {
			return Record{}, "", err
		}
		if bytes.Equal(before, after) {
			return *cur, Unchanged, errUnchanged
		}
	}
	rec, err := scanRecord(tx.QueryRow(ctx, upsertFlag, key, after, rev, ch.Actor))
	if err != nil {
		return Record{}, "", fmt.Errorf("upsert flag: %w", err)
	}
	action := ActionUpdate
	if outcome == Created {
		action = ActionCreate
	}
	if err := audit(ctx, tx, key, rev, action, ch, before, after); err != nil {
		return Record{}, "", err
	}
	return rec, outcome, nil
}

func lock(ctx context.Context, tx pgx.Tx, key string) (*Record, error) {
	r, err := scanRecord(tx.QueryRow(ctx, lockFlag, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock flag: %w", err)
	}
	return &r, nil
}

func remove(ctx context.Context, tx pgx.Tx, cur *Record, rev int64, ch Change) (Record, Outcome, error) {
	if cur == nil {
		return Record{}, "", ErrNotFound
	}
	before, err := canonical(cur.Def)
	if err != nil {
		return Record{}, "", err
	}
	if _, err := tx.Exec(ctx, deleteFlag, cur.Key); err != nil {
		return Record{}, "", fmt.Errorf("delete flag: %w", err)
	}
	if err := audit(ctx, tx, cur.Key, rev, ActionDelete, ch, before, nil); err != nil {
		return Record{}, "", err
	}
	gone := *cur
	gone.Version = rev
	return gone, Deleted, nil
}

// audit records the change and notifies listeners; both take effect only if
// the transaction commits.
func audit(ctx context.Context, tx pgx.Tx, key string, version int64, action string, ch Change, before, after []byte) error {
	if _, err := tx.Exec(ctx, insertAudit, key, version, action, ch.Actor, nullJSON(before), nullJSON(after), ch.Reason); err != nil {
		return fmt.Errorf("audit flag change: %w", err)
	}
	if _, err := tx.Exec(ctx, notifyChange, key+":"+strconv.FormatInt(version, 10)); err != nil {
		return fmt.Errorf("notify flag change: %w", err)
	}
	return nil
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// canonical encodes a definition in one spelling: targeting and variants
// re-encoded with sorted keys, so that equal definitions compare equal.
func canonical(def flags.Flag) ([]byte, error) {
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("encode flag %s: %w", def.Key, err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("encode flag %s: %w", def.Key, err)
	}
	return json.Marshal(v)
}

// Definition returns def as the canonical JSON the store keeps.
func Definition(def flags.Flag) ([]byte, error) { return canonical(def) }

// Import creates or replaces every flag of defs in one transaction, so a
// file is applied whole or not at all. Flags not in defs are kept. It
// returns how many flags changed.
func (s *Store) Import(ctx context.Context, defs map[string]flags.Flag, ch Change) (int, error) {
	keys := make([]string, 0, len(defs))
	for k := range defs {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one lock order for every importer
	changed := 0
	err := database.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		changed = 0
		for _, key := range keys {
			def := defs[key]
			_, _, err := write(ctx, tx, key, Cond{}, ch, func(*Record) (*flags.Flag, error) { return &def, nil })
			switch {
			case errors.Is(err, errUnchanged):
			case err != nil:
				return fmt.Errorf("import flag %s: %w", key, err)
			default:
				changed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// AuditEntry is one row of a flag's audit trail.
type AuditEntry struct {
	ID      int64
	Key     string
	Version int64
	Action  string
	Actor   string
	At      time.Time
	Before  json.RawMessage
	After   json.RawMessage
	Reason  string
}

const listAudit = `
SELECT id, key, version, action, actor, at, before, after, reason
FROM flag_audit WHERE key = $1 ORDER BY id DESC LIMIT $2`

// Audit returns the newest limit audit entries of flag key.
func (s *Store) Audit(ctx context.Context, key string, limit int) ([]AuditEntry, error) {
	rows, err := s.DB.Query(ctx, listAudit, key, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit of %s: %w", key, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := row.Scan(&e.ID, &e.Key, &e.Version, &e.Action, &e.Actor, &e.At, &e.Before, &e.After, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit of %s: %w", key, err)
	}
	return out, nil
}
