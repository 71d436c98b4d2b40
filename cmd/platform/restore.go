package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	drillacts "github.com/acme/platform/activities/drill"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/workflows/drill"
)

// restoreOptions are platform restore's own flags; the targets are the
// configuration's --database-url and --redis-url, which must be given on
// the command line so a restore never lands on PLATFORM_DATABASE_URL by
// default.
type restoreOptions struct {
	backupID  string
	force     bool
	rdbOut    string
	withRedis bool
}

func restoreCmd() *cobra.Command {
	var o restoreOptions
	cmd := withConfigFlags(&cobra.Command{
		Use:   "restore --backup bkp_… --database-url URL [--redis-url URL | --redis-rdb-out PATH] [--force]",
		Short: "Restore a backup into a database (and Redis) that you name, after verifying every checksum",
		Long: "Reads the backup from PLATFORM_BACKUP_URL (--backup-url), checks every artefact's size and SHA-256\n" +
			"against its manifest, then restores the Postgres dump into --database-url with pg_restore (created\n" +
			"when missing). A target holding any table, view or sequence is refused unless --force, which drops\n" +
			"the objects the dump recreates (pg_restore --clean --if-exists).\n\n" +
			"Redis: --redis-url copies every key of the backup's database index into the target's index (a\n" +
			"temporary local redis-server loads the snapshot; keys move with DUMP/RESTORE, TTLs kept; the target\n" +
			"must run the same or a newer Redis). A non-empty target index is refused unless --force, which\n" +
			"replaces keys of the same name. --redis-rdb-out PATH instead writes the verified RDB file, for a\n" +
			"server you restart on it (managed Redis that refuses RESTORE).",
		Args: cobra.NoArgs,
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			if !cmd.Flags().Changed("database-url") {
				return errors.New("--database-url is required: name the target database on the command line")
			}
			if o.backupID == "" {
				return errors.New("--backup is required")
			}
			o.withRedis = cmd.Flags().Changed("redis-url")
			return runRestore(cmd.Context(), cfg, log, o)
		}),
	})
	cmd.Flags().StringVar(&o.backupID, "backup", "", "id of the backup to restore (bkp_…)")
	cmd.Flags().BoolVar(&o.force, "force", false, "restore into a non-empty database (dropping the objects the dump recreates) or Redis")
	cmd.Flags().StringVar(&o.rdbOut, "redis-rdb-out", "", "write the verified Redis snapshot to this file")
	return cmd
}

func runRestore(ctx context.Context, cfg config.Config, log *slog.Logger, o restoreOptions) error {
	store, err := backupstore.Open(ctx, cfg.BackupURL)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := drillacts.LoadManifest(ctx, store, o.backupID)
	if err != nil {
		return err
	}
	if err := drillacts.Verify(ctx, store, m); err != nil {
		return err
	}
	log.Info("backup verified", "backup", m.ID, "snapshot_time", m.SnapshotTime, "artefacts", len(m.Artefacts))
	nonEmpty, err := targetObjects(ctx, cfg.SessionDatabaseURL())
	if err != nil {
		return err
	}
	if nonEmpty > 0 && !o.force {
		return fmt.Errorf("the target database holds %d tables, views or sequences: refusing to restore over them without --force", nonEmpty)
	}
	if err := drillacts.RestorePostgres(ctx, store, m, cfg.PGBinDir, cfg.SessionDatabaseURL(), nonEmpty > 0); err != nil {
		return err
	}
	log.Info("postgres restored", "backup", m.ID, "database", m.Postgres.Database, "tables", len(m.Postgres.Tables))
	if o.rdbOut != "" {
		if err := drillacts.FetchArtefact(ctx, store, m, drillacts.RedisArtefact, o.rdbOut); err != nil {
			return err
		}
		log.Info("redis snapshot written", "path", o.rdbOut)
	}
	if o.withRedis {
		n, err := restoreRedis(ctx, cfg, store, m, o.force)
		if err != nil {
			return err
		}
		log.Info("redis restored", "keys", n)
	}
	return nil
}

const userObjects = `
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`

// targetObjects counts the target database's tables, views and sequences,
// creating the database first when it does not exist.
func targetObjects(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name: no such database
		if err := database.EnsureExists(ctx, url); err != nil {
			return 0, err
		}
		conn, err = pgx.Connect(ctx, url)
	}
	if err != nil {
		return 0, fmt.Errorf("connect to the target database: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, userObjects).Scan(&n); err != nil {
		return 0, fmt.Errorf("inspect the target database: %w", err)
	}
	return n, nil
}

// restoreRedis loads the backup's snapshot into a temporary local
// redis-server and copies the keys of the backup's database index into the
// target with DUMP and RESTORE, keeping TTLs. It returns the keys copied.
func restoreRedis(ctx context.Context, cfg config.Config, store *backupstore.Store, m drill.Manifest, force bool) (int, error) {
	target, err := redis.Open(cfg.RedisURL)
	if err != nil {
		return 0, err
	}
	defer target.Close()
	if n, err := target.DBSize(ctx).Result(); err != nil {
		return 0, fmt.Errorf("target redis: %w", err)
	} else if n > 0 && !force {
		return 0, fmt.Errorf("the target redis database holds %d keys: refusing to restore over them without --force", n)
	}
	dir, err := os.MkdirTemp(cfg.DrillScratchDir, "platform-restore-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := drillacts.FetchArtefact(ctx, store, m, drillacts.RedisArtefact, filepath.Join(dir, "dump.rdb")); err != nil {
		return 0, err
	}
	addr, err := drillacts.StartRedis(ctx, cfg.RedisServerBin, dir)
	if err != nil {
		return 0, err
	}
	defer func() { _ = drillacts.StopRedis(context.WithoutCancel(ctx), dir) }()
	source := goredis.NewClient(&goredis.Options{Addr: addr, DB: m.Redis.DB})
	defer source.Close()
	return copyKeys(ctx, source, target)
}

// copyKeys copies every key of source into target, a batch at a time.
func copyKeys(ctx context.Context, source *goredis.Client, target goredis.UniversalClient) (int, error) {
	copied := 0
	var cursor uint64
	for {
		keys, next, err := source.Scan(ctx, cursor, "*", 500).Result()
		if err != nil {
			return copied, fmt.Errorf("scan snapshot: %w", err)
		}
		n, err := copyBatch(ctx, source, target, keys)
		copied += n
		if err != nil {
			return copied, err
		}
		if cursor = next; cursor == 0 {
			return copied, nil
		}
	}
}

func copyBatch(ctx context.Context, source *goredis.Client, target goredis.UniversalClient, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	dumps := make([]*goredis.StringCmd, len(keys))
	ttls := make([]*goredis.DurationCmd, len(keys))
	if _, err := source.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			dumps[i], ttls[i] = p.Dump(ctx, k), p.PTTL(ctx, k)
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("dump snapshot keys: %w", err)
	}
	n := 0
	_, err := target.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			data, err := dumps[i].Result()
			ttl := ttls[i].Val()
			if err != nil || ttl == -2 { // expired meanwhile
				continue
			}
			if ttl < 0 {
				ttl = 0 // no expiry
			}
			p.RestoreReplace(ctx, k, ttl, data)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("restore keys into the target: %w", err)
	}
	return n, nil
}
