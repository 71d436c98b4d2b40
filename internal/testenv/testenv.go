// Package testenv gives tests their own slice of the real services: a fresh
// Postgres database with the schema applied, a private Redis key prefix, and
// a Temporal dev server with private task queues. Nothing a test creates is
// visible to a running platform dev, and everything is removed afterwards.
//
// Environment: PLATFORM_TEST_DATABASE_URL (a server URL; default
// postgres://postgres@127.0.0.1:5432/postgres), PLATFORM_TEST_REDIS_URL
// (default redis://127.0.0.1:6379/0), PLATFORM_TEST_TEMPORAL_ADDRESS (use a
// running server instead of starting one) and PLATFORM_TEMPORAL_CLI.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/devserver"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/temporalclient"
)

// Suffix returns a short random string for unique names.
func Suffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Logger returns a logger that writes through t.Log, so output shows only
// for failing tests.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// DatabaseURL creates a fresh database with every migration applied and
// returns its URL; the database is dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	server := env("PLATFORM_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("PLATFORM_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/platform_test_" + Suffix()
	dbURL := u.String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := database.EnsureExists(ctx, dbURL); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := database.Drop(ctx, dbURL); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	if err := database.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return dbURL
}

// Postgres returns a pool on a fresh migrated database, and its URL.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := DatabaseURL(t)
	pool, err := database.Open(context.Background(), dbURL, 10)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the drop registered above
	return pool, dbURL
}

// RedisURL is the Redis server tests use.
func RedisURL() string { return env("PLATFORM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0") }

// Redis returns a client and a private key prefix; the prefix's keys are
// deleted when the test ends.
func Redis(t testing.TB) (goredis.UniversalClient, redis.Keys) {
	t.Helper()
	c, err := redis.Open(RedisURL())
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	keys := redis.Keys("test:" + Suffix() + ":")
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, string(keys)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, keys
}

var (
	devOnce   sync.Once
	devServer *devserver.Server
	devAddr   string
	devErr    error
)

// TemporalAddress returns the address of a Temporal frontend for tests:
// PLATFORM_TEST_TEMPORAL_ADDRESS when set, else a headless dev server on a
// free port, started once per test binary and stopped by Main.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	devOnce.Do(func() {
		if a := os.Getenv("PLATFORM_TEST_TEMPORAL_ADDRESS"); a != "" {
			devAddr = a
			return
		}
		cli, err := temporalCLI()
		if err != nil {
			devErr = err
			return
		}
		devServer, devErr = devserver.Start(context.Background(), devserver.Options{CLI: cli, Headless: true})
		if devErr == nil {
			devAddr = devServer.Address
		}
	})
	if devErr != nil {
		t.Fatalf("temporal dev server: %v", devErr)
	}
	return devAddr
}

// Main runs the package's tests and stops the dev server afterwards. Use it
// from TestMain in packages that call TemporalAddress.
func Main(m *testing.M) int {
	code := m.Run()
	devServer.Stop()
	return code
}

func temporalCLI() (string, error) {
	if p := os.Getenv("PLATFORM_TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", "temporal"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory; set PLATFORM_TEMPORAL_CLI")
		}
		dir = parent
	}
}

// Temporal returns a client of the test Temporal server, closed at the end.
// It is dialled as the platform dials, tracing interceptor included.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	c, err := temporalclient.Dial(context.Background(), temporalclient.Options{
		Address: TemporalAddress(t), Namespace: "default", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TaskQueue returns a task queue name no other test uses.
func TaskQueue(t testing.TB) string { return "test-" + Suffix() }
