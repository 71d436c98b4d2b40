package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/internal/database"
)

// pgBin holds the PostgreSQL server binaries the pair is built from.
const pgBin = "/usr/lib/postgresql/15/bin"

// pgPair is a primary and a synchronous streaming standby of the test's
// own, on free loopback ports, never the machine's cluster.
type pgPair struct {
	Primary, Standby int // ports
	dir              string
}

// newPGPair builds the pair with initdb and pg_basebackup -R, applies the
// platform's migrations to database platform on the primary, and stops
// both servers (immediately) and removes their files when the test ends.
// It skips the test when the PostgreSQL binaries are missing.
func newPGPair(t *testing.T) *pgPair {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "pg_basebackup")); err != nil {
		t.Skipf("PostgreSQL server binaries not found in %s", pgBin)
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user to run initdb and pg_ctl as")
	}
	dir, err := os.MkdirTemp("", "pgpair-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgPair{Primary: freePort(t), Standby: freePort(t), dir: dir}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"standby", "primary"} {
			_ = p.pgCtl("stop", "-D", filepath.Join(dir, name), "-m", "immediate", "-w")
		}
		_ = os.RemoveAll(dir)
	})
	p.run(t, "initdb", "-D", p.data("primary"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	p.conf(t, "primary", "postgresql.conf", p.Primary, "wal_level = replica", "max_wal_senders = 5")
	p.start(t, "primary")
	ctx := context.Background()
	p.exec(t, p.Primary, "postgres", "CREATE DATABASE platform")
	if err := database.Migrate(ctx, p.url(p.Primary), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate the pair's primary: %v", err)
	}
	// Set before the base backup, so the standby inherits it as a real one
	// would (the pitfall the drill's promotion has to handle).
	p.exec(t, p.Primary, "postgres", "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'", "SELECT pg_reload_conf()")
	p.run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Primary), "-U", "postgres",
		"-D", p.data("standby"), "-X", "stream", "-R", "-c", "fast", "--no-sync")
	p.conf(t, "standby", "postgresql.auto.conf", p.Standby,
		fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=standby1'", p.Primary))
	p.start(t, "standby")
	eventually(t, 30*time.Second, "the standby to stream synchronously", func() bool {
		var state string
		_ = p.queryRow(p.Primary, `SELECT coalesce((SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = 'standby1'), '')`, &state)
		return state == "streaming sync"
	})
	return p
}

// URL is the platform's two-host URL: primary first, then the standby.
func (p *pgPair) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/platform?sslmode=disable&target_session_attrs=read-write", p.Primary, p.Standby)
}

func (p *pgPair) url(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/platform?sslmode=disable", port)
}

// InRecovery says whether the server on port is a standby.
func (p *pgPair) InRecovery(t *testing.T, port int) bool {
	t.Helper()
	var rec bool
	if err := p.queryRow(port, `SELECT pg_is_in_recovery()`, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (p *pgPair) queryRow(port int, sql string, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url(port))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

func (p *pgPair) exec(t *testing.T, port int, db string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, strings.Replace(p.url(port), "/platform?", "/"+db+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (p *pgPair) data(name string) string { return filepath.Join(p.dir, name) }

// conf appends the server's port, socket directory and lines to file.
func (p *pgPair) conf(t *testing.T, name, file string, port int, lines ...string) {
	t.Helper()
	all := append([]string{"", fmt.Sprintf("port = %d", port), "listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", p.dir), "fsync = off"}, lines...)
	f, err := os.OpenFile(filepath.Join(p.data(name), file), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(all, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *pgPair) start(t *testing.T, name string) {
	t.Helper()
	if err := p.pgCtl("start", "-D", p.data(name), "-l", filepath.Join(p.dir, name+".log"), "-w", "-t", "60"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, name+".log"))
		t.Fatalf("start %s: %v\n%s", name, err, log)
	}
}

func (p *pgPair) pgCtl(args ...string) error {
	out, err := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, "pg_ctl")}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", args[0], err, out)
	}
	return nil
}

// run runs a PostgreSQL binary as the postgres user.
func (p *pgPair) run(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, bin)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPGPair_Streams checks the harness alone.
func TestPGPair_Streams(t *testing.T) {
	p := newPGPair(t)
	if p.InRecovery(t, p.Primary) || !p.InRecovery(t, p.Standby) {
		t.Fatal("roles are wrong")
	}
}
