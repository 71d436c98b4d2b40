// Package drill holds the side effects of the platform.drill workflow:
// backups into the backup store, their verification, restores into scratch
// targets, the checks of a restored copy, and the clean-up of scratch
// targets. Every activity is idempotent: names derive from the drill id, so
// a retried activity, or a clean-up after a lost worker, finds what an
// earlier attempt made.
package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/flags"
	flagstore "github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/workflows/drill"
)

// Artefact names in a backup's folder.
const (
	PostgresArtefact = "postgres.dump"
	RedisArtefact    = "redis.rdb"
	ConfigArtefact   = "config.json"
)

// Activities are the drill family's activities. Config supplies the
// platform's database and Redis URLs, the backup settings and the tool
// paths; DB and Redis are the platform's own clients.
type Activities struct {
	Config config.Config
	DB     *pgxpool.Pool
	Redis  goredis.UniversalClient
	Store  *backupstore.Store
	// Temporal lists the platform's Schedules into the config bundle; nil
	// leaves them out.
	Temporal client.Client
	Log      *slog.Logger
}

// Backup takes a backup: the Postgres dump on an exported snapshot, the
// Redis RDB snapshot and the config bundle, then manifest.json. Its id
// derives from the drill id, so a retry reuses a completed backup and
// overwrites a partial one.
func (a *Activities) Backup(ctx context.Context, in drill.BackupInput) (drill.BackupResult, error) {
	if err := a.needStore(); err != nil {
		return drill.BackupResult{}, err
	}
	id := ids.New(ids.Backup)
	if in.DrillID != "" {
		id = ids.Derive(ids.Backup, in.DrillID)
	}
	var done drill.Manifest
	switch err := a.Store.Manifest(ctx, id, &done); {
	case err == nil:
		return drill.BackupResult{Manifest: done}, nil
	case !errors.Is(err, backupstore.ErrNotFound):
		return drill.BackupResult{}, err
	}
	defer keepAlive(ctx)()

	start := time.Now()
	m := drill.Manifest{ID: id, CreatedAt: start.UTC(), Durations: map[string]float64{}}
	if err := a.backupPostgres(ctx, &m); err != nil {
		return drill.BackupResult{}, err
	}
	if err := a.backupRedis(ctx, &m); err != nil {
		return drill.BackupResult{}, err
	}
	if err := a.backupConfig(ctx, &m); err != nil {
		return drill.BackupResult{}, err
	}
	m.Durations["total_seconds"] = time.Since(start).Seconds()
	if err := a.Store.PutManifest(ctx, id, m); err != nil {
		return drill.BackupResult{}, err
	}
	return drill.BackupResult{Manifest: m}, nil
}

const snapshotInfo = `
SELECT pg_export_snapshot(), now(), current_database(), current_setting('server_version'),
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`

const schemaVersion = `
SELECT CASE WHEN to_regclass('public.goose_db_version') IS NULL THEN 0
       ELSE (SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied) END`

// backupPostgres exports a snapshot in a repeatable-read transaction,
// counts every table inside it, and runs pg_dump on that same snapshot
// while the transaction stays open: the counts are exact for the dump.
func (a *Activities) backupPostgres(ctx context.Context, m *drill.Manifest) error {
	start := time.Now()
	tx, err := a.DB.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var snapshot string
	var snapTime time.Time
	pm := &m.Postgres
	if err := tx.QueryRow(ctx, snapshotInfo).Scan(&snapshot, &snapTime, &pm.Database, &pm.ServerVersion, &pm.WALLSN); err != nil {
		return fmt.Errorf("export snapshot: %w", err)
	}
	m.SnapshotTime = snapTime.UTC()
	if err := tx.QueryRow(ctx, schemaVersion).Scan(&pm.SchemaVersion); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if pm.Tables, err = countTables(ctx, tx); err != nil {
		return err
	}
	dump, err := pgTool(a.Config.PGBinDir, "pg_dump", a.Config.SessionDatabaseURL(),
		"--format=custom", "--snapshot="+snapshot, "--no-owner", "--no-privileges")
	if err != nil {
		return err
	}
	return a.putStream(ctx, m, dump, PostgresArtefact, "postgres", start)
}

// putStream stores the tool's output as an artefact of m and records it.
func (a *Activities) putStream(ctx context.Context, m *drill.Manifest, t tool, name, kind string, start time.Time) error {
	var sum backupstore.Sum
	err := t.stream(ctx, func(r io.Reader) error {
		var err error
		sum, err = a.Store.Put(ctx, m.ID, name, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("back up %s: %w", kind, err)
	}
	m.Artefacts = append(m.Artefacts, drill.Artefact{Name: name, Kind: kind, Size: sum.Size, SHA256: sum.SHA256})
	m.Durations[kind+"_seconds"] = time.Since(start).Seconds()
	return nil
}

const publicTables = `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`

// querier is a transaction or a connection.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// countTables counts the rows of every table of the public schema.
func countTables(ctx context.Context, q querier) (map[string]int64, error) {
	rows, err := q.Query(ctx, publicTables)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	counts := make(map[string]int64, len(names))
	for _, name := range names {
		var n int64
		if err := q.QueryRow(ctx, "SELECT count(*) FROM public."+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", name, err)
		}
		counts[name] = n
	}
	return counts, nil
}

// backupRedis fetches an RDB snapshot over the replication protocol
// (redis-cli --rdb, which works against a remote server) into a temporary
// file, then stores it.
func (a *Activities) backupRedis(ctx context.Context, m *drill.Manifest) error {
	start := time.Now()
	// Behind Sentinel the snapshot comes from the current primary.
	serverURL, err := redis.ServerURL(ctx, a.Config.RedisURL)
	if err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	opts, err := goredis.ParseURL(serverURL)
	if err != nil {
		return errors.New("parse redis url: not a redis URL")
	}
	m.Redis.DB = opts.DB
	info, err := a.Redis.InfoMap(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redis info: %w", err)
	}
	m.Redis.ServerVersion = info["Server"]["redis_version"]
	if m.Redis.Keys, err = a.Redis.DBSize(ctx).Result(); err != nil {
		return fmt.Errorf("redis dbsize: %w", err)
	}
	dir, err := os.MkdirTemp(a.Config.DrillScratchDir, "platform-backup-")
	if err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "dump.rdb")
	cli, err := redisCLI(a.Config.RedisCLIBin, serverURL, "--rdb", file)
	if err != nil {
		return err
	}
	if err := cli.run(ctx, nil); err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	defer f.Close()
	sum, err := a.Store.Put(ctx, m.ID, RedisArtefact, f)
	if err != nil {
		return err
	}
	m.Artefacts = append(m.Artefacts, drill.Artefact{Name: RedisArtefact, Kind: "redis", Size: sum.Size, SHA256: sum.SHA256})
	m.Durations["redis_seconds"] = time.Since(start).Seconds()
	return nil
}

// flagSchema is the $schema of flagd files, so editors validate them.
const flagSchema = "https://flagd.dev/schema/v0/flags.json"

// configBundle is config.json: what a rebuilt platform needs besides its
// data. It holds no secret: the configuration is masked as it is logged.
type configBundle struct {
	Flags     flags.File     `json:"flags"`
	Schedules []schedule     `json:"schedules"`
	Config    map[string]any `json:"config"`
}

// schedule is one Temporal Schedule as the bundle keeps it.
type schedule struct {
	ID           string `json:"id"`
	WorkflowType string `json:"workflow_type"`
	Paused       bool   `json:"paused"`
	Note         string `json:"note,omitempty"`
	Spec         any    `json:"spec"`
}

func (a *Activities) backupConfig(ctx context.Context, m *drill.Manifest) error {
	start := time.Now()
	recs, err := (&flagstore.Store{DB: a.DB}).All(ctx)
	if err != nil {
		return fmt.Errorf("export flags: %w", err)
	}
	b := configBundle{Flags: flags.File{Schema: flagSchema, Flags: make(map[string]flags.Flag, len(recs))},
		Config: maskedConfig(a.Config)}
	for _, r := range recs {
		b.Flags.Flags[r.Key] = r.Def
	}
	if b.Schedules, err = a.schedules(ctx); err != nil {
		return err
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config bundle: %w", err)
	}
	sum, err := a.Store.Put(ctx, m.ID, ConfigArtefact, strings.NewReader(string(data)+"\n"))
	if err != nil {
		return err
	}
	m.Artefacts = append(m.Artefacts, drill.Artefact{Name: ConfigArtefact, Kind: "config", Size: sum.Size, SHA256: sum.SHA256})
	m.Durations["config_seconds"] = time.Since(start).Seconds()
	return nil
}

// schedules lists the namespace's Temporal Schedules: ids, workflow types
// and specs.
func (a *Activities) schedules(ctx context.Context) ([]schedule, error) {
	out := []schedule{}
	if a.Temporal == nil {
		return out, nil
	}
	it, err := a.Temporal.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		out = append(out, schedule{ID: e.ID, WorkflowType: e.WorkflowType.Name, Paused: e.Paused, Note: e.Note, Spec: e.Spec})
	}
	return out, nil
}

// maskedConfig is the effective configuration as it is logged at start:
// every URL's password masked, the secret key shown only as set or not.
func maskedConfig(c config.Config) map[string]any {
	out := map[string]any{}
	for _, attr := range c.LogValue().Group() {
		v := attr.Value.Resolve()
		switch v.Kind() {
		case slog.KindDuration:
			out[attr.Key] = v.Duration().String()
		case slog.KindAny:
			out[attr.Key] = fmt.Sprint(v.Any())
		default:
			out[attr.Key] = v.Any()
		}
	}
	return out
}

// NoStoreErrorType marks a drill step that needs the backup store on a
// worker that could not open PLATFORM_BACKUP_URL.
const NoStoreErrorType = "NoBackupStore"

// needStore fails a step at once, without retries, when the worker has no
// backup store: the worker still runs every other workflow, and its start-up
// log says why the store is missing.
func (a *Activities) needStore() error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no backup store (PLATFORM_BACKUP_URL could not be opened)",
			NoStoreErrorType, nil)
	}
	return nil
}
