package drills

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/drills/drillrow"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/workflows/drill"
)

// Store reads drills. It never writes them: a drill's row has one writer,
// its workflow.
type Store struct {
	DB *pgxpool.Pool
	// Reads, when set, sends GET and list reads to a replica that is current
	// enough for the caller; nil reads from DB.
	Reads *database.Router
}

// Get returns drill id.
func (s *Store) Get(ctx context.Context, id string) (drill.Drill, error) {
	d, err := drillrow.Scan(s.Reads.For(ctx, s.DB).QueryRow(ctx, `SELECT `+drillrow.Columns+` FROM drills WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("get drill %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("get drill %s: %w", id, err)
	}
	return d, nil
}

// ListFilter selects drills; empty fields select all.
type ListFilter struct {
	Principal, Scenario, Status string
}

const listDrills = `SELECT ` + drillrow.Columns + ` FROM drills WHERE %s ORDER BY created_at DESC, id DESC LIMIT $1`

// List returns a page of drills, newest first.
func (s *Store) List(ctx context.Context, f ListFilter, req page.Request) ([]drill.Drill, error) {
	args := []any{req.FetchLimit()}
	var conds []string
	for _, c := range []struct{ col, val string }{{"principal", f.Principal}, {"scenario", f.Scenario}, {"status", f.Status}} {
		if c.val != "" {
			args = append(args, c.val)
			conds = append(conds, c.col+" = $"+strconv.Itoa(len(args)))
		}
	}
	where, after := req.Where("created_at", "id", len(args)+1)
	conds = append(conds, where)
	args = append(args, after...)
	rows, err := s.Reads.For(ctx, s.DB).Query(ctx, fmt.Sprintf(listDrills, strings.Join(conds, " AND ")), args...)
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (drill.Drill, error) { return drillrow.Scan(row) })
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	return out, nil
}
