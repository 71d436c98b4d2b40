// Package database opens the platform's Postgres pool, creates the database
// when asked to, applies the embedded schema migrations and runs transactions.
package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Open connects a pool to url with the platform's pool limits and checks
// that the server answers. Its queries are traced with the global tracer
// provider (see OpenTraced).
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return OpenTraced(ctx, url, maxConns, otel.GetTracerProvider())
}

// OpenTraced is Open with queries traced by tp: every query, batch and copy
// made under a recording span gets a client span (otelpgx), with the
// statement text but never its arguments.
func OpenTraced(ctx context.Context, url string, maxConns int32, tp trace.TracerProvider) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.MinConns = min(2, maxConns)
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnLifetimeJitter = 5 * time.Minute
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	// Name the connections so an operator can tell them apart in pg_stat_activity.
	cfg.ConnConfig.RuntimeParams["application_name"] = "platform"
	cfg.ConnConfig.Tracer = Tracer(tp, cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// Tracer is the pgx tracer of the platform's pools. Pool acquisition gets no
// span of its own (it is in the query's duration), and query metrics stay
// with the platform's own Prometheus collectors. The connection's attributes
// are the pool's, computed once: otelpgx would copy the connection's whole
// configuration on every query to read them (a sixth of a traced request's
// allocations in make bench-api). A multi-host URL names no one server.
func Tracer(tp trace.TracerProvider, cfg *pgx.ConnConfig) pgx.QueryTracer {
	attrs := []attribute.KeyValue{semconv.DBNamespace(cfg.Database), semconv.UserName(cfg.User)} // otelpgx adds db.system.name
	if len(cfg.Fallbacks) == 0 {
		attrs = append(attrs, semconv.ServerAddress(cfg.Host), semconv.ServerPort(int(cfg.Port)))
	}
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithMeterProvider(noop.NewMeterProvider()),
		otelpgx.WithDisableAcquireTracer(), otelpgx.WithDisableConnectionDetailsInAttributes(),
		otelpgx.WithTracerAttributes(attrs...))
}

// EnsureExists creates the database named in url when it does not exist yet,
// connecting to the server's "postgres" maintenance database to do so.
func EnsureExists(ctx context.Context, url string) error {
	conn, name, err := maintenance(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Drop removes the database named in url; tests use it to clean up.
func Drop(ctx context.Context, url string) error {
	conn, name, err := maintenance(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// maintenance connects to the server of url through its "postgres"
// database and returns the name of the database url names.
func maintenance(ctx context.Context, url string) (*pgx.Conn, string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, "", fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("connect to maintenance database: %w", err)
	}
	return conn, name, nil
}

// Beginner is what InTx needs: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise. Serialization failures and deadlocks are retried a few
// times, so fn must be safe to run again.
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	const attempts = 3
	var err error
	for i := 0; i < attempts; i++ {
		err = inTxOnce(ctx, db, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func inTxOnce(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
