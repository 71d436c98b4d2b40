// Package config reads the platform's configuration from environment variables,
// lets command-line flags override them, and validates the result.
//
// Every setting has one environment variable (PLATFORM_*) and one flag; a flag
// given on the command line wins over the variable, and the variable wins over
// the default. An invalid value fails with one line naming the variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is the whole configuration of one platform process.
type Config struct {
	HTTPAddr         string
	PublicBaseURL    string
	DatabaseURL      string
	DatabaseMaxConns int32
	// DatabaseReadURLs are the read replicas API reads may go to; see
	// internal/database.Router.
	DatabaseReadURLs    []string
	ReplicaMaxLag       Lag
	ReplicaPollInterval time.Duration
	ReplicaWriteTTL     time.Duration
	// DatabaseDirectURL reaches Postgres without a transaction pooler, for
	// what needs a session: LISTEN, migrations' advisory lock, pg_dump.
	// Empty: DatabaseURL serves those too (see SessionDatabaseURL).
	DatabaseDirectURL string
	RedisURL          string
	RedisPrefix       string

	TemporalAddress   string
	TemporalNamespace string
	TemporalUIURL     string
	TaskQueue         string

	LogLevel         slog.Level
	LogFormat        string
	TraceSampleRatio float64

	DrainTimeout   time.Duration
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	SecretKey      string

	RateLimitRead  Rate
	RateLimitWrite Rate
	RateLimitAnon  Rate
	IdempotencyTTL time.Duration
	KeyCacheTTL    time.Duration

	WorkerActivityPollers int
	WorkerWorkflowPollers int
	WorkerMaxActivities   int
	WorkerOpsAddr         string

	WebhookAllowedNetworks []netip.Prefix
	WebhookTimeout         time.Duration
	UploadMaxBytes         int64

	FlagsPollInterval time.Duration

	DevDir      string
	TemporalCLI string

	// Disaster recovery: backups and drills.
	BackupURL       string
	BackupRetention int
	PGBinDir        string
	RedisServerBin  string
	RedisCLIBin     string
	DrillScratchDir string
	// DrillScratchMaxAge is how old a drill's scratch database or directory
	// must be before the hourly retention run sweeps it (lost workers only:
	// drills remove their own).
	DrillScratchMaxAge time.Duration
	// Schedules of the nightly backup and weekly restore drills (cron, UTC;
	// empty disables one) and the objectives the scheduled restore is judged by.
	DrillBackupSchedule  string
	DrillRestoreSchedule string
	DrillRTOObjective    time.Duration
	DrillRPOObjective    time.Duration
	// Edge hardening: the API's ops listener and its lame-duck shutdown.
	OpsAddr       string
	ShutdownDelay time.Duration
	// Worker task queues and webhook delivery limits (M6, M7).
	ControlTaskQueue               string
	WorkerControlMaxActivities     int
	WebhookMaxInFlightPerPrincipal int
	WebhookRatePerPrincipal        Rate

	// PrometheusURL is the one Prometheus that rollout guards query; empty
	// refuses guards with source "prometheus". Rollouts name queries only.
	PrometheusURL string
	// ScalingLocalDir is the state directory shared by the local scaling
	// driver and platform supervise.
	ScalingLocalDir string
	// ScalingKubernetesNamespace is where the kubernetes scaling driver
	// finds the Deployments; empty: the pod's own namespace (its service
	// account's namespace file), else "default".
	ScalingKubernetesNamespace string
	// ScalingKubernetesDeployments maps each scaling target (worker, api)
	// to the Deployment the kubernetes driver scales.
	ScalingKubernetesDeployments map[string]string
	// Retention* is how long rows are kept before the hourly
	// platform.retention schedule deletes them; 0 keeps them forever.
	RetentionUploads       time.Duration
	RetentionUsageEvents   time.Duration
	RetentionRolloutEvents time.Duration
	RetentionRolloutChecks time.Duration
	RetentionFlagAudit     time.Duration

	// Uploads in progress (security review H5).
	UploadMaxConcurrent int
	// MaxInFlight bounds the requests one API process serves at once;
	// beyond it, 503 with Retry-After at once (load shedding).
	MaxInFlight                     int
	UploadMaxConcurrentPerPrincipal int
	UploadMinBytesPerSecond         int64
	UploadMinRateGrace              time.Duration
	// WebhookAllowedPorts are the ports webhooks may dial on public
	// addresses (the allowed networks may be dialled on any port).
	WebhookAllowedPorts []uint16

	// Cache-loss drill: the API base URL its load targets.
	DrillAPIURL string
	// DrillPatroniURL is the REST API of the Patroni cluster that serves
	// PLATFORM_DATABASE_URL, for the failover drill's patroni driver;
	// empty refuses that driver. Drills never name it.
	DrillPatroniURL string
	// Experiment drills: the API's /metrics (ops listener) they read
	// resources from, and the Toxiproxy admin API they drive faults with.
	DrillMetricsURL string
	ToxiproxyURL    string
}

// DefaultBackupURL is PLATFORM_BACKUP_URL's default; platform dev replaces it
// with a folder under its dev directory.
const DefaultBackupURL = "file:///var/lib/platform/backups"

// SessionDatabaseURL is the URL of work that needs a Postgres session of
// its own, which a transaction pooler does not give: LISTEN, session
// advisory locks (migrations), pg_dump and pg_restore, CREATE DATABASE.
func (c Config) SessionDatabaseURL() string {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL
	}
	return c.DatabaseURL
}

// Rate is a quota: Limit requests per Period.
type Rate struct {
	Limit  int
	Period time.Duration
}

// String formats the rate as it is written in configuration: "300/60s".
func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.Period) }

// field is one setting: its variable, its flag, its default and how to apply a value.
type field struct {
	env, flag, def, usage string
	secret                bool
	set                   func(c *Config, v string) error
}

func fields() []field {
	return []field{
		{env: "PLATFORM_HTTP_ADDR", flag: "http-addr", def: ":8080", usage: "address the API listens on",
			set: func(c *Config, v string) error { c.HTTPAddr = v; return nonEmpty(v) }},
		{env: "PLATFORM_PUBLIC_BASE_URL", flag: "public-base-url", def: "http://localhost:8080", usage: "public base URL of the API (problem type URIs, links)",
			set: func(c *Config, v string) error { c.PublicBaseURL = strings.TrimRight(v, "/"); return absURL(v) }},
		{env: "PLATFORM_DATABASE_URL", flag: "database-url", def: "postgres://postgres@127.0.0.1:5432/platform?sslmode=disable", usage: "PostgreSQL connection URL", secret: true,
			set: func(c *Config, v string) error { c.DatabaseURL = v; return schemeURL(v, "postgres", "postgresql") }},
		{env: "PLATFORM_DATABASE_MAX_CONNS", flag: "database-max-conns", def: "20", usage: "maximum connections in the Postgres pool",
			set: func(c *Config, v string) error {
				n, err := intIn(v, 1, 1000)
				c.DatabaseMaxConns = int32(n)
				return err
			}},
		{env: "PLATFORM_DATABASE_READ_URL", flag: "database-read-url", def: "", usage: "PostgreSQL read replica URLs, comma-separated; empty reads from the primary only", secret: true,
			set: func(c *Config, v string) error {
				c.DatabaseReadURLs = splitURLs(v)
				return replicaURLs(c.DatabaseReadURLs)
			}},
		{env: "PLATFORM_REPLICA_MAX_LAG", flag: "replica-max-lag", def: "5s", usage: "how far a replica may lag and still serve reads: a duration (5s) or WAL bytes (16MB)",
			set: func(c *Config, v string) error {
				var err error
				c.ReplicaMaxLag, err = parseLag(v)
				return err
			}},
		{env: "PLATFORM_REPLICA_POLL_INTERVAL", flag: "replica-poll-interval", def: "1s", usage: "how often the replicas' replay positions are polled",
			set: func(c *Config, v string) error {
				var err error
				c.ReplicaPollInterval, err = durationIn(v, 50*time.Millisecond, time.Minute)
				return err
			}},
		{env: "PLATFORM_REPLICA_WRITE_TTL", flag: "replica-write-ttl", def: "30s", usage: "how long a principal's last write position is kept for read-your-writes; also caps the replica time lag",
			set: func(c *Config, v string) error {
				var err error
				c.ReplicaWriteTTL, err = durationIn(v, time.Second, time.Hour)
				return err
			}},
		{env: "PLATFORM_DATABASE_DIRECT_URL", flag: "database-direct-url", def: "", usage: "PostgreSQL URL that bypasses a transaction pooler such as PgBouncer, for LISTEN (flag changes), migrations and backups (empty: PLATFORM_DATABASE_URL)", secret: true,
			set: func(c *Config, v string) error {
				c.DatabaseDirectURL = v
				if v == "" {
					return nil
				}
				return schemeURL(v, "postgres", "postgresql")
			}},
		{env: "PLATFORM_REDIS_URL", flag: "redis-url", def: "redis://127.0.0.1:6379/0", usage: "Redis connection URL: redis:// or rediss:// (one server), redis-sentinel://host:port[,host:port]/master[?db=N] or redis-cluster://host:port[,host:port]", secret: true,
			set: func(c *Config, v string) error {
				c.RedisURL = v
				return schemeURL(v, "redis", "rediss", "redis-sentinel", "redis-cluster")
			}},
		{env: "PLATFORM_REDIS_PREFIX", flag: "redis-prefix", def: "platform:", usage: "prefix of every Redis key the platform writes (no braces: the platform places its own Redis Cluster hash tags)",
			set: func(c *Config, v string) error {
				c.RedisPrefix = v
				if strings.ContainsAny(v, "{}") {
					return errors.New("must not contain { or }: the platform places its own Redis Cluster hash tags")
				}
				return nil
			}},
		{env: "PLATFORM_TEMPORAL_ADDRESS", flag: "temporal-address", def: "127.0.0.1:7233", usage: "Temporal frontend host:port",
			set: func(c *Config, v string) error { c.TemporalAddress = v; return hostPort(v) }},
		{env: "PLATFORM_TEMPORAL_NAMESPACE", flag: "temporal-namespace", def: "default", usage: "Temporal namespace",
			set: func(c *Config, v string) error { c.TemporalNamespace = v; return nonEmpty(v) }},
		{env: "PLATFORM_TEMPORAL_UI_URL", flag: "temporal-ui-url", def: "http://localhost:8233", usage: "Temporal Web UI base URL (links to workflow runs)",
			set: func(c *Config, v string) error { c.TemporalUIURL = strings.TrimRight(v, "/"); return absURL(v) }},
		{env: "PLATFORM_TASK_QUEUE", flag: "task-queue", def: "platform", usage: "Temporal task queue of the platform's workflows and activities",
			set: func(c *Config, v string) error { c.TaskQueue = v; return nonEmpty(v) }},
		{env: "PLATFORM_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
			set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{env: "PLATFORM_LOG_FORMAT", flag: "log-format", def: "", usage: "json or text (default: json for api and worker, text for dev)",
			set: func(c *Config, v string) error { c.LogFormat = v; return oneOf(v, "", "json", "text") }},
		{env: "PLATFORM_TRACE_SAMPLE_RATIO", flag: "trace-sample-ratio", def: "1", usage: "share of new traces sampled, 0..1 (parent-based)",
			set: func(c *Config, v string) error { f, err := floatIn(v, 0, 1); c.TraceSampleRatio = f; return err }},
		{env: "PLATFORM_DRAIN_TIMEOUT", flag: "drain-timeout", def: "15s", usage: "time in-flight requests and activities get to finish on shutdown",
			set: func(c *Config, v string) error { d, err := durationIn(v, 0, time.Hour); c.DrainTimeout = d; return err }},
		{env: "PLATFORM_REQUEST_TIMEOUT", flag: "request-timeout", def: "30s", usage: "deadline of one API request (propagated to Postgres, Redis and Temporal)",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, time.Millisecond, time.Hour)
				c.RequestTimeout = d
				return err
			}},
		{env: "PLATFORM_MAX_BODY_BYTES", flag: "max-body-bytes", def: "1048576", usage: "largest JSON request body",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 1<<30); c.MaxBodyBytes = int64(n); return err }},
		{env: "PLATFORM_SECRET_KEY", flag: "secret-key", def: "", usage: "key that signs cursors (at least 32 characters; random per process when empty)", secret: true,
			set: func(c *Config, v string) error { c.SecretKey = v; return minLen(v, 32) }},
		{env: "PLATFORM_RATE_LIMIT_READ", flag: "rate-limit-read", def: "1200/60s", usage: "read quota per principal",
			set: func(c *Config, v string) error { r, err := parseRate(v); c.RateLimitRead = r; return err }},
		{env: "PLATFORM_RATE_LIMIT_WRITE", flag: "rate-limit-write", def: "300/60s", usage: "write quota per principal",
			set: func(c *Config, v string) error { r, err := parseRate(v); c.RateLimitWrite = r; return err }},
		{env: "PLATFORM_RATE_LIMIT_ANON", flag: "rate-limit-anon", def: "60/60s", usage: "quota of unauthenticated requests per client IP",
			set: func(c *Config, v string) error { r, err := parseRate(v); c.RateLimitAnon = r; return err }},
		{env: "PLATFORM_IDEMPOTENCY_TTL", flag: "idempotency-ttl", def: "24h", usage: "how long Idempotency-Key records are kept",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, time.Second, 30*24*time.Hour)
				c.IdempotencyTTL = d
				return err
			}},
		{env: "PLATFORM_KEY_CACHE_TTL", flag: "key-cache-ttl", def: "2s", usage: "how long an API key lookup is cached in process (a revoked key works at most this long)",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, 0, 5*time.Second)
				c.KeyCacheTTL = d
				return err
			}},
		{env: "PLATFORM_WORKER_ACTIVITY_POLLERS", flag: "worker-activity-pollers", def: "4", usage: "activity task pollers per worker",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 256); c.WorkerActivityPollers = n; return err }},
		{env: "PLATFORM_WORKER_WORKFLOW_POLLERS", flag: "worker-workflow-pollers", def: "4", usage: "workflow task pollers per worker",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 256); c.WorkerWorkflowPollers = n; return err }},
		{env: "PLATFORM_WORKER_MAX_ACTIVITIES", flag: "worker-max-activities", def: "200", usage: "activities one worker runs at once",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 10000); c.WorkerMaxActivities = n; return err }},
		{env: "PLATFORM_WORKER_OPS_ADDR", flag: "worker-ops-addr", def: ":8081", usage: "address of the worker's /metrics, /healthz and /readyz",
			set: func(c *Config, v string) error { c.WorkerOpsAddr = v; return nonEmpty(v) }},
		{env: "PLATFORM_WEBHOOK_ALLOWED_NETWORKS", flag: "webhook-allowed-networks", def: "", usage: "comma-separated CIDRs that webhooks may target although private, loopback or link-local (platform dev allows loopback)",
			set: func(c *Config, v string) error { p, err := parsePrefixes(v); c.WebhookAllowedNetworks = p; return err }},
		{env: "PLATFORM_WEBHOOK_TIMEOUT", flag: "webhook-timeout", def: "10s", usage: "timeout of one webhook delivery attempt",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, 100*time.Millisecond, 5*time.Minute)
				c.WebhookTimeout = d
				return err
			}},
		{env: "PLATFORM_UPLOAD_MAX_BYTES", flag: "upload-max-bytes", def: "33554432", usage: "largest upload body (32 MiB)",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 1<<34); c.UploadMaxBytes = int64(n); return err }},
		{env: "PLATFORM_FLAGS_POLL_INTERVAL", flag: "flags-poll-interval", def: "30s", usage: "how often the flag provider checks the store besides LISTEN/NOTIFY (a safety net)",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, 100*time.Millisecond, time.Hour)
				c.FlagsPollInterval = d
				return err
			}},
		{env: "PLATFORM_DEV_DIR", flag: "dev-dir", def: ".dev", usage: "state directory of platform dev (Temporal SQLite file, dev key)",
			set: func(c *Config, v string) error { c.DevDir = v; return nonEmpty(v) }},
		{env: "PLATFORM_TEMPORAL_CLI", flag: "temporal-cli", def: "bin/temporal", usage: "Temporal CLI that platform dev starts as the dev server",
			set: func(c *Config, v string) error { c.TemporalCLI = v; return nonEmpty(v) }},
		// Disaster recovery: backups and drills.
		{env: "PLATFORM_BACKUP_URL", flag: "backup-url", def: DefaultBackupURL, usage: "backup store: a file:// or s3:// bucket URL (platform dev: file://<dev-dir>/backups)", secret: true,
			set: func(c *Config, v string) error { c.BackupURL = v; return schemeURL(v, "file", "s3") }},
		{env: "PLATFORM_BACKUP_RETENTION", flag: "backup-retention", def: "14", usage: "complete backups kept; older ones are pruned after each backup",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 10000); c.BackupRetention = n; return err }},
		{env: "PLATFORM_PG_BIN_DIR", flag: "pg-bin-dir", def: "", usage: "directory of pg_dump, pg_restore and psql (empty: PATH); pg_dump must be at least the server's major version",
			set: func(c *Config, v string) error { c.PGBinDir = v; return nil }},
		{env: "PLATFORM_REDIS_SERVER_BIN", flag: "redis-server-bin", def: "redis-server", usage: "redis-server that restore drills start scratch servers with",
			set: func(c *Config, v string) error { c.RedisServerBin = v; return nonEmpty(v) }},
		{env: "PLATFORM_REDIS_CLI_BIN", flag: "redis-cli-bin", def: "redis-cli", usage: "redis-cli that backups fetch the Redis snapshot (--rdb) with",
			set: func(c *Config, v string) error { c.RedisCLIBin = v; return nonEmpty(v) }},
		{env: "PLATFORM_DRILL_SCRATCH_DIR", flag: "drill-scratch-dir", def: "", usage: "directory of restore drills' scratch redis-server data (empty: the system temp dir)",
			set: func(c *Config, v string) error { c.DrillScratchDir = v; return nil }},
		{env: "PLATFORM_DRILL_SCRATCH_MAX_AGE", flag: "drill-scratch-max-age", def: "6h", usage: "age after which the hourly retention run drops scratch databases and removes scratch directories (and their redis-server) that no running drill owns",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, time.Minute, 30*24*time.Hour)
				c.DrillScratchMaxAge = d
				return err
			}},
		{env: "PLATFORM_DRILL_BACKUP_SCHEDULE", flag: "drill-backup-schedule", def: "0 2 * * *", usage: "cron (UTC) of the scheduled backup drill; empty disables it",
			set: func(c *Config, v string) error { c.DrillBackupSchedule = v; return cronLike(v) }},
		{env: "PLATFORM_DRILL_RESTORE_SCHEDULE", flag: "drill-restore-schedule", def: "0 3 * * 0", usage: "cron (UTC) of the scheduled restore_verify drill; empty disables it",
			set: func(c *Config, v string) error { c.DrillRestoreSchedule = v; return cronLike(v) }},
		{env: "PLATFORM_DRILL_RTO_OBJECTIVE", flag: "drill-rto-objective", def: "15m", usage: "RTO objective of the scheduled restore_verify drill",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, time.Second, 7*24*time.Hour)
				c.DrillRTOObjective = d
				return err
			}},
		{env: "PLATFORM_DRILL_RPO_OBJECTIVE", flag: "drill-rpo-objective", def: "26h", usage: "RPO objective of the scheduled restore_verify drill (a nightly backup plus slack)",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, time.Second, 30*24*time.Hour)
				c.DrillRPOObjective = d
				return err
			}},
		// Edge hardening: the API's ops listener and its lame-duck shutdown.
		{env: "PLATFORM_OPS_ADDR", flag: "ops-addr", def: ":8082", usage: "address of the API's /metrics, /healthz and /readyz (keep it off the public network)",
			set: func(c *Config, v string) error { c.OpsAddr = v; return nonEmpty(v) }},
		{env: "PLATFORM_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "5s", usage: "on SIGTERM, how long the API keeps serving with /readyz at 503 before it closes its listener and drains (platform dev uses 0)",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, 0, 5*time.Minute)
				c.ShutdownDelay = d
				return err
			}},
		// Worker task queues and webhook delivery limits (M6, M7).
		{env: "PLATFORM_CONTROL_TASK_QUEUE", flag: "control-task-queue", def: "platform-control", usage: "Temporal task queue of platform work (rollouts), with its own worker slots so no tenant's jobs can delay it; must differ from PLATFORM_TASK_QUEUE",
			set: func(c *Config, v string) error { c.ControlTaskQueue = v; return controlQueue(v, c.TaskQueue) }},
		{env: "PLATFORM_WORKER_CONTROL_MAX_ACTIVITIES", flag: "worker-control-max-activities", def: "50", usage: "activities one worker runs at once on the control task queue",
			set: func(c *Config, v string) error {
				n, err := intIn(v, 1, 10000)
				c.WorkerControlMaxActivities = n
				return err
			}},
		{env: "PLATFORM_WEBHOOK_MAX_IN_FLIGHT_PER_PRINCIPAL", flag: "webhook-max-in-flight-per-principal", def: "16", usage: "webhook deliveries one principal may have in flight across all workers",
			set: func(c *Config, v string) error {
				n, err := intIn(v, 1, 10000)
				c.WebhookMaxInFlightPerPrincipal = n
				return err
			}},
		{env: "PLATFORM_WEBHOOK_RATE_PER_PRINCIPAL", flag: "webhook-rate-per-principal", def: "20/1s", usage: "webhook deliveries one principal may begin per period across all workers (LIMIT/PERIOD, limit up to 10000)",
			set: func(c *Config, v string) error {
				r, err := parseRate(v)
				if err == nil && r.Limit > 10000 {
					err = errors.New("limit must be at most 10000")
				}
				c.WebhookRatePerPrincipal = r
				return err
			}},
		// Rollout guards and retention.
		{env: "PLATFORM_PROMETHEUS_URL", flag: "prometheus-url", def: "", usage: "Prometheus server that rollout guards with source prometheus query (empty: such guards are refused)", secret: true,
			set: func(c *Config, v string) error { c.PrometheusURL = strings.TrimRight(v, "/"); return baseURL(v) }},
		// Scaling.
		{env: "PLATFORM_SCALING_LOCAL_DIR", flag: "scaling-local-dir", def: ".dev/scaling", usage: "state directory the local scaling driver and platform supervise share",
			set: func(c *Config, v string) error { c.ScalingLocalDir = v; return nonEmpty(v) }},
		{env: "PLATFORM_SCALING_KUBERNETES_NAMESPACE", flag: "scaling-kubernetes-namespace", def: "", usage: "namespace of the Deployments the kubernetes scaling driver scales (empty: the pod's own namespace from its service account, else default)",
			set: func(c *Config, v string) error { c.ScalingKubernetesNamespace = v; return nil }},
		{env: "PLATFORM_SCALING_KUBERNETES_DEPLOYMENTS", flag: "scaling-kubernetes-deployments", def: "worker=platform-worker,api=platform-api", usage: "the Deployment of each scaling target for the kubernetes driver (TARGET=NAME,…; targets worker and api)",
			set: func(c *Config, v string) error {
				m, err := parseTargetMap(v)
				c.ScalingKubernetesDeployments = m
				return err
			}},
		retention("PLATFORM_RETENTION_UPLOADS", "retention-uploads", "7d", "uploads and their bytes", time.Hour,
			func(c *Config) *time.Duration { return &c.RetentionUploads }),
		retention("PLATFORM_RETENTION_USAGE_EVENTS", "retention-usage-events", "3d", "raw usage events (at least 2d, so the daily roll-up has read them)", 48*time.Hour,
			func(c *Config) *time.Duration { return &c.RetentionUsageEvents }),
		retention("PLATFORM_RETENTION_ROLLOUT_EVENTS", "retention-rollout-events", "30d", "rollout outcome events (at least 7d, the longest step hold)", 7*24*time.Hour,
			func(c *Config) *time.Duration { return &c.RetentionRolloutEvents }),
		retention("PLATFORM_RETENTION_ROLLOUT_CHECKS", "retention-rollout-checks", "30d", "rollout guard checks (at least 7d, the longest step hold)", 7*24*time.Hour,
			func(c *Config) *time.Duration { return &c.RetentionRolloutChecks }),
		retention("PLATFORM_RETENTION_FLAG_AUDIT", "retention-flag-audit", "365d", "flag audit entries", 24*time.Hour,
			func(c *Config) *time.Duration { return &c.RetentionFlagAudit }),
		{env: "PLATFORM_MAX_IN_FLIGHT", flag: "max-in-flight", def: "256", usage: "requests one API process serves at once; beyond it 503 with Retry-After at once, so a slow database's pool queue stays bounded",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 100000); c.MaxInFlight = n; return err }},
		// Uploads in progress (security review H5).
		{env: "PLATFORM_UPLOAD_MAX_CONCURRENT", flag: "upload-max-concurrent", def: "32", usage: "uploads one API process receives at once (503 with Retry-After beyond)",
			set: func(c *Config, v string) error { n, err := intIn(v, 1, 10000); c.UploadMaxConcurrent = n; return err }},
		{env: "PLATFORM_UPLOAD_MAX_CONCURRENT_PER_PRINCIPAL", flag: "upload-max-concurrent-per-principal", def: "4", usage: "uploads one principal sends to one API process at once (429 with Retry-After beyond)",
			set: func(c *Config, v string) error {
				n, err := intIn(v, 1, 10000)
				c.UploadMaxConcurrentPerPrincipal = n
				return err
			}},
		{env: "PLATFORM_UPLOAD_MIN_BYTES_PER_SECOND", flag: "upload-min-bytes-per-second", def: "16384", usage: "slowest average upload rate accepted after the grace period (408 below)",
			set: func(c *Config, v string) error {
				n, err := intIn(v, 1, 1<<30)
				c.UploadMinBytesPerSecond = int64(n)
				return err
			}},
		{env: "PLATFORM_UPLOAD_MIN_RATE_GRACE", flag: "upload-min-rate-grace", def: "5s", usage: "time an upload may take beyond what the minimum rate allows for its bytes so far",
			set: func(c *Config, v string) error {
				d, err := durationIn(v, 0, 5*time.Minute)
				c.UploadMinRateGrace = d
				return err
			}},
		{env: "PLATFORM_WEBHOOK_ALLOWED_PORTS", flag: "webhook-allowed-ports", def: "80,443", usage: "comma-separated ports webhooks may target on public addresses",
			set: func(c *Config, v string) error { p, err := parsePorts(v); c.WebhookAllowedPorts = p; return err }},
		// Cache-loss drill.
		{env: "PLATFORM_DRILL_API_URL", flag: "drill-api-url", def: "http://127.0.0.1:8080", usage: "base URL of the platform's own API that cache_loss drills send their load to",
			set: func(c *Config, v string) error { c.DrillAPIURL = strings.TrimRight(v, "/"); return httpURL(v) }},
		// Failover drill through Patroni.
		{env: "PLATFORM_DRILL_PATRONI_URL", flag: "drill-patroni-url", def: "", usage: "REST API of a member of the Patroni cluster that serves PLATFORM_DATABASE_URL, for failover drills with driver patroni (empty: that driver is refused)", secret: true,
			set: func(c *Config, v string) error { c.DrillPatroniURL = strings.TrimRight(v, "/"); return baseURL(v) }},
		{env: "PLATFORM_DRILL_METRICS_URL", flag: "drill-metrics-url", def: "http://127.0.0.1:8082/metrics", usage: "the API's /metrics that capacity and degraded drills read CPU, RSS, goroutines and pool waits from; empty: not measured",
			set: func(c *Config, v string) error {
				c.DrillMetricsURL = v
				if v == "" {
					return nil
				}
				return httpURL(v)
			}},
		{env: "PLATFORM_TOXIPROXY_URL", flag: "toxiproxy-url", def: "", usage: "Toxiproxy admin API that db_degraded and cache_degraded drills drive (proxies platform-postgres and platform-redis); empty: those drills fail at once",
			set: func(c *Config, v string) error {
				c.ToxiproxyURL = strings.TrimRight(v, "/")
				if v == "" {
					return nil
				}
				return httpURL(v)
			}},
	}
}

// retention is a retention setting: a duration such as 7d or 36h, at least
// floor, or 0 to keep rows forever.
func retention(env, flag, def, what string, floor time.Duration, dst func(*Config) *time.Duration) field {
	return field{env: env, flag: flag, def: def,
		usage: "how long " + what + " are kept (0 keeps them forever)",
		set: func(c *Config, v string) error {
			d, err := parseRetention(v, floor)
			*dst(c) = d
			return err
		}}
}

// parseRetention reads a retention: 0, N days ("7d") or a Go duration ("36h").
func parseRetention(v string, floor time.Duration) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = intIn(days, 0, 36500)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < 0 {
		return 0, errors.New("must be 0, a number of days such as 7d, or a duration such as 36h")
	}
	if d != 0 && d < floor {
		return 0, fmt.Errorf("must be 0 (keep forever) or at least %s", floor)
	}
	return d, nil
}

// baseURL accepts an empty value (none) or an http(s) URL
// with a host and no query or fragment, to which API paths are appended.
func baseURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(v, "?#") {
		return errors.New("must be an http or https URL with no query or fragment")
	}
	return nil
}

// parsePorts reads a comma-separated list of TCP ports, at least one.
func parsePorts(v string) ([]uint16, error) {
	var out []uint16
	for _, part := range strings.Split(v, ",") {
		n, err := intIn(strings.TrimSpace(part), 1, 65535)
		if err != nil {
			return nil, fmt.Errorf("%q is not a port", part)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// cronLike accepts an empty value (disabled) or five space-separated cron
// fields; Temporal parses the expression itself when the schedule is made.
func cronLike(v string) error {
	if v == "" || len(strings.Fields(v)) == 5 {
		return nil
	}
	return errors.New("must be a cron expression of five fields, or empty")
}

// controlQueue checks the control task queue: set, and not the jobs' queue,
// whose slots it exists to stay out of.
func controlQueue(v, jobsQueue string) error {
	if err := nonEmpty(v); err != nil {
		return err
	}
	if v == jobsQueue {
		return errors.New("must differ from PLATFORM_TASK_QUEUE")
	}
	return nil
}

// RegisterFlags adds one flag per setting to fs. Their defaults are shown in
// help, but Load decides precedence: flag, then variable, then default.
func RegisterFlags(fs *pflag.FlagSet) {
	for _, f := range fields() {
		fs.String(f.flag, f.def, fmt.Sprintf("%s (env %s)", f.usage, f.env))
	}
}

// Load builds the configuration from fs (when not nil) and the environment.
func Load(fs *pflag.FlagSet) (Config, error) {
	return load(fs, os.LookupEnv)
}

func load(fs *pflag.FlagSet, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	for _, f := range fields() {
		v, source := f.def, "default"
		if e, ok := lookup(f.env); ok {
			v, source = e, "env"
		}
		if fs != nil && fs.Changed(f.flag) {
			v, _ = fs.GetString(f.flag)
			source = "flag"
		}
		if err := f.set(&c, v); err != nil {
			name := f.env
			if source == "flag" {
				name = "--" + f.flag
			}
			return Config{}, fmt.Errorf("invalid %s=%q: %w", name, mask(f, v), err)
		}
	}
	return c, nil
}

// LogValue shows every setting with its secrets masked, so the effective
// configuration can be logged once at start.
func (c Config) LogValue() slog.Value {
	// Re-derive the string form of each setting from its field table so the log
	// shows the same names an operator sets.
	attrs := []slog.Attr{
		slog.String("http_addr", c.HTTPAddr),
		slog.String("public_base_url", c.PublicBaseURL),
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("database_direct_url", maskURL(c.DatabaseDirectURL)),
		slog.Int("database_max_conns", int(c.DatabaseMaxConns)),
		slog.Int("database_read_urls", len(c.DatabaseReadURLs)),
		slog.String("replica_max_lag", c.ReplicaMaxLag.String()),
		slog.String("redis_url", maskURL(c.RedisURL)),
		slog.String("redis_prefix", c.RedisPrefix),
		slog.String("temporal_address", c.TemporalAddress),
		slog.String("temporal_namespace", c.TemporalNamespace),
		slog.String("task_queue", c.TaskQueue),
		slog.String("log_level", c.LogLevel.String()),
		slog.Float64("trace_sample_ratio", c.TraceSampleRatio),
		slog.Duration("drain_timeout", c.DrainTimeout),
		slog.Duration("request_timeout", c.RequestTimeout),
		slog.Bool("secret_key_set", c.SecretKey != ""),
		slog.String("rate_limit_read", c.RateLimitRead.String()),
		slog.String("rate_limit_write", c.RateLimitWrite.String()),
		slog.String("rate_limit_anon", c.RateLimitAnon.String()),
		slog.Any("webhook_allowed_networks", c.WebhookAllowedNetworks),
		slog.Duration("webhook_timeout", c.WebhookTimeout),
		slog.Int64("upload_max_bytes", c.UploadMaxBytes),
		slog.Int("upload_max_concurrent", c.UploadMaxConcurrent),
		slog.Int("upload_max_concurrent_per_principal", c.UploadMaxConcurrentPerPrincipal),
		slog.Int64("upload_min_bytes_per_second", c.UploadMinBytesPerSecond),
		slog.Duration("upload_min_rate_grace", c.UploadMinRateGrace),
		slog.String("prometheus_url", maskURL(c.PrometheusURL)),
		slog.String("drill_patroni_url", maskURL(c.DrillPatroniURL)),
		slog.String("scaling_local_dir", c.ScalingLocalDir),
		slog.String("scaling_kubernetes_namespace", c.ScalingKubernetesNamespace),
		slog.Any("scaling_kubernetes_deployments", c.ScalingKubernetesDeployments),
		slog.Duration("retention_uploads", c.RetentionUploads),
		slog.Duration("retention_usage_events", c.RetentionUsageEvents),
		slog.Duration("retention_rollout_events", c.RetentionRolloutEvents),
		slog.Duration("retention_rollout_checks", c.RetentionRolloutChecks),
		slog.Duration("retention_flag_audit", c.RetentionFlagAudit),
		slog.String("backup_url", maskURL(c.BackupURL)),
		slog.Int("backup_retention", c.BackupRetention),
		slog.String("ops_addr", c.OpsAddr),
		slog.Duration("shutdown_delay", c.ShutdownDelay),
		slog.String("control_task_queue", c.ControlTaskQueue),
		slog.Int("worker_control_max_activities", c.WorkerControlMaxActivities),
		slog.Int("webhook_max_in_flight_per_principal", c.WebhookMaxInFlightPerPrincipal),
		slog.String("webhook_rate_per_principal", c.WebhookRatePerPrincipal.String()),
	}
	return slog.GroupValue(attrs...)
}

func mask(f field, v string) string {
	if f.secret {
		return maskURL(v)
	}
	return v
}

// maskURL hides every secret a connection URL can carry: the userinfo
// password and password-like query parameters (pgx and libpq accept
// ?password=… and ?sslpassword=…). A value that is not a URL of a known
// scheme, such as a bad PLATFORM_SECRET_KEY that happens to contain a ':',
// is hidden whole.
func maskURL(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || !slices.Contains(urlSchemes, u.Scheme) {
		return "****"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	q := u.Query()
	masked := false
	for name := range q {
		if strings.Contains(strings.ToLower(name), "pass") || strings.EqualFold(name, "sslkey") {
			q.Set(name, "****")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// urlSchemes are the schemes of the URL settings maskURL may show masked.
var urlSchemes = []string{"postgres", "postgresql", "redis", "rediss", "redis-sentinel", "redis-cluster", "http", "https", "s3", "gs", "azblob", "file"}

var errEmpty = errors.New("must not be empty")

// parseTargetMap reads "worker=a,api=b": each scaling target at most once,
// each with a non-empty name (the driver checks the names' syntax).
func parseTargetMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		target, name, ok := strings.Cut(pair, "=")
		target, name = strings.TrimSpace(target), strings.TrimSpace(name)
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("%q is not TARGET=NAME", pair)
		case target != "worker" && target != "api":
			return nil, fmt.Errorf("unknown target %q (worker or api)", target)
		case m[target] != "":
			return nil, fmt.Errorf("target %q is listed twice", target)
		}
		m[target] = name
	}
	return m, nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errEmpty
	}
	return nil
}

func minLen(v string, n int) error {
	if v != "" && len(v) < n {
		return fmt.Errorf("must be at least %d characters", n)
	}
	return nil
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %q", allowed)
}

func absURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	return nil
}

// httpURL accepts an absolute http or https URL.
func httpURL(v string) error {
	if err := absURL(v); err != nil {
		return err
	}
	return schemeURL(v, "http", "https")
}

func schemeURL(v string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("must be a URL")
	}
	if err := oneOf(u.Scheme, schemes...); err != nil {
		return fmt.Errorf("scheme %w", err)
	}
	return nil
}

func hostPort(v string) error {
	i := strings.LastIndex(v, ":")
	if i <= 0 || i == len(v)-1 {
		return errors.New("must be host:port")
	}
	if _, err := strconv.ParseUint(v[i+1:], 10, 16); err != nil {
		return errors.New("port must be a number up to 65535")
	}
	return nil
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("must be an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	}
	return n, nil
}

func floatIn(v string, lo, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		return 0, fmt.Errorf("must be a number between %g and %g", lo, hi)
	}
	return f, nil
}

func durationIn(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("must be a duration such as 15s or 2m")
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("must be between %s and %s", lo, hi)
	}
	return d, nil
}

// parsePrefixes reads a comma-separated list of CIDRs (or single addresses).
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR or address", part)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseRate reads "LIMIT/PERIOD", such as "300/60s".
func parseRate(v string) (Rate, error) {
	limit, period, ok := strings.Cut(v, "/")
	if !ok {
		return Rate{}, errors.New("must be LIMIT/PERIOD, such as 300/60s")
	}
	n, err := intIn(limit, 1, 1_000_000)
	if err != nil {
		return Rate{}, fmt.Errorf("limit %w", err)
	}
	d, err := durationIn(period, time.Second, 24*time.Hour)
	if err != nil {
		return Rate{}, fmt.Errorf("period %w", err)
	}
	return Rate{Limit: n, Period: d}, nil
}

// Lag bounds a replica's lag: in time or in WAL bytes (one of them is set).
type Lag struct {
	Time  time.Duration
	Bytes int64
}

// String formats the bound as it is written in configuration.
func (l Lag) String() string {
	if l.Bytes > 0 {
		return strconv.FormatInt(l.Bytes, 10) + "B"
	}
	return l.Time.String()
}

// lagUnits are PostgreSQL's memory units: 1 kB = 1024 B.
var lagUnits = []struct {
	suffix string
	factor int64
}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}}

// parseLag reads a duration ("5s") or a WAL size ("16MB", "512kB", "1048576B").
func parseLag(v string) (Lag, error) {
	for _, u := range lagUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			b, err := strconv.ParseInt(n, 10, 64)
			if err != nil || b < 1 || b > (1<<50)/u.factor {
				return Lag{}, errors.New("must be a positive WAL size such as 16MB")
			}
			return Lag{Bytes: b * u.factor}, nil
		}
	}
	d, err := durationIn(v, 100*time.Millisecond, time.Hour)
	if err != nil {
		return Lag{}, fmt.Errorf("must be a duration (5s) or a WAL size (16MB): %w", err)
	}
	return Lag{Time: d}, nil
}

// splitURLs splits a comma-separated list of PostgreSQL URLs; a comma
// followed by anything but a scheme belongs to a multi-host URL.
func splitURLs(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
		case len(out) > 0 && !strings.HasPrefix(part, "postgres://") && !strings.HasPrefix(part, "postgresql://"):
			out[len(out)-1] += "," + part
		default:
			out = append(out, part)
		}
	}
	return out
}

func replicaURLs(urls []string) error {
	for _, u := range urls {
		if err := schemeURL(u, "postgres", "postgresql"); err != nil {
			return err
		}
	}
	return nil
}
