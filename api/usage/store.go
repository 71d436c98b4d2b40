package usage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/internal/database"
)

// Store reads the hourly roll-ups.
type Store struct {
	DB *pgxpool.Pool
	// Reads, when set, sends GET and list reads to a replica that is current
	// enough for the caller; nil reads from DB.
	Reads *database.Router
}

// Hour is one usage_hourly row.
type Hour struct {
	Hour         time.Time
	Principal    string
	Route        string
	Count        int64
	Errors       int64
	ClientErrors int64
	P50MS        float64
	P95MS        float64
}

// Filter selects rows whose hour starts in [From, To), of Principal when set.
type Filter struct {
	From, To  time.Time
	Principal string
}

// Position is a keyset position in (hour, principal, route) DESC order.
type Position struct {
	Hour             time.Time
	Principal, Route string
}

// The keyset condition continues strictly after the last row of the page;
// for one principal it is the row comparison on (hour, route), which the
// (principal, hour DESC, route DESC) index can start from; for all, on the
// primary key (hour, principal, route) scanned backwards.
const (
	listAll = `
SELECT hour, principal, route, count, errors, client_errors, p50_ms, p95_ms FROM usage_hourly
WHERE hour >= $1 AND hour < $2 AND ($4::timestamptz IS NULL OR (hour, principal, route) < ($4, $5, $6))
ORDER BY hour DESC, principal DESC, route DESC
LIMIT $3`
	listPrincipal = `
SELECT hour, principal, route, count, errors, client_errors, p50_ms, p95_ms FROM usage_hourly
WHERE principal = $6 AND hour >= $1 AND hour < $2 AND ($4::timestamptz IS NULL OR (hour, route) < ($4, $5))
ORDER BY hour DESC, route DESC
LIMIT $3`
)

// List returns up to limit rows of f, newest hour first, after pos.
func (s *Store) List(ctx context.Context, f Filter, after *Position, limit int) ([]Hour, error) {
	var at *time.Time
	var principal, route string
	if after != nil {
		at, principal, route = &after.Hour, after.Principal, after.Route
	}
	query, args := listAll, []any{f.From, f.To, limit, at, principal, route}
	if f.Principal != "" {
		query, args = listPrincipal, []any{f.From, f.To, limit, at, route, f.Principal}
	}
	rows, err := s.Reads.For(ctx, s.DB).Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hour, error) {
		var h Hour
		err := row.Scan(&h.Hour, &h.Principal, &h.Route, &h.Count, &h.Errors, &h.ClientErrors, &h.P50MS, &h.P95MS)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return out, nil
}

// cursorID packs a row's principal and route into a cursor's id; a newline
// appears in neither (principals are [a-z0-9._-], routes are templates).
func cursorID(principal, route string) string { return principal + "\n" + route }

func splitCursorID(id string) (principal, route string, ok bool) {
	return strings.Cut(id, "\n")
}
