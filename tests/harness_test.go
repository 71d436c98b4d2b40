package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/flags/provider"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/worker"
)

// stack is one test's platform: API over httptest, a worker on a private
// task queue, and the connections behind them.
type stack struct {
	t        testing.TB
	cfg      config.Config
	URL      string
	DB       *pgxpool.Pool
	DBURL    string
	Redis    goredis.UniversalClient // the tests' own client
	APIRedis goredis.UniversalClient // the API's client; close it to take Redis away from the API
	Keys     redis.Keys
	Temporal client.Client
	API      *api.Server
	Registry *prometheus.Registry // the API's and the worker's metrics
	Flags    *provider.Runtime    // the API's OpenFeature runtime
	Backups  *backupstore.Store   // the test's own backup folder
}

// testConfig is the default configuration pointed at the test's resources.
func testConfig(t testing.TB, dbURL string, keys redis.Keys) config.Config {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = testenv.RedisURL()
	cfg.RedisPrefix = string(keys)
	cfg.TemporalAddress = testenv.TemporalAddress(t)
	cfg.TaskQueue = testenv.TaskQueue(t)
	cfg.ControlTaskQueue = testenv.TaskQueue(t)
	cfg.WorkerMaxActivities = 50
	cfg.DrainTimeout = 5 * time.Second
	cfg.SecretKey = "test-secret-key-test-secret-key-0123456789"
	// Webhook tests deliver to receivers on loopback, as platform dev allows.
	cfg.WebhookAllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	// Backups go to a folder of the test's own; drills run when a test
	// starts them, never on a schedule.
	cfg.BackupURL = "file://" + t.TempDir()
	cfg.DrillScratchDir = t.TempDir()
	cfg.DrillBackupSchedule, cfg.DrillRestoreSchedule = "", ""
	return cfg
}

// newStack starts the API and a worker; mutate adjusts the configuration.
func newStack(t testing.TB, mutate ...func(*config.Config)) *stack {
	t.Helper()
	s := newAPIStack(t, mutate...)
	s.startWorker()
	return s
}

// newAPIStack starts the API without a worker, for tests that run their own.
func newAPIStack(t testing.TB, mutate ...func(*config.Config)) *stack {
	t.Helper()
	db, dbURL := testenv.Postgres(t)
	return newAPIStackOn(t, db, dbURL, mutate...)
}

// newAPIStackOn is newAPIStack on a database of the test's choosing.
func newAPIStackOn(t testing.TB, db *pgxpool.Pool, dbURL string, mutate ...func(*config.Config)) *stack {
	t.Helper()
	return newAPIStackTraced(t, db, dbURL, nil, mutate...)
}

// newAPIStackTraced is newAPIStackOn with the API's spans made by tp and,
// when tp is set, its Postgres pool and Redis client of its own, traced
// by tp too (the stack's DB and Redis stay untraced).
func newAPIStackTraced(t testing.TB, db *pgxpool.Pool, dbURL string, tp trace.TracerProvider, mutate ...func(*config.Config)) *stack {
	t.Helper()
	rdb, keys := testenv.Redis(t)
	s := &stack{t: t, DB: db, Redis: rdb, Keys: keys, Temporal: testenv.Temporal(t)}
	s.stopScalingControllers(t)
	s.cfg = testConfig(t, dbURL, keys)
	for _, m := range mutate {
		m(&s.cfg)
	}
	s.DBURL = s.cfg.DatabaseURL
	log := testenv.Logger(t)
	apiRedis, err := redis.Open(s.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	apiDB := db
	if tp != nil {
		if err := redis.Trace(apiRedis, tp); err != nil {
			t.Fatal(err)
		}
		if apiDB, err = database.OpenTraced(context.Background(), s.DBURL, 10, tp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(apiDB.Close)
	}
	t.Cleanup(func() { _ = apiRedis.Close() })
	s.APIRedis = apiRedis
	s.Registry = telemetry.NewRegistry()
	if s.cfg.DatabaseDirectURL == "" {
		s.Flags = startFlagRuntime(t, db, s.Registry)
	} else { // behind a transaction pooler, LISTEN dials Postgres directly
		session, err := database.SessionConfig(s.cfg.DatabaseDirectURL)
		if err != nil {
			t.Fatal(err)
		}
		// Polled as configured (30s by default), so a change seen sooner
		// came by notification.
		s.Flags = startFlagRuntimeOn(t, session, s.Registry, s.cfg.FlagsPollInterval)
	}
	backups, err := backupstore.Open(context.Background(), s.cfg.BackupURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backups.Close() })
	s.Backups = backups
	reads := startReadRouter(t, s.cfg, apiDB, apiRedis, s.Registry)
	srv, err := api.New(api.Deps{Config: s.cfg, DB: apiDB, Reads: reads, Redis: apiRedis, Keys: keys, Temporal: s.Temporal,
		Registry: s.Registry, Log: log, Flags: s.Flags, Backups: backups, Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	s.API = srv
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	usageCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan error, 1)
	go func() { usageDone <- srv.RunUsage(usageCtx) }()
	t.Cleanup(func() { stopUsage(); <-usageDone })
	return s
}

// startReadRouter starts the API's read router when the configuration
// names read replicas, as the platform's api command does.
func startReadRouter(t testing.TB, cfg config.Config, db *pgxpool.Pool, rdb goredis.UniversalClient, reg prometheus.Registerer) *database.Router {
	if len(cfg.DatabaseReadURLs) == 0 {
		return nil
	}
	r, err := database.NewRouter(db, cfg.DatabaseReadURLs, cfg.DatabaseMaxConns, database.RouterOptions{
		MaxLagTime: cfg.ReplicaMaxLag.Time, MaxLagBytes: cfg.ReplicaMaxLag.Bytes,
		PollInterval: cfg.ReplicaPollInterval, WriteTTL: cfg.ReplicaWriteTTL,
		Writes: database.RedisWrites{Client: rdb, Prefix: cfg.RedisPrefix}, Registry: reg, Log: testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func (s *stack) startWorker() {
	// The worker gets its own client, as a separate process would: a client
	// shared with the API would hide a start by function instead of by the
	// registered workflow name.
	workerClient := testenv.Temporal(s.t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Deps{Temporal: workerClient, TaskQueue: s.cfg.TaskQueue, DB: s.DB,
			Redis: s.Redis, Keys: s.Keys, Log: testenv.Logger(s.t), DrainTimeout: 2 * time.Second,
			ActivityPollers: 2, WorkflowPollers: 2, MaxActivities: s.cfg.WorkerMaxActivities,
			WebhookAllowedNetworks: s.cfg.WebhookAllowedNetworks, WebhookTimeout: s.cfg.WebhookTimeout,
			Registry: s.Registry, ControlTaskQueue: s.cfg.ControlTaskQueue,
			ControlMaxActivities: s.cfg.WorkerControlMaxActivities,
			WebhookMaxInFlight:   s.cfg.WebhookMaxInFlightPerPrincipal, WebhookRate: s.cfg.WebhookRatePerPrincipal.Limit,
			WebhookRatePeriod: s.cfg.WebhookRatePerPrincipal.Period,
			PrometheusURL:     s.cfg.PrometheusURL,
			Config:            s.cfg, Backups: s.Backups})
	}()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("worker: %v", err)
		}
	})
}

// response is a decoded HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body into a map.
func (r response) Map(t *testing.T) map[string]any {
	m := map[string]any{}
	r.JSON(t, &m)
	return m
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON). headers come in name, value pairs.
func (s *stack) do(method, path string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read %s %s: %v", method, path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// key creates an API key directly in the store and returns its secret.
func (s *stack) key(principal string, scopes ...string) string {
	s.t.Helper()
	_, secret, err := (&keys.Store{DB: s.DB}).Create(context.Background(), keys.NewKey{
		ID: ids.New(ids.Key), Principal: principal, Name: "test", Scopes: scopes})
	if err != nil {
		s.t.Fatal(err)
	}
	return secret
}

// bearer returns the Authorization header pair for secret.
func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

// with appends header pairs.
func with(pairs ...[]string) []string {
	var out []string
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}
