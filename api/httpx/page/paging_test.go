package page_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
)

func TestList_WalkingAllPagesReturnsEveryRowOnceInOrder(t *testing.T) {
	db := itemsDB(t)
	want := seed(t, db, principal, "p", 250)
	seed(t, db, "globex", "g", 40) // filtered out; shares timestamps with the rows above
	h := listItems(db)

	cases := []struct {
		name   string
		limits []int
	}{
		{"default-sized pages", []int{20}},
		{"one row at a time", []int{1}},
		{"largest pages", []int{100}},
		{"limit changing between pages", []int{7, 1, 100, 3, 20, 50}},
		{"a page size that divides the total", []int{25}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := walk(t, h, "/v1/items?owner="+principal, tc.limits, nil)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestList_EmptyCollectionIsOneLastPage(t *testing.T) {
	h := listItems(itemsDB(t))
	got := walk(t, h, "/v1/items?owner="+principal, []int{20}, nil)
	if len(got) != 0 {
		t.Errorf("rows = %v, want none", got)
	}
}

func TestList_CursorReusedWithOtherFilterIs400ProblemJSON(t *testing.T) {
	db := itemsDB(t)
	seed(t, db, principal, "p", 5)
	h := listItems(db)
	first, _ := get(t, h, httptest.NewRequest(http.MethodGet, "/v1/items?owner="+principal+"&limit=2", nil))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/items?owner=globex&limit=2&cursor="+*first.NextCursor, nil))
	var body struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	got := []any{w.Code, w.Header().Get("Content-Type"), body.Status, body.Code}
	want := []any{400, "application/problem+json", 400, problem.InvalidCursor}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestList_KeysetQueryScansTheIndexWithoutSorting(t *testing.T) {
	// Both index directions serve created_at DESC, id DESC: the DESC index
	// forwards, the ASC one backwards. With sequential scans and sorts
	// priced out, a plan that still sorts would mean the condition or the
	// ORDER BY cannot use the index.
	cases := []struct {
		name  string
		index string
	}{
		{"descending index", `CREATE INDEX items_page ON items (created_at DESC, id DESC)`},
		{"ascending index scanned backwards", `CREATE INDEX items_page ON items (created_at, id)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := itemsDB(t)
			seed(t, db, principal, "p", 300)
			for _, stmt := range []string{`DROP INDEX items_page`, tc.index, `ANALYZE items`} {
				if _, err := db.Exec(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			req := page.Request{Limit: 7, After: &page.Cursor{CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 50000, time.UTC), ID: "p0100"}}
			where, after := req.Where("created_at", "id", 3)
			tx, err := db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off`); err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+fmt.Sprintf(listItemsSQL, where), append([]any{principal, req.FetchLimit()}, after...)...)
			if err != nil {
				t.Fatal(err)
			}
			var plan strings.Builder
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(line + "\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			p := plan.String()
			if strings.Contains(p, "Sort") || !strings.Contains(p, "Index Cond: (ROW(created_at, id) < ROW(") {
				t.Errorf("plan does not start the index scan at the cursor:\n%s", p)
			}
		})
	}
}

// TestList_ConcurrentInsertsAndDeletesNeitherSkipNorRepeatRows checks the
// contract's promise: rows that existed when the first page was read appear
// exactly once while paging, whatever is inserted or deleted meanwhile.
// A row deleted before it is read cannot appear, so the promise is checked
// for every pre-existing row that was never deleted; every row, old or new,
// must appear at most once and in order.
func TestList_ConcurrentInsertsAndDeletesNeitherSkipNorRepeatRows(t *testing.T) {
	db := itemsDB(t)
	existing := seed(t, db, principal, "p", 300)
	h := listItems(db)

	m := &mutator{db: db, existing: existing, deleted: map[string]bool{},
		rng: rand.New(rand.NewPCG(1, 2)), progressed: make(chan struct{}, 1), stop: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { m.run(t) })
	// Stop the mutator before the database goes, even when the test fails
	// half-way: cleanups run last-registered first.
	stop := sync.OnceFunc(func() { close(m.stop); wg.Wait() })
	t.Cleanup(stop)

	seen := walk(t, h, "/v1/items?owner="+principal, []int{7}, func(last item) {
		m.readUpTo(itemKey(last))
		// Let at least one round of changes land between pages, so every
		// page is read from a table changed since the one before.
		select {
		case <-m.progressed:
		case <-time.After(10 * time.Second):
			t.Fatal("mutator made no progress")
		}
	})
	stop()

	count := map[string]int{}
	for i, it := range seen {
		count[it.ID]++
		if i > 0 && !before(itemKey(seen[i-1]), itemKey(it)) {
			t.Errorf("out of order at %d: %s then %s", i, seen[i-1].ID, it.ID)
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("%s appeared %d times", id, n)
		}
	}
	var missing []string
	for _, it := range existing {
		if !m.deleted[it.ID] && count[it.ID] != 1 {
			missing = append(missing, it.ID)
		}
	}
	if len(missing) > 0 {
		t.Errorf("pre-existing rows never deleted but not seen: %v", missing)
	}
	if m.inserts == 0 || len(m.deleted) == 0 {
		t.Errorf("the test changed nothing: %d inserts, %d deletes", m.inserts, len(m.deleted))
	}
	t.Logf("%d rows seen, %d inserted, %d deleted meanwhile", len(seen), m.inserts, len(m.deleted))
}

// Statements the mutator runs while the test pages.
const (
	insertNewestSQL = `INSERT INTO items (id, owner) VALUES ($1, $2)`
	insertAtSQL     = `INSERT INTO items (id, owner, created_at) VALUES ($1, $2, $3)`
	deleteItemSQL   = `DELETE FROM items WHERE id = $1`
)

// mutator inserts and deletes rows while the pager reads. It hands over a
// round at a time through progressed, so it can never insert rows behind
// the cursor faster than pages of 7 consume them and the walk ends.
type mutator struct {
	db         *pgxpool.Pool
	existing   []item     // the seeded rows, newest first
	rng        *rand.Rand // only run's goroutine uses it
	progressed chan struct{}
	stop       chan struct{}

	mu       sync.Mutex
	lastRead *page.Cursor
	deleted  map[string]bool
	inserts  int
}

// readUpTo records the pager's position; rows after it are still unread.
func (m *mutator) readUpTo(c page.Cursor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastRead = &c
}

func (m *mutator) run(t *testing.T) {
	for n := 0; ; n++ {
		if err := m.round(n); err != nil {
			t.Errorf("mutate: %v", err)
			return
		}
		select {
		case m.progressed <- struct{}{}:
		case <-m.stop:
			return
		}
	}
}

// round inserts a newest row (ahead of the cursor, never seen), a row tied
// with a random old row's created_at (sorting next to it by id), a row
// between two old timestamps, and deletes an old row not yet read; every
// fifth round it also deletes the row the cursor points at.
func (m *mutator) round(n int) error {
	ctx := context.Background()
	tie, mid := m.randomExisting(), m.randomExisting()
	inserts := []struct {
		sql  string
		args []any
	}{
		{insertNewestSQL, []any{fmt.Sprintf("n%04d", n), principal}},
		{insertAtSQL, []any{fmt.Sprintf("%st%04d", tie.ID, n), principal, tie.CreatedAt}},
		{insertAtSQL, []any{fmt.Sprintf("m%04d", n), principal, mid.CreatedAt.Add(500 * time.Microsecond)}},
	}
	for _, ins := range inserts {
		if _, err := m.db.Exec(ctx, ins.sql, ins.args...); err != nil {
			return err
		}
	}
	victims := m.unreadVictim()
	if last := m.cursorRow(); n%5 == 4 && last != "" {
		victims = append(victims, last)
	}
	for _, id := range victims {
		if _, err := m.db.Exec(ctx, deleteItemSQL, id); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inserts += len(inserts)
	for _, id := range victims {
		m.deleted[id] = true
	}
	return nil
}

func (m *mutator) randomExisting() item { return m.existing[m.rng.IntN(len(m.existing))] }

// unreadVictim picks an old row after the pager's position that is still
// there, if there is one left.
func (m *mutator) unreadVictim() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range 20 {
		it := m.randomExisting()
		if !m.deleted[it.ID] && (m.lastRead == nil || before(*m.lastRead, itemKey(it))) {
			return []string{it.ID}
		}
	}
	return nil
}

func (m *mutator) cursorRow() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastRead == nil {
		return ""
	}
	return m.lastRead.ID
}
