package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/acme/platform/drills/invariants"
	"github.com/acme/platform/jobs"
)

// jobsNotLost waits (up to a minute) for every acknowledged job to reach
// a final state, then checks the evidence.
func (a *Activities) jobsNotLost(ctx context.Context, acked []string) invariants.Result {
	deadline := time.Now().Add(time.Minute)
	for {
		rows, err := a.jobStatuses(ctx, acked)
		r := invariants.JobsNotLost(acked, rows, jobs.Final)
		if err != nil {
			r.Held, r.Detail = false, "could not read the jobs: "+err.Error()
		}
		if r.Held || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		time.Sleep(time.Second)
	}
}

func (a *Activities) jobStatuses(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	rows, err := a.DB.Query(ctx, `SELECT id, status FROM jobs WHERE id = ANY($1)`, ids)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			return out, err
		}
		out[id] = status
	}
	return out, rows.Err()
}

// rowsOf waits up to wait for ids to have rows and returns those that do.
func (a *Activities) rowsOf(ctx context.Context, ids []string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		rows, err := a.jobStatuses(ctx, ids)
		if err == nil && (len(rows) == len(ids) || time.Now().After(deadline)) {
			var out []string
			for _, id := range ids {
				if _, ok := rows[id]; ok {
					out = append(out, id)
				}
			}
			return out
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probeClient is the probes' client: short timeouts, no shared state with
// the load.
var probeClient = &http.Client{Timeout: requestTimeout}

// create sends one job creation with key and returns the answer.
func (m *mix) create(ctx context.Context, key string, n int) invariants.Creation {
	c := invariants.Creation{Key: key}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/v1/jobs", bytes.NewReader(jobBody(m.drillID, n)))
	if err != nil {
		return c
	}
	req.Header.Set("Authorization", "Bearer "+m.secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := probeClient.Do(req)
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	c.Status = resp.StatusCode
	var job struct {
		ID string `json:"id"`
	}
	if resp.StatusCode < 300 && json.NewDecoder(resp.Body).Decode(&job) == nil {
		c.ID = job.ID
	}
	return c
}

// duplicatesProbe sends 8 concurrent identical creates under one key, and
// 4 creates under 4 keys at once, and checks one resource per key.
func duplicatesProbe(ctx context.Context, m *mix) invariants.Result {
	const same, distinct = 8, 4
	answers := make([]invariants.Creation, same+distinct)
	var wg sync.WaitGroup
	for i := range answers {
		key, n := "dup-"+m.drillID+"-same", -2
		if i >= same {
			key, n = "dup-"+m.drillID+"-"+strconv.Itoa(i), -10-i
		}
		wg.Go(func() { answers[i] = m.create(ctx, key, n) })
	}
	wg.Wait()
	return invariants.NoDuplicates(answers)
}

// cursorProbe walks the drill principal's jobs three at a time while
// another client creates jobs: every job that existed before the walk
// (jobs are never deleted through the API) must be returned exactly once.
func (a *Activities) cursorProbe(ctx context.Context, m *mix) invariants.Result {
	var created []string
	for i := range 6 {
		if c := m.create(ctx, fmt.Sprintf("cur-%s-%d", m.drillID, i), -100-i); c.ID != "" {
			created = append(created, c.ID)
		}
	}
	// A job's row is written by its workflow, after the 201: only jobs
	// whose rows exist before the walk starts existed throughout it.
	stable := a.rowsOf(ctx, created, 10*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.create(ctx, fmt.Sprintf("cur-%s-new-%d", m.drillID, i), -200-i)
		}
	})
	pages, err := m.walk(ctx, 5, 100)
	close(stop)
	wg.Wait()
	r := invariants.Cursors([]invariants.Walk{{Pages: pages, Stable: stable}})
	if err != nil {
		r.Held, r.Detail = false, "the walk failed: "+err.Error()
	}
	return r
}

// walk lists the principal's jobs limit at a time, up to maxPages pages.
func (m *mix) walk(ctx context.Context, limit, maxPages int) ([][]string, error) {
	var pages [][]string
	cursor := ""
	for range maxPages {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+"/v1/jobs?"+q.Encode(), nil)
		if err != nil {
			return pages, err
		}
		req.Header.Set("Authorization", "Bearer "+m.secret)
		resp, err := probeClient.Do(req)
		if err != nil {
			return pages, err
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return pages, fmt.Errorf("list answered %d", resp.StatusCode)
		}
		ids := make([]string, len(page.Data))
		for i, j := range page.Data {
			ids[i] = j.ID
		}
		pages = append(pages, ids)
		if page.NextCursor == nil {
			return pages, nil
		}
		cursor = *page.NextCursor
	}
	return pages, nil
}
