package page

import "fmt"

// SQL fragments of a keyset query. The row comparison is the form Postgres
// turns into one index condition on (created_at DESC, id DESC), so the scan
// starts at the cursor. The equivalent "a < x OR (a = x AND b < y)" is only
// a filter on a scan from the newest row, which reads every row before the
// cursor again on each page, as OFFSET would.
const (
	firstPageSQL = "TRUE"
	afterSQL     = "(%s, %s) < ($%d, $%d)"
)

// Where returns the condition that keeps only rows after the cursor, for a
// query ordered by createdAtCol DESC, idCol DESC, with its placeholders
// numbered from nextArg, and the arguments for them. On the first page it is
// "TRUE" with no arguments, so a handler's SQL has one shape for every page.
//
// createdAtCol and idCol are pasted into the SQL: pass constants, never
// anything from the request. The query needs the index described in the
// package documentation.
func (q Request) Where(createdAtCol, idCol string, nextArg int) (clause string, args []any) {
	if q.After == nil {
		return firstPageSQL, nil
	}
	return fmt.Sprintf(afterSQL, createdAtCol, idCol, nextArg, nextArg+1),
		[]any{q.After.CreatedAt, q.After.ID}
}

// FetchLimit is the LIMIT to query with: one row more than the page, so
// Build can tell whether there is a next page without a COUNT.
func (q Request) FetchLimit() int { return q.limit() + 1 }
