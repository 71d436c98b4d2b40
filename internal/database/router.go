package database

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Querier is what a read needs: a pool, primary or replica.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Reasons a routed read went to the primary: a bounded set, the values of
// the fallback metric's reason label.
const (
	ReasonWrite       = "write"        // the request writes: all of it stays on the primary
	ReasonUnscoped    = "unscoped"     // no principal in the context (not an API read)
	ReasonWritesUnkn  = "redis_down"   // the principal's last write position is unknown
	ReasonNotReplayed = "not_replayed" // no usable replica has replayed the principal's last write
	ReasonLagging     = "lagging"      // every reachable replica lags beyond the bound
	ReasonUnreachable = "unreachable"  // no replica answered its last poll
)

// RouterOptions configure a Router.
type RouterOptions struct {
	// MaxLagTime and MaxLagBytes bound how far behind a replica may be and
	// still serve reads; zero disables a bound. The time bound is also
	// capped at WriteTTL, so a write forgotten after WriteTTL is always
	// on every replica that serves.
	MaxLagTime  time.Duration
	MaxLagBytes int64
	// PollInterval is how often the primary's WAL position and each
	// replica's replay position are read.
	PollInterval time.Duration
	// WriteTTL is how long a principal's last write position is kept.
	WriteTTL time.Duration
	Writes   WritePositions
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Router sends each read to the primary or to a replica that is current
// enough for the principal asking: read-your-writes across API processes,
// through the write positions kept in Redis.
type Router struct {
	primary  *pgxpool.Pool
	replicas []*replica
	opts     RouterOptions
	next     atomic.Uint64 // round robin among usable replicas

	mu      sync.Mutex
	samples []sample // the primary's WAL position over time, oldest first

	// writesDownUntil sends every read to the primary for a while after
	// a write position could not be saved: another read may depend on it.
	writesDownUntil atomic.Int64

	queries   *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	stop      context.CancelFunc
	done      chan struct{}
}

type replica struct {
	pool  *pgxpool.Pool
	state atomic.Pointer[replicaState]
}

// replicaState is what the last poll of a replica found.
type replicaState struct {
	ok       bool   // answered and is in recovery
	replayed uint64 // pg_last_wal_replay_lsn()
	polledAt time.Time
}

// sample is the primary's WAL position at a time.
type sample struct {
	at  time.Time
	lsn uint64
}

// NewRouter opens a pool per replica URL and starts polling. A replica
// that cannot be reached now is polled like any other and serves once it
// answers. Close stops the polling and closes the replicas' pools (not the
// primary's).
func NewRouter(primary *pgxpool.Pool, replicaURLs []string, maxConns int32, opts RouterOptions) (*Router, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Router{primary: primary, opts: opts, done: make(chan struct{}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "database_queries_total",
			Help: "Reads routed by the read router, by the pool that served them (primary or replica).",
		}, []string{"pool"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "database_primary_fallbacks_total",
			Help: "Routed reads sent to the primary although replicas are configured, by reason.",
		}, []string{"reason"}),
	}
	for _, pool := range []string{"primary", "replica"} {
		r.queries.WithLabelValues(pool)
	}
	for _, reason := range []string{ReasonWrite, ReasonUnscoped, ReasonWritesUnkn, ReasonNotReplayed, ReasonLagging, ReasonUnreachable} {
		r.fallbacks.WithLabelValues(reason)
	}
	if opts.Registry != nil {
		if err := registerAll(opts.Registry, r.queries, r.fallbacks); err != nil {
			return nil, err
		}
	}
	for _, u := range replicaURLs {
		pool, err := openLazy(u, maxConns)
		if err != nil {
			r.closeReplicas()
			return nil, err
		}
		rep := &replica{pool: pool}
		rep.state.Store(&replicaState{})
		r.replicas = append(r.replicas, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.poll(ctx)
	go r.run(ctx)
	return r, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register read router metrics: %w", err)
		}
	}
	return nil
}

// openLazy makes a replica's pool without connecting: a replica that is
// down at start must not stop the API.
func openLazy(url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database read url: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = "platform-read"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open database read pool: %w", err)
	}
	return pool, nil
}

// Close stops polling and closes the replicas' pools.
func (r *Router) Close() {
	r.stop()
	<-r.done
	r.closeReplicas()
}

func (r *Router) closeReplicas() {
	for _, rep := range r.replicas {
		rep.pool.Close()
	}
}

// Primary is the primary's pool: writes, transactions and reads that must
// be current.
func (r *Router) Primary() *pgxpool.Pool { return r.primary }

// Read returns where principal's read goes now: a replica that is within
// the lag bound and has replayed principal's last write, else the primary.
// An empty principal reads from the primary.
func (r *Router) Read(ctx context.Context, principal string) Querier {
	q, reason := r.choose(ctx, principal)
	if reason != "" {
		r.fallbacks.WithLabelValues(reason).Inc()
	}
	return q
}

func (r *Router) choose(ctx context.Context, principal string) (Querier, string) {
	primary := counted{r.primary, r.queries.WithLabelValues("primary")}
	if len(r.replicas) == 0 {
		return primary, ""
	}
	if principal == "" {
		return primary, ReasonUnscoped
	}
	if time.Now().UnixNano() < r.writesDownUntil.Load() {
		return primary, ReasonWritesUnkn
	}
	last, err := r.opts.Writes.Last(ctx, principal)
	if err != nil {
		return primary, ReasonWritesUnkn
	}
	rep, reason := r.pick(last, time.Now())
	if rep == nil {
		return primary, reason
	}
	return counted{rep.pool, r.queries.WithLabelValues("replica")}, ""
}

// pick returns a usable replica that has replayed position last, round
// robin, or the reason there is none.
func (r *Router) pick(last uint64, now time.Time) (*replica, string) {
	var usable []*replica
	reason := ReasonUnreachable
	for _, rep := range r.replicas {
		st := rep.state.Load()
		if !st.ok || now.Sub(st.polledAt) > 3*r.opts.PollInterval {
			continue
		}
		if r.lagging(st, now) {
			reason = ReasonLagging
			continue
		}
		if st.replayed < last {
			reason = ReasonNotReplayed
			continue
		}
		usable = append(usable, rep)
	}
	if len(usable) == 0 {
		return nil, reason
	}
	return usable[r.next.Add(1)%uint64(len(usable))], ""
}

// lagging says whether a replica that has replayed st.replayed is beyond
// the bounds: in bytes, behind the primary's last known position; in time,
// since the newest moment the primary had written no more than it.
func (r *Router) lagging(st *replicaState, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return true
	}
	head := r.samples[len(r.samples)-1].lsn
	if r.opts.MaxLagBytes > 0 && head > st.replayed && head-st.replayed > uint64(r.opts.MaxLagBytes) {
		return true
	}
	bound := r.timeBound()
	if bound <= 0 {
		return false
	}
	for i := len(r.samples) - 1; i >= 0; i-- {
		if r.samples[i].lsn <= st.replayed {
			return now.Sub(r.samples[i].at) > bound
		}
	}
	return true // behind everything the window remembers
}

// timeBound is the time lag bound: MaxLagTime, capped at WriteTTL.
func (r *Router) timeBound() time.Duration {
	b := r.opts.MaxLagTime
	if r.opts.WriteTTL > 0 && (b <= 0 || r.opts.WriteTTL < b) {
		b = r.opts.WriteTTL
	}
	return b
}

// RememberWrite records the primary's current WAL position as principal's
// last write. Call it after the write committed and before the response
// goes out. When it cannot be recorded, every read of this process goes to
// the primary for WriteTTL.
func (r *Router) RememberWrite(ctx context.Context, principal string) {
	if len(r.replicas) == 0 || principal == "" {
		return
	}
	lsn, err := currentLSN(ctx, r.primary)
	if err == nil {
		err = r.opts.Writes.Remember(ctx, principal, lsn, r.opts.WriteTTL)
	}
	if err != nil {
		r.writesDownUntil.Store(time.Now().Add(r.opts.WriteTTL).UnixNano())
		r.opts.Log.Warn("read router: could not record a write position; reads go to the primary", "error", err)
	}
}

func currentLSN(ctx context.Context, db Querier) (uint64, error) {
	var lsn int64
	if err := db.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("read the primary's wal position: %w", err)
	}
	return uint64(lsn), nil
}

// run polls until ctx is done.
func (r *Router) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.poll(ctx)
		}
	}
}

// poll reads the primary's position first, then each replica's, so a
// replica is never judged against a position newer than its own reading.
func (r *Router) poll(ctx context.Context) {
	if len(r.replicas) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, r.opts.PollInterval)
	defer cancel()
	now := time.Now()
	if lsn, err := currentLSN(pctx, r.primary); err == nil {
		r.addSample(sample{at: now, lsn: lsn})
	} else if ctx.Err() == nil {
		r.opts.Log.Warn("read router: primary poll failed", "error", err)
	}
	for _, rep := range r.replicas {
		rep.state.Store(pollReplica(pctx, rep.pool))
	}
}

// addSample keeps the primary's positions of the last window: long enough
// to judge any replica within the time bound.
func (r *Router) addSample(s sample) {
	window := 2*r.timeBound() + 2*r.opts.PollInterval
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	drop := 0
	for drop < len(r.samples)-1 && s.at.Sub(r.samples[drop].at) > window {
		drop++
	}
	r.samples = append(r.samples[:0], r.samples[drop:]...)
}

func pollReplica(ctx context.Context, pool *pgxpool.Pool) *replicaState {
	var replayed *int64
	err := pool.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END`).Scan(&replayed)
	if err != nil || replayed == nil { // down, or promoted: not a replica of this primary any more
		return &replicaState{polledAt: time.Now()}
	}
	return &replicaState{ok: true, replayed: uint64(*replayed), polledAt: time.Now()}
}

// counted counts each query on the pool it goes to.
type counted struct {
	pool *pgxpool.Pool
	n    prometheus.Counter
}

func (c counted) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n.Inc()
	return c.pool.Query(ctx, sql, args...)
}

func (c counted) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n.Inc()
	return c.pool.QueryRow(ctx, sql, args...)
}

// intent is how the current request reads: set by the API's middleware.
type intent struct {
	principal string
	write     bool
}

type intentKey struct{}

// ReadingAs marks ctx as a read-only request of principal: its reads may go
// to a replica.
func ReadingAs(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, intentKey{}, intent{principal: principal})
}

// Writing marks ctx as a request that writes: all its reads stay on the
// primary.
func Writing(ctx context.Context) context.Context {
	return context.WithValue(ctx, intentKey{}, intent{write: true})
}

// For returns where a store's read in ctx goes: with no router (nil),
// fallback; in a writing request, the primary; else as Read decides for the
// request's principal.
func (r *Router) For(ctx context.Context, fallback Querier) Querier {
	if r == nil {
		return fallback
	}
	in, _ := ctx.Value(intentKey{}).(intent)
	if in.write && len(r.replicas) > 0 {
		r.fallbacks.WithLabelValues(ReasonWrite).Inc()
		return counted{r.primary, r.queries.WithLabelValues("primary")}
	}
	return r.Read(ctx, in.principal)
}
