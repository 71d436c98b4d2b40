package tests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	apijobs "github.com/acme/platform/api/jobs"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/jobs/jobrow"
)

// benchPagesRows is how many rows the principal has in each table.
const benchPagesRows = 100_000

// TestBenchPages (make bench-pages) fills jobs and api_keys with 100k rows
// of one principal (and a fifth as many of another, so the principal's
// index range is not the whole table), then times, in one run, the store's
// first page, the store's page at depth 100k reached by walking the cursor,
// and an OFFSET query for the same page, and prints the ratios. The goal is
// deep/first ≤ 1.2 and OFFSET/deep ≥ 20.
func TestBenchPages(t *testing.T) {
	if os.Getenv("PLATFORM_BENCH_PAGES") == "" {
		t.Skip("set PLATFORM_BENCH_PAGES=1 (make bench-pages)")
	}
	db, _ := testenv.Postgres(t)
	ctx := context.Background()
	seedJobs(t, db, "bench", benchPagesRows)
	seedJobs(t, db, "other", benchPagesRows/5)
	seedKeys(t, db, "bench", benchPagesRows)
	seedKeys(t, db, "other", benchPagesRows/5)
	// VACUUM sets the visibility map, as autovacuum would on a real table,
	// so both pages are index-only scans without heap fetches.
	if _, err := db.Exec(ctx, "VACUUM ANALYZE jobs, api_keys"); err != nil {
		t.Fatal(err)
	}
	jobStore := &apijobs.Store{DB: db}
	keyStore := &keys.Store{DB: db}
	benchPages(t, db, "jobs", `SELECT `+jobrow.Columns+` FROM jobs WHERE principal = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
		func(req page.Request) (int, page.Cursor, error) {
			rows, err := jobStore.List(ctx, apijobs.ListFilter{Principal: "bench"}, req)
			if err != nil || len(rows) == 0 {
				return len(rows), page.Cursor{}, err
			}
			last := rows[min(len(rows), req.Limit)-1]
			return len(rows), page.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
		})
	benchPages(t, db, "api_keys", `SELECT id FROM api_keys WHERE principal = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
		func(req page.Request) (int, page.Cursor, error) {
			rows, err := keyStore.List(ctx, keys.ListFilter{Principal: "bench"}, req)
			if err != nil || len(rows) == 0 {
				return len(rows), page.Cursor{}, err
			}
			last := rows[min(len(rows), req.Limit)-1]
			return len(rows), page.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
		})
}

// listFunc lists one page and returns how many rows came and the cursor
// after the page.
type listFunc func(page.Request) (int, page.Cursor, error)

// benchPages walks every page of list to the last one (depth 100k), then
// times the first page, that deepest page by cursor and the same page by
// offsetSQL, each the median of several runs.
func benchPages(t *testing.T, db *pgxpool.Pool, table, offsetSQL string, list listFunc) {
	const limit = page.DefaultLimit
	req := page.Request{Limit: limit}
	var deep page.Request
	depth := 0
	start := time.Now()
	for {
		n, next, err := list(req)
		if err != nil {
			t.Fatal(err)
		}
		if n <= limit { // the last page
			deep = req
			break
		}
		depth += limit
		req = page.Request{Limit: limit, After: &next}
	}
	walk := time.Since(start)
	if depth < benchPagesRows-limit {
		t.Fatalf("%s: the cursor walk reached depth %d of %d", table, depth, benchPagesRows)
	}
	// First and deep pages alternate, so the machine's other load weighs on
	// both alike.
	first, byCursor := medianPair(301,
		func() error { _, _, err := list(page.Request{Limit: limit}); return err },
		func() error { _, _, err := list(deep); return err })
	byOffset := medianTime(11, func() error {
		rows, err := db.Query(context.Background(), offsetSQL, "bench", limit+1, depth)
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	})
	fmt.Printf("%-8s %d rows for one principal, page size %d, depth %d (cursor walk of %d pages took %s)\n",
		table, benchPagesRows, limit, depth, depth/limit+1, walk.Round(time.Millisecond))
	fmt.Printf("%-8s first page %8s   deep page by cursor %8s   by OFFSET %8s\n", table, first, byCursor, byOffset)
	if os.Getenv("PLATFORM_BENCH_PAGES_EXPLAIN") != "" {
		explain(t, db, table, deep)
	}
	fmt.Printf("%-8s deep/first = %.2f (goal ≤ 1.2)   OFFSET/deep = %.1f× (goal ≥ 20×)\n",
		table, float64(byCursor)/float64(first), float64(byOffset)/float64(byCursor))
}

// medianPair runs a and b n times each, alternating which goes first, and
// returns their median times.
func medianPair(n int, a, b func() error) (time.Duration, time.Duration) {
	fns := [2]func() error{a, b}
	ds := [2][]time.Duration{make([]time.Duration, n), make([]time.Duration, n)}
	for i := range n {
		for j := range 2 {
			k := (i + j) % 2
			start := time.Now()
			if err := fns[k](); err != nil {
				panic(err)
			}
			ds[k][i] = time.Since(start)
		}
	}
	for _, d := range ds {
		slices.Sort(d)
	}
	return ds[0][n/2], ds[1][n/2]
}

// medianTime runs fn n times (after one warm-up) and returns the median time.
func medianTime(n int, fn func() error) time.Duration {
	_ = fn()
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := fn(); err != nil {
			panic(err)
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2]
}

// seedJobs copies n jobs of principal into the table, one per millisecond
// with every tenth sharing its neighbour's timestamp (ties on created_at).
func seedJobs(t *testing.T, db *pgxpool.Pool, principal string, n int) {
	base := time.Now().Add(-time.Duration(n) * time.Millisecond)
	rows := make([][]any, n)
	for i := range rows {
		at := base.Add(time.Duration(i-i%10/9) * time.Millisecond)
		id := fmt.Sprintf("job_%s_%07d", principal, i)
		rows[i] = []any{id, principal, "webhook", "succeeded", []byte(`{"url":"https://example.com/hook"}`), []byte(`{}`), "job-" + id, "run", at, at}
	}
	copyRows(t, db, "jobs", []string{"id", "principal", "type", "status", "input", "retry", "workflow_id", "run_id", "created_at", "updated_at"}, rows)
}

// seedKeys copies n keys of principal into api_keys, timestamps as seedJobs.
func seedKeys(t *testing.T, db *pgxpool.Pool, principal string, n int) {
	base := time.Now().Add(-time.Duration(n) * time.Millisecond)
	rows := make([][]any, n)
	for i := range rows {
		at := base.Add(time.Duration(i-i%10/9) * time.Millisecond)
		id := fmt.Sprintf("key_%s_%07d", principal, i)
		hash := sha256.Sum256([]byte(id))
		rows[i] = []any{id, principal, "bench", []string{"jobs:read"}, hash[:], at}
	}
	copyRows(t, db, "api_keys", []string{"id", "principal", "name", "scopes", "hash", "created_at"}, rows)
}

func copyRows(t *testing.T, db *pgxpool.Pool, table string, cols []string, rows [][]any) {
	t.Helper()
	n, err := db.CopyFrom(context.Background(), pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("copy %d rows into %s: %d, %v", len(rows), table, n, err)
	}
}

// explain prints the plans of the first and the deep page's query.
func explain(t *testing.T, db *pgxpool.Pool, table string, deep page.Request) {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT id FROM ` + table + ` WHERE principal = $1 AND TRUE ORDER BY created_at DESC, id DESC LIMIT 21`, []any{"bench"}},
		{`SELECT id FROM ` + table + ` WHERE principal = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT 21`,
			[]any{"bench", deep.After.CreatedAt, deep.After.ID}},
	} {
		rows, err := db.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(strings.Join(lines, "\n"))
	}
}
