// Package usage records one usage event per API request and serves the
// hourly roll-ups of them (GET /v1/usage) that the analytics.rollup job
// writes.
//
// Recording never slows a request: events go to an in-memory buffer that a
// background loop copies into Postgres in batches (COPY, every second or
// every 500 events). The buffer is bounded; when Postgres cannot keep up,
// new events are dropped and counted rather than blocking requests or
// growing without limit. What is buffered is flushed at shutdown, after the
// last request has drained.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Anonymous is the principal of unauthenticated requests.
const Anonymous = "anonymous"

// Event is one API request.
type Event struct {
	At        time.Time
	Principal string
	Route     string // method and route template, such as "GET /v1/jobs/{id}"
	Status    int
	Latency   time.Duration
}

const (
	// batchSize events trigger a flush before the tick.
	batchSize = 500
	// flushEvery bounds how old a buffered event gets.
	flushEvery = time.Second
	// maxBuffered bounds memory: at most this many events wait.
	maxBuffered = 20000
	// finalFlushTimeout bounds the flush at shutdown.
	finalFlushTimeout = 5 * time.Second
)

// Recorder buffers events and writes them in batches.
type Recorder struct {
	db   *pgxpool.Pool
	log  *slog.Logger
	kick chan struct{}
	// failing is only touched by Run's goroutine.
	failing bool

	mu  sync.Mutex
	buf []Event

	written prometheus.Counter
	dropped prometheus.Counter
}

// NewRecorder returns a recorder writing to db; its counters are registered
// on reg.
func NewRecorder(db *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Recorder {
	r := &Recorder{
		db: db, log: log, kick: make(chan struct{}, 1), buf: make([]Event, 0, batchSize),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usage_events_written_total", Help: "API usage events written to Postgres.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usage_events_dropped_total", Help: "API usage events dropped because the buffer was full.",
		}),
	}
	reg.MustRegister(r.written, r.dropped)
	return r
}

// Record buffers e; it never blocks on I/O. A full buffer drops e.
func (r *Recorder) Record(e Event) {
	r.mu.Lock()
	if len(r.buf) >= maxBuffered {
		r.mu.Unlock()
		r.dropped.Inc()
		return
	}
	r.buf = append(r.buf, e)
	full := len(r.buf) >= batchSize
	r.mu.Unlock()
	if full {
		select {
		case r.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
}

// Run flushes every second, or sooner when a batch is full, until ctx is
// done; then it flushes what is left. Cancel ctx only once requests have
// drained, so their events are in the last flush.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			return r.Flush(fctx)
		case <-t.C:
		case <-r.kick:
		}
		r.report(ctx, r.Flush(ctx))
	}
}

// report logs the first failed flush of an outage and the recovery, not
// every second in between.
func (r *Recorder) report(ctx context.Context, err error) {
	switch {
	case err != nil && ctx.Err() == nil && !r.failing:
		r.failing = true
		r.log.WarnContext(ctx, "usage events not written; buffering them (bounded) until Postgres answers", "error", err)
	case err == nil && r.failing:
		r.failing = false
		r.log.InfoContext(ctx, "usage events written again")
	}
}

var eventColumns = []string{"at", "principal", "route", "status", "latency_ms"}

// Flush writes every buffered event with one COPY. On failure the events go
// back to the buffer, as many as fit.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.buf
	r.buf = make([]Event, 0, batchSize)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	_, err := r.db.CopyFrom(ctx, pgx.Identifier{"usage_events"}, eventColumns,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			e := batch[i]
			return []any{e.At, e.Principal, e.Route, int16(e.Status), float64(e.Latency.Microseconds()) / 1000}, nil
		}))
	if err != nil {
		r.requeue(batch)
		return err
	}
	r.written.Add(float64(len(batch)))
	return nil
}

func (r *Recorder) requeue(batch []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	room := max(maxBuffered-len(r.buf), 0)
	if len(batch) > room {
		r.dropped.Add(float64(len(batch) - room))
		batch = batch[len(batch)-room:]
	}
	r.buf = append(batch, r.buf...)
}
