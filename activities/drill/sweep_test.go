package drill

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

// TestSweepScratch_DropsOnlyStaleScratchNoDrillOwns runs against the real
// Postgres: of five databases named like scratch, only the one with the
// exact scratch comment, old enough and owned by no running drill, is
// dropped; of three scratch dirs, only the old unowned one is removed.
// The bound is 30 days and the old ones say 2001, so no real drill's
// scratch on the shared server is in reach.
func TestSweepScratch_DropsOnlyStaleScratchNoDrillOwns(t *testing.T) {
	ctx := context.Background()
	db, _ := testenv.Postgres(t)
	scratchDir := t.TempDir()
	a := &Activities{Config: config.Config{DrillScratchDir: scratchDir, DrillScratchMaxAge: 30 * 24 * time.Hour}, DB: db, Log: testenv.Logger(t)}
	sfx := testenv.Suffix()
	running := "drl_sweep_running_" + sfx
	if _, err := db.Exec(ctx, `INSERT INTO drills (id, principal, scenario, status, workflow_id, run_id)
		VALUES ($1, 'ops', 'restore_verify', 'running', $1, 'run')`, running); err != nil {
		t.Fatal(err)
	}
	old := scratchComment + ", created 2001-02-03T04:05:06Z"
	dbs := map[string]string{ // name → comment ("" for none)
		scratchPrefix + "stale_" + sfx:     old,
		scratchPrefix + "young_" + sfx:     scratchComment + ", created " + time.Now().UTC().Format(time.RFC3339),
		scratchPrefix + "nocomment_" + sfx: "",
		scratchPrefix + "unrelated_" + sfx: "orders archive, created 2001-02-03T04:05:06Z",
		ScratchDatabase(running):           old,
	}
	for name, comment := range dbs {
		createDB(t, db, name, comment)
	}
	oldDir, youngDir, ownedDir := filepath.Join(scratchDir, "platform-drill-old"), filepath.Join(scratchDir, "platform-drill-young"),
		a.scratchDir(running)
	other := filepath.Join(scratchDir, "keep-me")
	for _, d := range []string{oldDir, youngDir, ownedDir, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	redisPid := startScratchRedis(t, oldDir)
	past := time.Now().Add(-40 * 24 * time.Hour)
	for _, d := range []string{oldDir, ownedDir, other} {
		if err := os.Chtimes(d, past, past); err != nil {
			t.Fatal(err)
		}
	}

	res, err := a.SweepScratch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Databases, scratchPrefix+"stale_"+sfx) {
		t.Errorf("dropped %v, want the stale scratch database among them", res.Databases)
	}
	for name := range dbs {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[name == scratchPrefix+"stale_"+sfx]; n != want {
			t.Errorf("database %s: %d left, want %d", name, n, want)
		}
	}
	if !slices.Equal(res.Dirs, []string{oldDir}) {
		t.Errorf("removed dirs %v, want only %s", res.Dirs, oldDir)
	}
	if res.Redis != 1 || alive(redisPid) {
		t.Errorf("scratch redis-server %d: stopped count %d, alive %v", redisPid, res.Redis, alive(redisPid))
	}
	for _, d := range []string{youngDir, ownedDir, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	// Once the drill has ended, its scratch is fair game.
	if _, err := db.Exec(ctx, `UPDATE drills SET status = $2 WHERE id = $1`, running, drill.Failed); err != nil {
		t.Fatal(err)
	}
	res, err = a.SweepScratch(ctx)
	if err != nil || !slices.Contains(res.Databases, ScratchDatabase(running)) || !slices.Equal(res.Dirs, []string{ownedDir}) {
		t.Errorf("after the drill ended: %+v, %v", res, err)
	}
}

// createDB creates a database with comment (none if empty) and drops it
// when the test ends, if the sweep left it.
func createDB(t *testing.T, db *pgxpool.Pool, name, comment string) {
	t.Helper()
	ctx := context.Background()
	id := pgx.Identifier{name}.Sanitize()
	if _, err := db.Exec(ctx, "CREATE DATABASE "+id+" TEMPLATE template0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)") })
	if comment == "" {
		return
	}
	if _, err := db.Exec(ctx, "COMMENT ON DATABASE "+id+" IS "+quoteLiteral(comment)); err != nil {
		t.Fatal(err)
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startScratchRedis starts a redis-server as restore drills do, its pid
// file in dir, and returns its pid; it is killed when the test ends.
func startScratchRedis(t *testing.T, dir string) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile", filepath.Join(dir, "redis.pid"),
		"--logfile", filepath.Join(dir, "redis.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-server: %v %s", err, out)
	}
	var pid int
	for range 100 {
		if pid, err = readPid(dir); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}
