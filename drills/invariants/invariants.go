// Package invariants holds the checks every experiment drill (capacity,
// db_degraded, cache_degraded) runs after its load: each is a pure function
// over evidence the drill recorded while it ran, so each is table-tested
// without a platform, and a drill's finding can be replayed from its
// evidence. A check returns a Result; a broken invariant is a finding, not
// an error.
package invariants

import (
	"fmt"
	"slices"
	"strings"
)

// Names of the invariants, as a drill's measurements and report show them.
const (
	NoJobLost        = "no_job_lost"
	NoDuplicate      = "no_duplicate"
	CursorConsistent = "cursor_consistent"
	NoLeak           = "no_leak"
)

// Result is one invariant's verdict over its evidence.
type Result struct {
	Name string `json:"name"`
	Held bool   `json:"held"`
	// Checked counts the pieces of evidence looked at, so a check that held
	// over nothing is visible as such.
	Checked int    `json:"checked"`
	Detail  string `json:"detail,omitempty"`
}

func result(name string, checked int, problems []string) Result {
	r := Result{Name: name, Held: len(problems) == 0, Checked: checked}
	if !r.Held {
		r.Detail = summarise(problems)
	} else {
		r.Detail = fmt.Sprintf("held over %d", checked)
	}
	return r
}

// summarise joins up to five problems, saying how many more there are.
func summarise(problems []string) string {
	const shown = 5
	if len(problems) <= shown {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(problems[:shown], "; "), len(problems)-shown)
}

// JobsNotLost: every job the API acknowledged with a 201 has a row, and
// that row reached a final state. acked are the job ids of the 201s; rows
// maps each job id found in the database to its status; final says which
// statuses are final.
func JobsNotLost(acked []string, rows map[string]string, final func(string) bool) Result {
	var problems []string
	seen := map[string]bool{}
	for _, id := range acked {
		if seen[id] {
			continue // a replay answered 201 with the same job
		}
		seen[id] = true
		status, ok := rows[id]
		switch {
		case !ok:
			problems = append(problems, "job "+id+" was acknowledged and has no row")
		case !final(status):
			problems = append(problems, "job "+id+" is still "+status)
		}
	}
	return result(NoJobLost, len(seen), problems)
}

// Creation is one answer to a create request: the Idempotency-Key it was
// sent with, its status and the id of the resource it named (empty when
// it named none).
type Creation struct {
	Key    string `json:"key"`
	Status int    `json:"status"`
	ID     string `json:"id,omitempty"`
}

// NoDuplicates: requests sharing an Idempotency-Key, however concurrent,
// name one resource; requests with different keys name different ones.
// Answers without an id (a 409 in progress, a 503) create nothing and are
// not counted against the invariant.
func NoDuplicates(answers []Creation) Result {
	byKey := map[string][]string{}
	owner := map[string]string{}
	var problems []string
	for _, a := range answers {
		if a.ID == "" || a.Status >= 300 {
			continue
		}
		if !slices.Contains(byKey[a.Key], a.ID) {
			byKey[a.Key] = append(byKey[a.Key], a.ID)
		}
		if k, ok := owner[a.ID]; ok && k != a.Key {
			problems = append(problems, fmt.Sprintf("keys %s and %s both named %s", k, a.Key, a.ID))
			continue
		}
		owner[a.ID] = a.Key
	}
	for _, k := range sortedKeys(byKey) {
		if ids := byKey[k]; len(ids) > 1 {
			problems = append(problems, fmt.Sprintf("key %s created %d resources: %s", k, len(ids), strings.Join(ids, ", ")))
		}
	}
	return result(NoDuplicate, len(byKey), problems)
}

// Walk is a cursor walk through a list while other clients inserted and
// deleted: Pages are the ids of each page in order; Stable are the ids that
// existed before the walk started and were not deleted before it ended.
type Walk struct {
	Pages  [][]string `json:"pages"`
	Stable []string   `json:"stable"`
}

// Cursors: a walk never returns an item twice, and never skips an item
// that existed throughout.
func Cursors(walks []Walk) Result {
	var problems []string
	checked := 0
	for i, w := range walks {
		seen := map[string]bool{}
		for _, page := range w.Pages {
			for _, id := range page {
				checked++
				if seen[id] {
					problems = append(problems, fmt.Sprintf("walk %d returned %s twice", i, id))
				}
				seen[id] = true
			}
		}
		for _, id := range w.Stable {
			if !seen[id] {
				problems = append(problems, fmt.Sprintf("walk %d skipped %s, which existed throughout", i, id))
			}
		}
	}
	return result(CursorConsistent, checked, problems)
}

// Resources are a process's goroutines and heap at one moment.
type Resources struct {
	Goroutines float64 `json:"goroutines"`
	HeapBytes  float64 `json:"heap_bytes"`
}

// Slack is how far after may exceed baseline and still count as returned:
// goroutines by Goroutines plus a fraction of the baseline (idle
// connections, timers), the heap by a fraction of the baseline.
type Slack struct {
	Goroutines   float64
	Fraction     float64
	HeapFraction float64
	HeapMinBytes float64
}

// DefaultSlack allows a few idle connections' goroutines and a heap a
// quarter larger (or 16 MiB, for a small heap) than before the load: a
// leak under load grows with the requests served, far past either.
var DefaultSlack = Slack{Goroutines: 20, Fraction: 0.1, HeapFraction: 0.25, HeapMinBytes: 16 << 20}

// Returned: goroutines and heap came back to their baseline after the
// load, within slack.
func Returned(baseline, after Resources, s Slack) Result {
	var problems []string
	if limit := baseline.Goroutines*(1+s.Fraction) + s.Goroutines; after.Goroutines > limit {
		problems = append(problems, fmt.Sprintf("goroutines %.0f after the load, baseline %.0f (limit %.0f)",
			after.Goroutines, baseline.Goroutines, limit))
	}
	if limit := baseline.HeapBytes + max(baseline.HeapBytes*s.HeapFraction, s.HeapMinBytes); after.HeapBytes > limit {
		problems = append(problems, fmt.Sprintf("heap %.1f MiB after the load, baseline %.1f MiB (limit %.1f MiB)",
			after.HeapBytes/(1<<20), baseline.HeapBytes/(1<<20), limit/(1<<20)))
	}
	return result(NoLeak, 2, problems)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
