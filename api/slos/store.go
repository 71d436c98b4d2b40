package slos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/slo"
)

// Store reads the SLI events of the usage data: the hourly roll-ups where
// they exist, and the raw usage events of the hours after the newest
// rolled-up hour (the daily roll-up lags up to a day behind).
type Store struct {
	DB *pgxpool.Pool
}

// hourRoute is one hour's events of one route.
type hourRoute struct {
	Hour  time.Time
	Route string
	// Count and Errors (5xx) are every event; LatencyTotal counts the events
	// with latency data and Within[i] those answered within thresholds[i].
	Count, Errors, LatencyTotal int64
	Within                      []int64
}

// thresholds are the distinct latency thresholds of the objectives, as
// indexes into slo.LatencyBuckets.
var thresholds = func() []int {
	var idx []int
	for _, o := range slo.Objectives {
		if i := slices.Index(slo.LatencyBuckets, o.Threshold); o.SLI == slo.Latency && i >= 0 && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	return idx
}()

// Both queries answer (hour, route, count, errors, latency total, within...)
// for the hours from $1 on, of principal $2 (” for all). The roll-up rows of
// hours rolled up before latency_le existed have an empty array: they count
// for availability only.
var (
	hourlyQuery = func() string {
		cols := make([]string, len(thresholds))
		for i, b := range thresholds {
			cols[i] = fmt.Sprintf("COALESCE(sum(latency_le[%d]), 0)::bigint", b+1)
		}
		return `
SELECT hour, route, sum(count)::bigint, sum(errors)::bigint,
       COALESCE(sum(count) FILTER (WHERE cardinality(latency_le) > 0), 0)::bigint, ` + strings.Join(cols, ", ") + `
FROM usage_hourly
WHERE hour >= $1 AND ($2 = '' OR principal = $2)
GROUP BY hour, route`
	}()
	eventsQuery = func() string {
		cols := make([]string, len(thresholds))
		for i, b := range thresholds {
			cols[i] = fmt.Sprintf("count(*) FILTER (WHERE latency_ms <= %g)", slo.LatencyBuckets[b]*1000)
		}
		return `
SELECT date_trunc('hour', at, 'UTC'), route, count(*), count(*) FILTER (WHERE status >= 500), count(*), ` + strings.Join(cols, ", ") + `
FROM usage_events
WHERE at >= $1 AND ($2 = '' OR principal = $2)
GROUP BY 1, 2`
	}()
	// newestRolledUp is the newest hour the roll-up wrote, for anyone: it
	// rolls up every principal's events of an hour at once.
	newestRolledUp = `SELECT max(hour) FROM usage_hourly WHERE hour >= $1`
)

// Events returns the events of principal ("" for everyone) per hour and
// route, for the hours from since on.
func (s *Store) Events(ctx context.Context, principal string, since time.Time) ([]hourRoute, error) {
	var newest *time.Time
	if err := s.DB.QueryRow(ctx, newestRolledUp, since).Scan(&newest); err != nil {
		return nil, fmt.Errorf("newest rolled-up hour: %w", err)
	}
	var out []hourRoute
	raw := since
	if newest != nil {
		rows, err := s.query(ctx, hourlyQuery, since, principal)
		if err != nil {
			return nil, fmt.Errorf("read usage roll-ups: %w", err)
		}
		out = rows
		raw = newest.Add(time.Hour)
	}
	rows, err := s.query(ctx, eventsQuery, raw, principal)
	if err != nil {
		return nil, fmt.Errorf("read usage events: %w", err)
	}
	return append(out, rows...), nil
}

func (s *Store) query(ctx context.Context, sql string, since time.Time, principal string) ([]hourRoute, error) {
	rows, err := s.DB.Query(ctx, sql, since, principal)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (hourRoute, error) {
		h := hourRoute{Within: make([]int64, len(thresholds))}
		dest := []any{&h.Hour, &h.Route, &h.Count, &h.Errors, &h.LatencyTotal}
		for i := range h.Within {
			dest = append(dest, &h.Within[i])
		}
		return h, row.Scan(dest...)
	})
}
