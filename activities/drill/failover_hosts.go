package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/workflows/drill"
)

// dbHost is one host of the platform's multi-host database URL, with a
// configuration that connects to it alone, whatever its role.
type dbHost struct {
	Addr string
	cfg  *pgx.ConnConfig
}

// dbHosts derives the hosts of PLATFORM_DATABASE_DIRECT_URL (else
// PLATFORM_DATABASE_URL), in its order: behind a pooler the direct URL names
// the servers. The failover drill dials only these: never an address from a
// drill's input.
func (a *Activities) dbHosts() ([]dbHost, error) {
	base, err := pgx.ParseConfig(a.Config.SessionDatabaseURL())
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("parse PLATFORM_DATABASE_URL", "BadConfig", err)
	}
	tries := append([]*pgconn.FallbackConfig{{Host: base.Host, Port: base.Port, TLSConfig: base.TLSConfig}}, base.Fallbacks...)
	var hosts []dbHost
	index := map[string]int{}
	for _, fb := range tries {
		addr := net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))
		if i, ok := index[addr]; ok { // sslmode=prefer: the same host without TLS
			hosts[i].cfg.Fallbacks = append(hosts[i].cfg.Fallbacks, fb)
			continue
		}
		c := base.Copy()
		c.Host, c.Port, c.TLSConfig, c.Fallbacks = fb.Host, fb.Port, fb.TLSConfig, nil
		c.ValidateConnect, c.ConnectTimeout = nil, 5*time.Second
		c.RuntimeParams["application_name"] = "platform-drill"
		index[addr] = len(hosts)
		hosts = append(hosts, dbHost{Addr: addr, cfg: c})
	}
	return hosts, nil
}

// host returns the host of PLATFORM_DATABASE_URL at addr.
func (a *Activities) host(addr string) (dbHost, error) {
	hosts, err := a.dbHosts()
	if err != nil {
		return dbHost{}, err
	}
	for _, h := range hosts {
		if h.Addr == addr {
			return h, nil
		}
	}
	return dbHost{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%q is not a host of PLATFORM_DATABASE_URL", addr), "BadInput", nil)
}

func (h dbHost) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, h.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", h.Addr, err)
	}
	return conn, nil
}

// query runs fn on a connection of its own to h.
func (h dbHost) query(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := h.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := fn(conn); err != nil {
		return fmt.Errorf("%s: %w", h.Addr, err)
	}
	return nil
}

func (h dbHost) inRecovery(ctx context.Context) (bool, error) {
	var rec bool
	err := h.query(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&rec) })
	return rec, err
}

// CheckReplication finds the primary (the one host not in recovery) and
// the first host whose WAL receiver is streaming, and measures how far the
// standby's replay is behind the primary's WAL, in bytes and (as the
// primary's pg_stat_replication sees it) in seconds.
func (a *Activities) CheckReplication(ctx context.Context) (drill.ReplicationResult, error) {
	hosts, err := a.dbHosts()
	if err != nil {
		return drill.ReplicationResult{}, err
	}
	var res drill.ReplicationResult
	var primary, standby *dbHost
	for i := range hosts {
		h := &hosts[i]
		rec, err := h.inRecovery(ctx)
		switch {
		case err != nil:
			return res, err
		case !rec && primary != nil:
			return res, noStandby(fmt.Sprintf("both %s and %s are primaries", primary.Addr, h.Addr))
		case !rec:
			primary = h
		case standby == nil:
			var status string
			err := h.query(ctx, func(c *pgx.Conn) error {
				return c.QueryRow(ctx, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')`).Scan(&status)
			})
			if err != nil {
				return res, err
			}
			if status == "streaming" {
				standby = h
			}
		}
	}
	if primary == nil || standby == nil {
		return res, noStandby(fmt.Sprintf("PLATFORM_DATABASE_URL names %d hosts; need one primary and one streaming standby", len(hosts)))
	}
	res.Primary, res.Standby = primary.Addr, standby.Addr
	var lsn string
	err = primary.query(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text,
			coalesce((SELECT max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication WHERE state = 'streaming'), 0),
			coalesce((SELECT string_agg(application_name || ' ' || sync_state, ', ') FROM pg_stat_replication WHERE state = 'streaming'), '')`).
			Scan(&lsn, &res.LagSeconds, &res.SyncState)
	})
	if err != nil {
		return res, err
	}
	if res.SyncState == "" {
		return res, noStandby("the primary's pg_stat_replication shows no streaming standby")
	}
	err = standby.query(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT greatest(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::float8`, lsn).Scan(&res.LagBytes)
	})
	return res, err
}

func noStandby(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, drill.NoStandbyErrorType, nil)
}

// stopped is the failover's stop condition or a failed fence or promotion.
func stopped(msg string, cause error) error {
	return temporal.NewNonRetryableApplicationError(msg, drill.FailoverStoppedErrorType, cause)
}

var errNoWrite = errors.New("no successful write")
