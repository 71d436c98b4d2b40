package job

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"

	"github.com/acme/platform/slo"
	"github.com/acme/platform/workflows/job"
)

// Usage rolls usage events up into hourly rows.
type Usage struct {
	DB *pgxpool.Pool
}

// MaxRollupRange is the longest range one roll-up job covers.
const MaxRollupRange = 31 * 24 * time.Hour

// rollupUsage aggregates one range of events into hourly rows per principal
// and route. errors counts 5xx answers (the platform's failures);
// client_errors counts 4xx (the callers'), kept apart so that a client
// sending bad requests does not look like an outage. latency_le counts the
// requests answered within each bound of slo.LatencyBuckets, cumulatively,
// for the latency SLIs of GET /v1/slos. Hours are UTC whatever the session's
// time zone. An hour's row is always computed from all of the hour's events
// and written only when it differs, so re-running a range changes nothing.
var rollupUsage = `
INSERT INTO usage_hourly AS h (hour, principal, route, count, errors, client_errors, p50_ms, p95_ms, latency_le)
SELECT date_trunc('hour', at, 'UTC'), principal, route,
       count(*),
       count(*) FILTER (WHERE status >= 500),
       count(*) FILTER (WHERE status >= 400 AND status < 500),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
       ` + LatencyLE + `
FROM usage_events
WHERE at >= $1 AND at < $2
GROUP BY 1, 2, 3
ON CONFLICT (hour, principal, route) DO UPDATE SET
    count = EXCLUDED.count, errors = EXCLUDED.errors, client_errors = EXCLUDED.client_errors,
    p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms, latency_le = EXCLUDED.latency_le
WHERE (h.count, h.errors, h.client_errors, h.p50_ms, h.p95_ms, h.latency_le)
      IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.errors, EXCLUDED.client_errors, EXCLUDED.p50_ms, EXCLUDED.p95_ms, EXCLUDED.latency_le)`

// LatencyLE is the SQL array, over usage_events rows, of how many answered
// within each bound of slo.LatencyBuckets (latency_ms is in milliseconds).
var LatencyLE = latencyLE()

func latencyLE() string {
	parts := make([]string, len(slo.LatencyBuckets))
	for i, b := range slo.LatencyBuckets {
		parts[i] = fmt.Sprintf("count(*) FILTER (WHERE latency_ms <= %g)", b*1000)
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::bigint[]"
}

const countHourly = `SELECT count(*) FROM usage_hourly WHERE hour >= $1 AND hour < $2`

// Rollup aggregates the job's range, widened to whole hours, a day at a
// time with a heartbeat between days.
func (a *Usage) Rollup(ctx context.Context, in job.AttemptInput) (job.AttemptResult, error) {
	var r job.RollupInput
	if err := loadInput(ctx, a.DB, in, &r); err != nil {
		return job.AttemptResult{}, err
	}
	from, to := HourRange(r.From, r.To)
	if !from.Before(to) || to.Sub(from) > MaxRollupRange+2*time.Hour {
		return job.AttemptResult{}, notRetryable("InvalidJobInput",
			fmt.Sprintf("roll-up range %s..%s must be non-empty and at most 31 days", r.From, r.To), job.AttemptFailure{})
	}
	res, err := heartbeating(ctx, func(ctx context.Context) (job.RollupResult, error) { return a.rollup(ctx, from, to) })
	if err != nil {
		return job.AttemptResult{}, err
	}
	out, err := json.Marshal(res)
	return job.AttemptResult{Result: out}, err
}

func (a *Usage) rollup(ctx context.Context, from, to time.Time) (job.RollupResult, error) {
	res := job.RollupResult{From: from, To: to}
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		end := day.Add(24 * time.Hour)
		if end.After(to) {
			end = to
		}
		tag, err := a.DB.Exec(ctx, rollupUsage, day, end)
		if err != nil {
			return res, fmt.Errorf("roll up usage %s..%s: %w", day.Format(time.RFC3339), end.Format(time.RFC3339), err)
		}
		res.RowsChanged += tag.RowsAffected()
		activity.RecordHeartbeat(ctx, day)
	}
	if err := a.DB.QueryRow(ctx, countHourly, from, to).Scan(&res.Rows); err != nil {
		return res, fmt.Errorf("count hourly usage rows: %w", err)
	}
	return res, nil
}

// HourRange widens [from, to) to whole UTC hours, so that every hour it
// touches is computed from all of its events.
func HourRange(from, to time.Time) (time.Time, time.Time) {
	f := from.UTC().Truncate(time.Hour)
	t := to.UTC().Truncate(time.Hour)
	if t.Before(to) {
		t = t.Add(time.Hour)
	}
	return f, t
}
