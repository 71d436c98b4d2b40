package drill

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/drills"
)

// Metrics exports the drills' evidence from their rows at scrape time, so
// every worker replica reports the same numbers, they survive restarts, and
// no drill is counted twice however often its record activity is retried:
//
//	drill_runs_total{scenario,verdict}        finished drills
//	drill_last_rto_seconds{scenario}          RTO of the newest drill that measured one
//	drill_last_rpo_seconds{scenario}          RPO likewise
//	drill_last_verdict_met{scenario}          1 when the newest finished drill met its objectives
//	backup_last_success_timestamp_seconds     when the newest good backup finished
//	backup_last_size_bytes{part}              its sizes (postgres, redis, config, total)
//
// Enough to alert on "no good backup in 26 h" and "a drill missed".
type Metrics struct {
	db                                *pgxpool.Pool
	runs, rto, rpo, met, lastOK, size *prometheus.Desc
}

// NewMetrics returns the collector over the drills table.
func NewMetrics(db *pgxpool.Pool) *Metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Metrics{db: db,
		runs:   d("drill_runs_total", "Finished disaster-recovery drills by scenario and verdict.", "scenario", "verdict"),
		rto:    d("drill_last_rto_seconds", "RTO measured by the newest drill of the scenario that measured one.", "scenario"),
		rpo:    d("drill_last_rpo_seconds", "RPO measured by the newest drill of the scenario that measured one.", "scenario"),
		met:    d("drill_last_verdict_met", "1 when the newest finished drill of the scenario met its objectives, else 0.", "scenario"),
		lastOK: d("backup_last_success_timestamp_seconds", "When the newest successful backup drill finished (Unix seconds)."),
		size:   d("backup_last_size_bytes", "Sizes of the newest successful backup.", "part"),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.runs, m.rto, m.rpo, m.met, m.lastOK, m.size} {
		ch <- d
	}
}

// scenario bounds a label: a drill started from the Temporal UI may name
// anything, and only known scenarios may become label values.
func scenario(s string) string {
	if slices.Contains(drills.Scenarios, s) {
		return s
	}
	return "other"
}

const (
	countRuns = `SELECT scenario, coalesce(verdict, ''), count(*) FROM drills
		WHERE finished_at IS NOT NULL GROUP BY 1, 2`
	newestPerScenario = `SELECT DISTINCT ON (scenario) scenario, verdict = 'met',
		(measurements->>'rto_seconds')::float8, (measurements->>'rpo_seconds')::float8
		FROM drills WHERE finished_at IS NOT NULL ORDER BY scenario, finished_at DESC`
	newestBackup = `SELECT finished_at, measurements FROM drills
		WHERE scenario = 'backup' AND status = 'succeeded' ORDER BY finished_at DESC LIMIT 1`
)

// Collect implements prometheus.Collector: three small queries, bounded by
// a short timeout so a slow database cannot hang a scrape.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.collectRuns(ctx, ch)
	m.collectNewest(ctx, ch)
	m.collectBackup(ctx, ch)
}

func (m *Metrics) collectRuns(ctx context.Context, ch chan<- prometheus.Metric) {
	rows, err := m.db.Query(ctx, countRuns)
	if err != nil {
		return
	}
	defer rows.Close()
	counts := map[[2]string]float64{}
	for rows.Next() {
		var sc, verdict string
		var n int64
		if rows.Scan(&sc, &verdict, &n) == nil {
			if verdict != drills.Met {
				verdict = drills.Missed
			}
			counts[[2]string{scenario(sc), verdict}] += float64(n)
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.runs, prometheus.CounterValue, n, k[0], k[1])
	}
}

func (m *Metrics) collectNewest(ctx context.Context, ch chan<- prometheus.Metric) {
	rows, err := m.db.Query(ctx, newestPerScenario)
	if err != nil {
		return
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var sc string
		var met *bool
		var rto, rpo *float64
		if rows.Scan(&sc, &met, &rto, &rpo) != nil || seen[scenario(sc)] {
			continue
		}
		sc = scenario(sc)
		seen[sc] = true
		ch <- prometheus.MustNewConstMetric(m.met, prometheus.GaugeValue, boolValue(met), sc)
		if rto != nil {
			ch <- prometheus.MustNewConstMetric(m.rto, prometheus.GaugeValue, *rto, sc)
		}
		if rpo != nil {
			ch <- prometheus.MustNewConstMetric(m.rpo, prometheus.GaugeValue, *rpo, sc)
		}
	}
}

func (m *Metrics) collectBackup(ctx context.Context, ch chan<- prometheus.Metric) {
	var at time.Time
	var measured map[string]float64
	if err := m.db.QueryRow(ctx, newestBackup).Scan(&at, &measured); err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.lastOK, prometheus.GaugeValue, float64(at.Unix()))
	for _, part := range []string{"postgres", "redis", "config", "total"} {
		if v, ok := measured[part+"_bytes"]; ok {
			ch <- prometheus.MustNewConstMetric(m.size, prometheus.GaugeValue, v, part)
		}
	}
}

func boolValue(b *bool) float64 {
	if b != nil && *b {
		return 1
	}
	return 0
}
