package drill

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/workflows/drill"
)

// heartbeatWriteTimeout bounds each heartbeat write: a write blocked on a
// fenced or unpromoted server counts as failed instead of stalling the
// measurement.
const heartbeatWriteTimeout = 2 * time.Second

// dryRunBeats is how many acknowledged heartbeats a dry run waits for;
// steadyBeats, how many a failover waits for before the fence and after
// the first write on the new primary, so the RPO check has writes on both
// sides of it.
const (
	dryRunBeats = 20
	steadyBeats = 10
)

// Failover runs the failover scenario's fault: heartbeat writes through a
// read-write pool on PLATFORM_DATABASE_URL, then (driver sql) fence the
// primary, wait for the standby to replay the primary's WAL, promote it,
// and wait for a write to succeed. No write within max_unavailable_seconds
// stops the drill: the old primary is unfenced unless the standby was
// promoted (two writable primaries would be worse than none). Once the
// fence begins, an abort no longer interrupts: a half-done failover is the
// one outcome a drill must not leave behind.
func (a *Activities) Failover(ctx context.Context, in drill.FailoverInput) (drill.FailoverResult, error) {
	if in.Driver == drill.DriverPatroni {
		return a.failoverPatroni(ctx, in)
	}
	var res drill.FailoverResult
	primary, err := a.host(in.Primary)
	if err != nil {
		return res, err
	}
	standby, err := a.host(in.Standby)
	if err != nil {
		return res, err
	}
	defer keepAlive(ctx)()
	pool, err := a.heartbeatPool(ctx)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	hb, stop := startHeartbeats(ctx, pool, in)
	defer stop()

	if hb.waitAcks(ctx, steadyBeats, time.Now().Add(10*time.Second)) == 0 {
		return res, stopped("no heartbeat write succeeded before the fence", ctx.Err())
	}
	newPrimary := primary
	if in.Driver == drill.DriverDryRun {
		hb.waitAcks(ctx, dryRunBeats, time.Now().Add(time.Duration(in.MaxUnavailable)*time.Second))
	} else {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		crit, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(in.MaxUnavailable)*time.Second+2*time.Minute)
		defer cancel()
		if err := a.switchover(crit, primary, standby, hb, in, &res); err != nil {
			return res, err
		}
		newPrimary = standby
	}
	stop()
	if err := hb.lost(ctx, newPrimary.query, &res); err != nil {
		return res, err
	}
	if _, err := pool.Exec(ctx, `DELETE FROM drill_heartbeats WHERE drill_id = $1`, in.DrillID); err != nil {
		a.Log.Warn("failover drill heartbeats not deleted", "drill", in.DrillID, "error", err)
	}
	return res, nil
}

// startHeartbeats writes heartbeats through pool until stop is called
// (or ctx ends: an abort before the fault stops them too).
func startHeartbeats(ctx context.Context, pool *pgxpool.Pool, in drill.FailoverInput) (*heartbeats, func()) {
	hb := &heartbeats{pool: pool, drillID: in.DrillID, every: time.Duration(in.HeartbeatIntervalMS) * time.Millisecond}
	hbctx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	beating := make(chan struct{})
	go func() { defer close(beating); hb.run(hbctx) }()
	var once sync.Once
	return hb, func() { once.Do(func() { stopBeats(); <-beating }) }
}

// switchover fences primary, promotes standby and waits for a write.
func (a *Activities) switchover(ctx context.Context, primary, standby dbHost, hb *heartbeats, in drill.FailoverInput, res *drill.FailoverResult) error {
	res.FencedAt = time.Now().UTC()
	deadline := res.FencedAt.Add(time.Duration(in.MaxUnavailable) * time.Second)
	lsn, err := fence(ctx, primary)
	fenced := time.Now().UTC() // writes started from here cannot land on the old primary
	if err == nil {
		err = waitReplay(ctx, standby, lsn, deadline)
	}
	if err == nil {
		res.PromotedAt, err = promote(ctx, standby)
	}
	if err == nil {
		first, ok := hb.waitWrite(ctx, fenced, deadline)
		if ok {
			res.NewPrimary, res.FirstWriteAt = standby.Addr, first.end
			res.RTOSeconds = first.end.Sub(res.FencedAt).Seconds()
			hb.waitAcks(ctx, hb.acked()+steadyBeats, time.Now().Add(10*time.Second))
			return nil
		}
		err = fmt.Errorf("%w within %d s of the fence", errNoWrite, in.MaxUnavailable)
	}
	return stopped("failover stopped: "+a.unfenceUnlessPromoted(ctx, primary, standby), err)
}

// unfenceUnlessPromoted undoes the fence when the standby is still a
// standby, and says what it did.
func (a *Activities) unfenceUnlessPromoted(ctx context.Context, primary, standby dbHost) string {
	rec, err := standby.inRecovery(ctx)
	if err != nil || !rec {
		return fmt.Sprintf("%s was promoted (or did not answer), so %s stays fenced to avoid two writable primaries; see docs/runbooks/dr.md",
			standby.Addr, primary.Addr)
	}
	err = primary.query(ctx, func(c *pgx.Conn) error {
		return execAll(ctx, c, `ALTER SYSTEM RESET default_transaction_read_only`, `SELECT pg_reload_conf()`)
	})
	if err != nil {
		a.Log.Error("failover drill could not unfence the old primary", "host", primary.Addr, "error", err)
		return fmt.Sprintf("UNFENCE OF %s FAILED (%v): run ALTER SYSTEM RESET default_transaction_read_only and pg_reload_conf() there", primary.Addr, err)
	}
	return primary.Addr + " unfenced; the standby was not promoted"
}

// fence makes primary refuse writes: read-only by default, confirmed on a
// new session (pg_reload_conf only signals), then every client session
// but ours terminated. It returns the primary's WAL position after that.
func fence(ctx context.Context, primary dbHost) (string, error) {
	var lsn string
	err := primary.query(ctx, func(c *pgx.Conn) error {
		err := execAll(ctx, c, `ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`)
		if err != nil {
			return err
		}
		if err := readOnly(ctx, primary); err != nil {
			return err
		}
		err = execAll(ctx, c, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`)
		if err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn)
	})
	if err != nil {
		return "", fmt.Errorf("fence: %w", err)
	}
	return lsn, nil
}

// readOnly waits until a new session on h is read-only.
func readOnly(ctx context.Context, h dbHost) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ro string
		err := h.query(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, `SHOW transaction_read_only`).Scan(&ro) })
		switch {
		case err != nil:
			return err
		case ro == "on":
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("new sessions are still read-write 10 s after pg_reload_conf()")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReplay waits until standby has replayed the fenced primary's WAL, so
// that promoting it loses nothing the primary acknowledged.
func waitReplay(ctx context.Context, standby dbHost, lsn string, deadline time.Time) error {
	return standby.query(ctx, func(c *pgx.Conn) error {
		for {
			var caughtUp bool
			if err := c.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&caughtUp); err != nil {
				return err
			}
			if caughtUp {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the standby did not replay up to %s before the deadline", lsn)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// promote promotes standby and clears the synchronous_standby_names it
// inherited from the primary: with it, every write on the new primary
// would wait forever for a standby that does not exist.
func promote(ctx context.Context, standby dbHost) (time.Time, error) {
	var at time.Time
	err := standby.query(ctx, func(c *pgx.Conn) error {
		var ok bool
		if err := c.QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("pg_promote did not finish within 60 s")
		}
		at = time.Now().UTC()
		return execAll(ctx, c, `ALTER SYSTEM SET synchronous_standby_names = ''`, `SELECT pg_reload_conf()`)
	})
	if err != nil {
		return at, fmt.Errorf("promote: %w", err)
	}
	return at, nil
}

// execAll runs each statement on its own (ALTER SYSTEM refuses a
// transaction block).
func execAll(ctx context.Context, c *pgx.Conn, stmts ...string) error {
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// heartbeatPool is a small pool on the platform's multi-host URL that
// connects only to a read-write host, as the platform's own pool does
// with target_session_attrs=read-write.
func (a *Activities) heartbeatPool(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(a.Config.DatabaseURL)
	if err != nil {
		return nil, stopped("parse PLATFORM_DATABASE_URL", err)
	}
	cfg.MaxConns, cfg.MinConns = 2, 0
	cfg.ConnConfig.ConnectTimeout = heartbeatWriteTimeout
	cfg.ConnConfig.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	cfg.ConnConfig.RuntimeParams["application_name"] = "platform-drill-heartbeat"
	return pgxpool.NewWithConfig(ctx, cfg)
}

// beat is one heartbeat write.
type beat struct {
	seq        int64
	start, end time.Time
	ok         bool
}

// heartbeats writes one row per interval and remembers every attempt.
type heartbeats struct {
	pool    *pgxpool.Pool
	drillID string
	every   time.Duration
	mu      sync.Mutex
	beats   []beat
}

func (h *heartbeats) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for seq := int64(1); ; seq++ {
		b := beat{seq: seq, start: time.Now().UTC()}
		wctx, cancel := context.WithTimeout(ctx, heartbeatWriteTimeout)
		_, err := h.pool.Exec(wctx, `INSERT INTO drill_heartbeats (drill_id, seq, at) VALUES ($1, $2, clock_timestamp())`, h.drillID, seq)
		cancel()
		if ctx.Err() != nil {
			return // cut short by the stop: neither acknowledged nor failed
		}
		b.end, b.ok = time.Now().UTC(), err == nil
		h.mu.Lock()
		h.beats = append(h.beats, b)
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitWrite waits for the first acknowledged write that started at or
// after since, until deadline.
func (h *heartbeats) waitWrite(ctx context.Context, since, deadline time.Time) (beat, bool) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		h.mu.Lock()
		for _, b := range h.beats {
			if b.ok && !b.start.Before(since) {
				h.mu.Unlock()
				return b, true
			}
		}
		h.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return beat{}, false
}

// waitAcks waits for n acknowledged writes in all, until deadline, and
// returns how many there are.
func (h *heartbeats) waitAcks(ctx context.Context, n int, deadline time.Time) int {
	for {
		acked := h.acked()
		if acked >= n || ctx.Err() != nil || time.Now().After(deadline) {
			return acked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *heartbeats) acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, b := range h.beats {
		if b.ok {
			n++
		}
	}
	return n
}

// connFunc runs fn on a connection to one server: a dbHost's query, or
// poolQuery on the read-write pool.
type connFunc func(ctx context.Context, fn func(*pgx.Conn) error) error

// poolQuery runs fn on a connection of pool.
func poolQuery(pool *pgxpool.Pool) connFunc {
	return func(ctx context.Context, fn func(*pgx.Conn) error) error {
		return pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return fn(c.Conn()) })
	}
}

// lost looks for every acknowledged heartbeat on host and fills the
// counts and the RPO: acknowledged writes missing there, and the seconds
// between the last acknowledged write that is there and the last one
// acknowledged at all.
func (h *heartbeats) lost(ctx context.Context, query connFunc, res *drill.FailoverResult) error {
	present := map[int64]bool{}
	err := query(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT seq FROM drill_heartbeats WHERE drill_id = $1`, h.drillID)
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		for _, s := range seqs {
			present[s] = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read heartbeats on the new primary: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	res.Acknowledged, res.Failed, res.RPOWrites, res.RPOSeconds = rpo(h.beats, present)
	return nil
}

// rpo counts acknowledged and failed beats and the acknowledged ones not
// present, and the seconds from the last present acknowledged beat to the
// last acknowledged beat.
func rpo(beats []beat, present map[int64]bool) (acked, failed, missing int, seconds float64) {
	var lastAcked, lastKept time.Time
	for _, b := range beats {
		if !b.ok {
			failed++
			continue
		}
		acked++
		if lastKept.IsZero() {
			lastKept = b.start // nothing kept at all: the loss counts from the first write
		}
		lastAcked = b.end
		if present[b.seq] {
			lastKept = b.end
		} else {
			missing++
		}
	}
	if missing > 0 {
		seconds = lastAcked.Sub(lastKept).Seconds()
	}
	return acked, failed, missing, seconds
}
