package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	drillacts "github.com/acme/platform/activities/drill"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

// backupFixture takes a real backup of a migrated test database with two
// jobs, and of Redis with one key under a private prefix.
func backupFixture(t *testing.T) (storeURL string, m drill.Manifest, key string) {
	t.Helper()
	ctx := context.Background()
	db, dbURL := testenv.Postgres(t)
	rc, keys := testenv.Redis(t)
	for range 2 {
		id := ids.New(ids.Job)
		if _, err := db.Exec(ctx, `INSERT INTO jobs (id, principal, type, status, input, retry, workflow_id, run_id)
			VALUES ($1, 'acme', 'webhook', 'queued', '{}', '{}', $1, 'run')`, id); err != nil {
			t.Fatal(err)
		}
	}
	key = keys.Key("restored")
	if err := rc.Set(ctx, key, "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	storeURL = "file://" + t.TempDir()
	cfg.DatabaseURL, cfg.RedisURL, cfg.BackupURL = dbURL, testenv.RedisURL(), storeURL
	store, err := backupstore.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	res, err := (&drillacts.Activities{Config: cfg, DB: db, Redis: rc, Store: store}).Backup(ctx, drill.BackupInput{})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return storeURL, res.Manifest, key
}

// emptyDatabase returns the URL of a database name that does not exist
// yet; it is dropped when the test ends.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(os.Getenv("PLATFORM_TEST_DATABASE_URL"))
	if u == nil || u.Host == "" {
		u, _ = url.Parse("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	u.Path = "/platform_restore_" + testenv.Suffix()
	t.Cleanup(func() { _ = database.Drop(context.Background(), u.String()) })
	return u.String()
}

func runPlatform(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestRestore_IntoEmptyDatabaseAndRedis_RefusesNonEmptyWithoutForce(t *testing.T) {
	storeURL, m, key := backupFixture(t)
	ctx := context.Background()

	// A scratch redis-server with nothing in it is the Redis target.
	redisDir := filepath.Join(t.TempDir(), "platform-drill-target")
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		t.Fatal(err)
	}
	redisAddr, err := drillacts.StartRedis(ctx, "redis-server", redisDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drillacts.StopRedis(context.Background(), redisDir) })
	target := emptyDatabase(t)
	rdbOut := filepath.Join(t.TempDir(), "out.rdb")

	out, err := runPlatform(t, "restore", "--backup", m.ID, "--backup-url", storeURL, "--database-url", target,
		"--redis-url", "redis://"+redisAddr+"/0", "--redis-rdb-out", rdbOut)
	if err != nil {
		t.Fatalf("restore into an empty database: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var jobs int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs); err != nil || jobs != m.Postgres.Tables["jobs"] || jobs != 2 {
		t.Errorf("restored jobs = %d, %v; manifest %d", jobs, err, m.Postgres.Tables["jobs"])
	}
	conn.Close(ctx)
	rc := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rc.Close()
	if v, err := rc.Get(ctx, key).Result(); err != nil || v != "yes" {
		t.Errorf("restored redis %s = %q, %v", key, v, err)
	}
	if fi, err := os.Stat(rdbOut); err != nil || fi.Size() == 0 {
		t.Errorf("--redis-rdb-out wrote nothing: %v", err)
	}

	_, err = runPlatform(t, "restore", "--backup", m.ID, "--backup-url", storeURL, "--database-url", target)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a non-empty database = %v, want a refusal naming --force", err)
	}
	_, err = runPlatform(t, "restore", "--backup", m.ID, "--backup-url", storeURL, "--database-url", target,
		"--redis-url", "redis://"+redisAddr+"/0", "--force")
	if err != nil {
		t.Fatalf("restore --force over the restored copy: %v", err)
	}
}

func TestRestore_RefusesACorruptBackupBeforeTouchingTheTarget(t *testing.T) {
	storeURL, m, _ := backupFixture(t)
	path := filepath.Join(strings.TrimPrefix(storeURL, "file://"), m.ID, drillacts.RedisArtefact)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	target := emptyDatabase(t)
	_, err = runPlatform(t, "restore", "--backup", m.ID, "--backup-url", storeURL, "--database-url", target)
	if err == nil || !strings.Contains(err.Error(), drillacts.RedisArtefact) {
		t.Fatalf("restore of a corrupt backup = %v, want an error naming %s", err, drillacts.RedisArtefact)
	}
	conn, err := pgx.Connect(context.Background(), target)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("the target database was created although the backup is corrupt")
	}
}

func TestRestore_NeedsAnExplicitTarget(t *testing.T) {
	_, err := runPlatform(t, "restore", "--backup", ids.New(ids.Backup))
	if err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("restore without --database-url = %v", err)
	}
}
