package drill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/flags"
	flagstore "github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

// fixture is a platform database with a few rows, a Redis prefix with a
// few keys, and a file:// backup store in a temp dir.
type fixture struct {
	acts     *Activities
	storeDir string
	redisKey string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, dbURL := testenv.Postgres(t)
	rc, keys := testenv.Redis(t)
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	storeDir := t.TempDir()
	cfg.DatabaseURL, cfg.RedisURL, cfg.DrillScratchDir = dbURL, testenv.RedisURL(), t.TempDir()
	cfg.BackupURL, cfg.BackupRetention = "file://"+storeDir, 2
	store, err := backupstore.Open(ctx, cfg.BackupURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	for i := range 3 {
		_, err := db.Exec(ctx, `INSERT INTO jobs (id, principal, type, status, input, retry, workflow_id, run_id)
			VALUES ($1, 'acme', 'webhook', 'succeeded', '{}', '{}', $1, 'run')`, ids.New(ids.Job)+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	def := flags.Flag{State: flags.StateEnabled, DefaultVariant: "off",
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")}}
	if _, _, err := (&flagstore.Store{DB: db}).Put(ctx, "banner", def, flagstore.Cond{}, flagstore.Change{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	key := keys.Key("greeting")
	if err := rc.Set(ctx, key, "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return &fixture{acts: &Activities{Config: cfg, DB: db, Redis: rc, Store: store, Log: testenv.Logger(t)},
		storeDir: storeDir, redisKey: key}
}

func applicationErrorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func fileSum(t *testing.T, path string) (int64, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(s[:])
}

// TestDrillActivities runs the activities in the order a restore drill
// does, against real Postgres, Redis, pg_dump, pg_restore, redis-cli and
// redis-server; one backup serves every step (a Redis snapshot takes ~5 s).
func TestDrillActivities(t *testing.T) {
	f := newFixture(t)
	a := f.acts
	ctx := context.Background()
	drillID := "drl_test_" + testenv.Suffix()
	t.Cleanup(func() { _ = a.Cleanup(context.Background(), drill.CleanupInput{DrillID: drillID}) })

	res, err := a.Backup(ctx, drill.BackupInput{DrillID: drillID})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	m := res.Manifest

	t.Run("manifest_has_exact_counts_and_checksums", func(t *testing.T) {
		if m.ID != ids.Derive(ids.Backup, drillID) {
			t.Errorf("id %s is not derived from the drill id", m.ID)
		}
		if m.Postgres.Tables["jobs"] != 3 || m.Postgres.Tables["flags"] != 1 {
			t.Errorf("tables = %v, want jobs 3 and flags 1", m.Postgres.Tables)
		}
		if _, ok := m.Postgres.Tables["goose_db_version"]; !ok {
			t.Errorf("goose_db_version not counted: %v", m.Postgres.Tables)
		}
		if m.Postgres.SchemaVersion < 201 || m.Postgres.ServerVersion == "" || m.Postgres.WALLSN == "" {
			t.Errorf("postgres manifest = %+v", m.Postgres)
		}
		if m.SnapshotTime.IsZero() || time.Since(m.SnapshotTime) > time.Minute || m.Redis.ServerVersion == "" {
			t.Errorf("snapshot time %v, redis %+v", m.SnapshotTime, m.Redis)
		}
		if len(m.Artefacts) != 3 {
			t.Fatalf("artefacts = %+v", m.Artefacts)
		}
		for _, art := range m.Artefacts {
			size, sum := fileSum(t, filepath.Join(f.storeDir, m.ID, art.Name))
			if size != art.Size || sum != art.SHA256 || size == 0 {
				t.Errorf("%s: stored size %d sha %s, manifest %+v", art.Name, size, sum, art)
			}
		}
		bundle, err := os.ReadFile(filepath.Join(f.storeDir, m.ID, ConfigArtefact))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(bundle), `"banner"`) || !strings.Contains(string(bundle), "flagd.dev/schema") {
			t.Errorf("config bundle lacks the flags as a flagd file:\n%s", bundle)
		}
		manifest, _ := os.ReadFile(filepath.Join(f.storeDir, m.ID, backupstore.ManifestName))
		if strings.Contains(string(manifest), a.Config.DatabaseURL) || strings.Contains(string(manifest), "postgres://") {
			t.Errorf("manifest holds a connection URL:\n%s", manifest)
		}
	})

	t.Run("retried_backup_reuses_the_completed_one", func(t *testing.T) {
		again, err := a.Backup(ctx, drill.BackupInput{DrillID: drillID})
		if err != nil || again.Manifest.ID != m.ID || !again.Manifest.CreatedAt.Equal(m.CreatedAt) {
			t.Errorf("retry = %+v, %v", again.Manifest, err)
		}
	})

	t.Run("verify_passes_and_defaults_to_the_newest", func(t *testing.T) {
		got, err := a.VerifyBackup(ctx, drill.VerifyBackupInput{})
		if err != nil || got.Manifest.ID != m.ID {
			t.Fatalf("verify newest = %s, %v", got.Manifest.ID, err)
		}
	})

	t.Run("restore_check_cleanup", func(t *testing.T) {
		rr, err := a.Restore(ctx, drill.RestoreInput{DrillID: drillID, Manifest: m})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if rr.Scratch.Database != ScratchDatabase(drillID) || rr.Scratch.RedisAddr == "" || rr.AnsweredAt.IsZero() {
			t.Fatalf("restore result = %+v", rr)
		}
		check, err := a.CheckRestore(ctx, drill.CheckRestoreInput{Manifest: m, Scratch: rr.Scratch})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if len(check.Mismatches) != 0 || check.TablesChecked != len(m.Postgres.Tables) || check.SamplesRead != 4 || check.RedisKeys == 0 {
			t.Errorf("check = %+v", check)
		}
		scratchRedis := testRedis(t, rr.Scratch.RedisAddr)
		if v, err := scratchRedis.Get(ctx, f.redisKey).Result(); err != nil || v != "hello" {
			t.Errorf("scratch redis %s = %q, %v", f.redisKey, v, err)
		}

		// A re-run (a retried activity) starts over cleanly.
		if _, err := a.Restore(ctx, drill.RestoreInput{DrillID: drillID, Manifest: m}); err != nil {
			t.Fatalf("restore again: %v", err)
		}

		if err := a.Cleanup(ctx, drill.CleanupInput{DrillID: drillID, Scratch: rr.Scratch}); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		var n int
		if err := a.DB.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'drill_scratch_%' AND datname = $1`, rr.Scratch.Database).Scan(&n); err != nil || n != 0 {
			t.Errorf("scratch database remains: %d, %v", n, err)
		}
		if _, err := os.Stat(rr.Scratch.RedisDir); !os.IsNotExist(err) {
			t.Errorf("scratch dir remains: %v", err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for answers(rr.Scratch.RedisAddr) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if answers(rr.Scratch.RedisAddr) {
			t.Errorf("scratch redis still answers at %s", rr.Scratch.RedisAddr)
		}
		if err := a.Cleanup(ctx, drill.CleanupInput{DrillID: drillID}); err != nil {
			t.Errorf("second cleanup: %v", err)
		}
	})

	t.Run("corrupt_byte_is_CorruptBackup", func(t *testing.T) {
		path := filepath.Join(f.storeDir, m.ID, PostgresArtefact)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = a.VerifyBackup(ctx, drill.VerifyBackupInput{BackupID: m.ID})
		if applicationErrorType(err) != drill.CorruptBackupErrorType || !strings.Contains(err.Error(), PostgresArtefact) {
			t.Fatalf("verify of a corrupted dump = %v, want CorruptBackup naming %s", err, PostgresArtefact)
		}
		// A restore that skipped verification still refuses the bytes.
		other := "drl_test_" + testenv.Suffix()
		t.Cleanup(func() { _ = a.Cleanup(context.Background(), drill.CleanupInput{DrillID: other}) })
		_, err = a.Restore(ctx, drill.RestoreInput{DrillID: other, Manifest: m})
		if applicationErrorType(err) != drill.CorruptBackupErrorType {
			t.Fatalf("restore of a corrupted dump = %v, want CorruptBackup", err)
		}
	})

	t.Run("unknown_backup_is_NoBackup", func(t *testing.T) {
		_, err := a.VerifyBackup(ctx, drill.VerifyBackupInput{BackupID: ids.New(ids.Backup)})
		if applicationErrorType(err) != drill.NoBackupErrorType {
			t.Fatalf("verify of an unknown backup = %v, want NoBackup", err)
		}
	})
}

func TestVerifyBackup_EmptyStoreIsNoBackup(t *testing.T) {
	store, err := backupstore.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := &Activities{Store: store}
	_, err = a.VerifyBackup(context.Background(), drill.VerifyBackupInput{})
	if applicationErrorType(err) != drill.NoBackupErrorType {
		t.Fatalf("verify with no backup = %v, want NoBackup", err)
	}
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
