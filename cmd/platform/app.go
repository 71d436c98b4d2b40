package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/activities/retention"
	"github.com/acme/platform/api"
	"github.com/acme/platform/flags/provider"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/internal/temporalclient"
	"github.com/acme/platform/worker"
)

// loadConfig reads the configuration of cmd and returns it with a logger in
// the command's default format.
func loadConfig(cmd *cobra.Command, defaultFormat string) (config.Config, *slog.Logger, error) {
	cfg, err := config.Load(cmd.Flags())
	if err != nil {
		return config.Config{}, nil, err
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = defaultFormat
	}
	return cfg, newLogger(cmd.ErrOrStderr(), cfg), nil
}

// withConfig adapts run into a cobra RunE that first reads the configuration
// (flags over PLATFORM_* variables over defaults) and makes the logger, in
// format unless PLATFORM_LOG_FORMAT says otherwise.
func withConfig(format string, run func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, log, err := loadConfig(cmd, format)
		if err != nil {
			return err
		}
		return run(cmd, cfg, log, args)
	}
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	return telemetry.NewLogger(w, cfg.LogFormat, cfg.LogLevel)
}

// deps are the connections a process holds.
type deps struct {
	cfg      config.Config
	log      *slog.Logger
	db       *pgxpool.Pool
	reads    *database.Router // the API's read router; nil without read replicas
	redis    goredis.UniversalClient
	temporal client.Client
	registry *prometheus.Registry
	backups  *backupstore.Store
	flags    *provider.Runtime  // started by apiServer and runWorker
	tracing  *telemetry.Tracing // the process's, when installed
}

// connect opens Postgres, Redis and Temporal and the metrics registry.
func connect(ctx context.Context, cfg config.Config, log *slog.Logger) (*deps, error) {
	d := &deps{cfg: cfg, log: log, registry: telemetry.NewRegistry()}
	var err error
	if d.db, err = database.Open(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns); err != nil {
		return nil, err
	}
	if d.redis, err = redis.OpenTraced(cfg.RedisURL, nil); err != nil {
		d.close()
		return nil, err
	}
	// Without a backup store the process still serves everything else;
	// drill steps that need one fail at once with why.
	if d.backups, err = backupstore.Open(ctx, cfg.BackupURL); err != nil {
		log.Warn("backup store unavailable: backups and restore drills will fail", "error", err)
	}
	metrics, err := telemetry.TemporalMetrics(d.registry)
	if err != nil {
		d.close()
		return nil, err
	}
	d.temporal, err = temporalclient.Dial(ctx, temporalclient.Options{
		Address: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: log, Metrics: metrics,
	})
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *deps) close() {
	if d.flags != nil {
		_ = d.flags.Close(context.Background())
	}
	if d.reads != nil {
		d.reads.Close()
	}
	if d.temporal != nil {
		d.temporal.Close()
	}
	if d.backups != nil {
		_ = d.backups.Close()
	}
	if d.redis != nil {
		_ = d.redis.Close()
	}
	if d.db != nil {
		d.db.Close()
	}
}

func (d *deps) apiServer() (*api.Server, error) {
	if err := d.startFlags(); err != nil {
		return nil, err
	}
	if err := d.openReads(); err != nil {
		return nil, err
	}
	s, err := api.New(api.Deps{
		Config: d.cfg, DB: d.db, Reads: d.reads, Redis: d.redis, Keys: redis.Keys(d.cfg.RedisPrefix),
		Temporal: d.temporal, Registry: d.registry, Log: d.log, Flags: d.flags, Backups: d.backups,
	})
	if err != nil {
		return nil, fmt.Errorf("build api: %w", err)
	}
	return s, nil
}

// openReads starts the read router when read replicas are configured.
func (d *deps) openReads() error {
	if len(d.cfg.DatabaseReadURLs) == 0 {
		return nil
	}
	r, err := database.NewRouter(d.db, d.cfg.DatabaseReadURLs, d.cfg.DatabaseMaxConns, database.RouterOptions{
		MaxLagTime: d.cfg.ReplicaMaxLag.Time, MaxLagBytes: d.cfg.ReplicaMaxLag.Bytes,
		PollInterval: d.cfg.ReplicaPollInterval, WriteTTL: d.cfg.ReplicaWriteTTL,
		Writes:   database.RedisWrites{Client: d.redis, Prefix: d.cfg.RedisPrefix},
		Registry: d.registry, Log: d.log,
	})
	if err != nil {
		return err
	}
	d.reads = r
	d.log.Info("reads go to replicas when current enough", "replicas", len(d.cfg.DatabaseReadURLs), "max_lag", d.cfg.ReplicaMaxLag.String())
	return nil
}

func (d *deps) workerDeps() worker.Deps {
	return worker.Deps{
		Temporal: d.temporal, TaskQueue: d.cfg.TaskQueue, DB: d.db, Redis: d.redis,
		Keys: redis.Keys(d.cfg.RedisPrefix), Log: d.log, DrainTimeout: d.cfg.DrainTimeout,
		ActivityPollers: d.cfg.WorkerActivityPollers, WorkflowPollers: d.cfg.WorkerWorkflowPollers,
		MaxActivities:          d.cfg.WorkerMaxActivities,
		WebhookAllowedNetworks: d.cfg.WebhookAllowedNetworks, WebhookTimeout: d.cfg.WebhookTimeout,
		WebhookAllowedPorts: d.cfg.WebhookAllowedPorts,
		Config:              d.cfg, Backups: d.backups,
		Registry: d.registry, ControlTaskQueue: d.cfg.ControlTaskQueue,
		ControlMaxActivities: d.cfg.WorkerControlMaxActivities,
		WebhookMaxInFlight:   d.cfg.WebhookMaxInFlightPerPrincipal,
		WebhookRate:          d.cfg.WebhookRatePerPrincipal.Limit, WebhookRatePeriod: d.cfg.WebhookRatePerPrincipal.Period,
		PrometheusURL: d.cfg.PrometheusURL,
		Retention: retention.Policy{Uploads: d.cfg.RetentionUploads, UsageEvents: d.cfg.RetentionUsageEvents,
			RolloutEvents: d.cfg.RetentionRolloutEvents, RolloutChecks: d.cfg.RetentionRolloutChecks, FlagAudit: d.cfg.RetentionFlagAudit},
	}
}

// startFlags starts the process's OpenFeature runtime: the flag provider
// watching the store, and the hook feeding the metrics registry.
func (d *deps) startFlags() error {
	if d.flags != nil {
		return nil
	}
	// The watcher holds a LISTEN session: behind PgBouncer in transaction
	// mode it must dial Postgres directly.
	session, err := database.SessionConfig(d.cfg.SessionDatabaseURL())
	if err != nil {
		return err
	}
	rt, err := provider.Start(context.Background(), session, d.registry, provider.Options{
		Watch: store.WatchOptions{Poll: d.cfg.FlagsPollInterval}, Log: d.log,
	})
	if err != nil {
		return fmt.Errorf("start flag provider: %w", err)
	}
	d.flags = rt
	if d.tracing != nil {
		rt.FollowFloat(telemetry.SampleRatioFlag, d.cfg.TraceSampleRatio, d.tracing.Sampler.SetRatio)
	}
	return nil
}
