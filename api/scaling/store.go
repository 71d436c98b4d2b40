package scaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	sc "github.com/acme/platform/scaling"
)

// Store reads and writes policies and reads decisions and actions.
// Policies are configuration, written here like flags; decisions and
// actions have one writer each, their workflow's activities.
type Store struct {
	DB *pgxpool.Pool
}

// Get returns a target's policy.
func (s *Store) Get(ctx context.Context, target string) (sc.Policy, error) {
	var raw []byte
	var p sc.Policy
	var v int64
	var at time.Time
	err := s.DB.QueryRow(ctx, `SELECT policy, version, updated_at FROM scaling_policies WHERE target = $1`, target).Scan(&raw, &v, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("scaling policy %s: %w", target, problem.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("get scaling policy %s: %w", target, err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("decode scaling policy %s: %w", target, err)
	}
	p.Version, p.UpdatedAt = v, at.UTC()
	return p, nil
}

// List returns every policy, by target.
func (s *Store) List(ctx context.Context) ([]sc.Policy, error) {
	out := []sc.Policy{}
	for _, t := range sc.Targets {
		p, err := s.Get(ctx, t)
		if errors.Is(err, problem.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Put writes p when ifMatch (if given) names the current version; it
// returns the stored policy and whether it was created.
func (s *Store) Put(ctx context.Context, p sc.Policy, ifMatch *int64, by string) (sc.Policy, bool, error) {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return p, false, fmt.Errorf("put scaling policy: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var cur int64
	err = tx.QueryRow(ctx, `SELECT version FROM scaling_policies WHERE target = $1 FOR UPDATE`, p.Target).Scan(&cur)
	created := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !created {
		return p, false, fmt.Errorf("put scaling policy: %w", err)
	}
	if ifMatch != nil && (created || *ifMatch != cur) {
		return p, false, fmt.Errorf("scaling policy %s: %w", p.Target, problem.ErrPreconditionFailed)
	}
	p.Version = cur + 1
	p.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	raw, err := json.Marshal(p)
	if err != nil {
		return p, false, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO scaling_policies (target, policy, version, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (target) DO UPDATE SET policy = EXCLUDED.policy, version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
		p.Target, raw, p.Version, by, p.UpdatedAt)
	if err != nil {
		return p, false, fmt.Errorf("put scaling policy: %w", err)
	}
	return p, created, tx.Commit(ctx)
}

// Delete removes a target's policy when ifMatch (if given) matches.
func (s *Store) Delete(ctx context.Context, target string, ifMatch *int64) error {
	q, args := `DELETE FROM scaling_policies WHERE target = $1`, []any{target}
	if ifMatch != nil {
		q, args = q+` AND version = $2`, append(args, *ifMatch)
	}
	tag, err := s.DB.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("delete scaling policy %s: %w", target, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Get(ctx, target); err == nil {
			return fmt.Errorf("scaling policy %s: %w", target, problem.ErrPreconditionFailed)
		}
		return fmt.Errorf("scaling policy %s: %w", target, problem.ErrNotFound)
	}
	return nil
}

// pageOf runs a keyset query over a jsonb column.
func pageOf[T any](ctx context.Context, db *pgxpool.Pool, table, col string, filters map[string]string, req page.Request) ([]T, error) {
	args := []any{req.FetchLimit()}
	conds := []string{}
	for _, k := range []string{"target", "status"} {
		if v := filters[k]; v != "" {
			args = append(args, v)
			conds = append(conds, k+" = $"+strconv.Itoa(len(args)))
		}
	}
	where, after := req.Where("created_at", "id", len(args)+1)
	conds = append(conds, where)
	args = append(args, after...)
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE %s ORDER BY created_at DESC, id DESC LIMIT $1`, col, table, strings.Join(conds, " AND "))
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var raw []byte
		var v T
		if err := row.Scan(&raw); err != nil {
			return v, err
		}
		return v, json.Unmarshal(raw, &v)
	})
}

// Decisions returns a page of decisions, newest first.
func (s *Store) Decisions(ctx context.Context, target string, req page.Request) ([]sc.Decision, error) {
	return pageOf[sc.Decision](ctx, s.DB, "scaling_decisions", "decision", map[string]string{"target": target}, req)
}

// LastDecision returns a target's latest decision, if any.
func (s *Store) LastDecision(ctx context.Context, target string) (*sc.Decision, error) {
	ds, err := s.Decisions(ctx, target, page.Request{Limit: 1})
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return &ds[0], nil
}

// Actions returns a page of actions, newest first.
func (s *Store) Actions(ctx context.Context, target, status string, req page.Request) ([]sc.Action, error) {
	return pageOf[sc.Action](ctx, s.DB, "scaling_actions", "action", map[string]string{"target": target, "status": status}, req)
}

// Action returns action id.
func (s *Store) Action(ctx context.Context, id string) (sc.Action, error) {
	var raw []byte
	var a sc.Action
	err := s.DB.QueryRow(ctx, `SELECT action FROM scaling_actions WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("scaling action %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get scaling action %s: %w", id, err)
	}
	return a, json.Unmarshal(raw, &a)
}
