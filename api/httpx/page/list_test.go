package page_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/testenv"
)

// The tests' own collection. COLLATE "C" makes the database order ids as Go
// compares strings, so the tests can check the order themselves.
const (
	createItemsSQL = `
CREATE TABLE items (
	id         text COLLATE "C" PRIMARY KEY,
	owner      text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`
	createItemsIndexSQL = `CREATE INDEX items_page ON items (created_at DESC, id DESC)`

	// seedItemsSQL inserts n rows p0000… owned by $3, three to a timestamp so
	// ties must be broken by id, at odd microsecond steps from $1.
	seedItemsSQL = `
INSERT INTO items (id, owner, created_at)
SELECT $4 || lpad(i::text, 4, '0'), $3, $1::timestamptz + (i / 3) * interval '1001 microseconds'
FROM generate_series(0, $2 - 1) AS i`

	// listItemsSQL is what a list handler runs; %s is the keyset condition.
	listItemsSQL = `
SELECT id, owner, created_at FROM items
WHERE owner = $1 AND %s
ORDER BY created_at DESC, id DESC
LIMIT $2`

	allItemsSQL = `SELECT id, owner, created_at FROM items WHERE owner = $1 ORDER BY created_at DESC, id DESC`
)

// principal is the caller in these tests; the handler stands in for one
// behind the auth middleware.
const principal = "acme"

type item struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"created_at"`
}

func itemKey(it item) page.Cursor { return page.Cursor{CreatedAt: it.CreatedAt, ID: it.ID} }

// before reports whether a comes before b in created_at DESC, id DESC order.
func before(a, b page.Cursor) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// itemsDB gives the test a fresh database with the items table.
func itemsDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db, _ := testenv.Postgres(t)
	for _, stmt := range []string{createItemsSQL, createItemsIndexSQL} {
		if _, err := db.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("create items: %v", err)
		}
	}
	return db
}

// seed inserts n rows of owner with ids prefix0000… and returns them newest first.
func seed(t *testing.T, db *pgxpool.Pool, owner, prefix string, n int) []item {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Exec(ctx, seedItemsSQL, start, n, owner, prefix); err != nil {
		t.Fatalf("seed: %v", err)
	}
	rows, _ := db.Query(ctx, allItemsSQL, owner)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[item])
	if err != nil {
		t.Fatalf("read seed: %v", err)
	}
	return all
}

// listItems is a list handler as an endpoint would write it: filter by the
// owner parameter, page with package page.
func listItems(db *pgxpool.Pool) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		filters := url.Values{"owner": {r.URL.Query().Get("owner")}}
		req, err := page.Parse(r, secret, principal, filters)
		if err != nil {
			return err
		}
		where, after := req.Where("created_at", "id", 3)
		args := append([]any{filters.Get("owner"), req.FetchLimit()}, after...)
		rows, _ := db.Query(r.Context(), fmt.Sprintf(listItemsSQL, where), args...)
		items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[item])
		if err != nil {
			return fmt.Errorf("list items: %w", err)
		}
		return page.Write(w, r, page.Build(items, req, itemKey, secret, principal, filters))
	})
}

type listBody struct {
	Data       []item  `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// get serves r and decodes a 200 list response.
func get(t testing.TB, h http.Handler, r *http.Request) (listBody, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", r.URL, w.Code, w.Body)
	}
	var b listBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return b, w.Header()
}

// walk pages from first by following Link headers, asking for limits[i]
// on page i+1 (cycling), and checks every page's shape on the way. between
// runs after each page that has a successor. A walk that does not end is a
// failure, not a hang: no test here has more than 1000 pages.
func walk(t *testing.T, h http.Handler, first string, limits []int, between func(last item)) []item {
	t.Helper()
	var seen []item
	r := httptest.NewRequest(http.MethodGet, first, nil)
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatalf("still paging after %d pages and %d rows", i, len(seen))
		}
		limit := limits[i%len(limits)]
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(limit))
		r.URL.RawQuery = q.Encode()

		b, header := get(t, h, r)
		seen = append(seen, b.Data...)
		links := header.Values("Link")
		if !b.HasMore {
			if b.NextCursor != nil || len(links) != 0 || b.Data == nil || len(b.Data) > limit {
				t.Fatalf("last page: next_cursor=%v Link=%q data=%v", b.NextCursor, links, b.Data)
			}
			return seen
		}
		if b.NextCursor == nil || len(links) != 1 || len(b.Data) != limit {
			t.Fatalf("page %d: %d rows of %d, next_cursor=%v Link=%q", i, len(b.Data), limit, b.NextCursor, links)
		}
		want := "</v1/items?owner=" + principal + "&cursor=" + *b.NextCursor + "&limit=" + strconv.Itoa(limit) + `>; rel="next"`
		if links[0] != want {
			t.Fatalf("Link = %s\nwant   %s", links[0], want)
		}
		if between != nil {
			between(b.Data[len(b.Data)-1])
		}
		r = linkRequest(t, links[0])
	}
}
