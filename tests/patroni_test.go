package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/internal/database"
)

// patroniCluster is an etcd and two Patroni nodes of the test's own, on
// free loopback ports in a temp dir: never the machine's cluster.
type patroniCluster struct {
	dir   string
	etcd  int            // client port
	pg    map[string]int // member name → PostgreSQL port
	api   map[string]int // member name → REST API port
	procs map[string]*os.Process
}

var patroniMembers = []string{"node1", "node2"}

// newPatroniCluster starts etcd, then node1 (which bootstraps and leads),
// then node2 (which clones it), waits until node2 streams from the
// leader, and creates and migrates database platform. It skips the test
// without etcd, Patroni or the PostgreSQL binaries. Every process is
// killed in t.Cleanup: Patroni's process group, each postmaster (Patroni
// starts it in a session of its own) and etcd.
func newPatroniCluster(t *testing.T) *patroniCluster {
	t.Helper()
	for _, bin := range []string{"/usr/bin/patroni", "/usr/bin/etcd", filepath.Join(pgBin, "initdb")} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user to run Patroni as")
	}
	dir, err := os.MkdirTemp("", "patroni-")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	c := &patroniCluster{dir: dir, etcd: freePort(t), pg: map[string]int{}, api: map[string]int{}, procs: map[string]*os.Process{}}
	t.Cleanup(c.stop)
	peer := freePort(t)
	c.spawn(t, "etcd", "/usr/bin/etcd", "--name", "e1", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", c.etcdURL(), "--advertise-client-urls", c.etcdURL(),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("e1=http://127.0.0.1:%d", peer), "--initial-cluster-state", "new")
	eventually(t, 15*time.Second, "etcd to be healthy", func() bool { return httpOK(c.etcdURL() + "/health") })
	for _, name := range patroniMembers {
		c.pg[name], c.api[name] = freePort(t), freePort(t)
		yml := filepath.Join(dir, name+".yml")
		if err := os.WriteFile(yml, []byte(c.nodeConfig(name)), 0o644); err != nil {
			t.Fatal(err)
		}
		c.spawn(t, name, "runuser", "-u", "postgres", "--", "/usr/bin/patroni", yml)
		if name == patroniMembers[0] {
			eventually(t, 60*time.Second, "node1 to lead", func() bool { return httpOK(c.APIURL(name) + "/primary") })
		}
	}
	eventually(t, 60*time.Second, "node2 to stream from node1", func() bool { return c.Streams("node1", "node2") })
	// pg_stat_replication shows streaming a Patroni loop (loop_wait) before
	// Patroni's own /cluster does: the drill reads /cluster, so wait for it.
	eventually(t, 60*time.Second, "Patroni to report node2 a running replica with a known lag", func() bool { return c.ReplicaReady("node2") })
	ctx := context.Background()
	c.exec(t, "node1", "postgres", "CREATE DATABASE platform")
	if err := database.Migrate(ctx, c.url("node1", "platform"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate the Patroni leader: %v", err)
	}
	return c
}

// nodeConfig is a Patroni node with the short timings of
// docs/real-components.md and a trusting pg_hba on loopback.
func (c *patroniCluster) nodeConfig(name string) string {
	return fmt.Sprintf(`scope: drilltest
name: %[1]s
restapi:
  listen: 127.0.0.1:%[3]d
  connect_address: 127.0.0.1:%[3]d
etcd3:
  hosts: 127.0.0.1:%[4]d
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        wal_log_hints: "on"
        max_wal_senders: 5
        max_replication_slots: 5
  initdb:
  - encoding: UTF8
  - auth: trust
postgresql:
  listen: 127.0.0.1:%[5]d
  connect_address: 127.0.0.1:%[5]d
  data_dir: %[2]s/%[1]s
  bin_dir: %[6]s
  pgpass: %[2]s/pgpass-%[1]s
  authentication:
    superuser: {username: postgres, password: postgres}
    replication: {username: replicator, password: replicator}
    rewind: {username: postgres, password: postgres}
  parameters:
    unix_socket_directories: %[2]s
    fsync: "off"
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
`, name, c.dir, c.api[name], c.etcd, c.pg[name], pgBin)
}

// spawn starts a process in its own process group, output to dir/name.out.
func (c *patroniCluster) spawn(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(c.dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin:/usr/sbin:/sbin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c.procs[name] = cmd.Process
	go func() { _ = cmd.Wait() }()
}

// stop kills Patroni's process groups first (so nothing restarts a
// postmaster), then each postmaster, then etcd, and removes the files.
func (c *patroniCluster) stop() {
	for _, name := range append(append([]string{}, patroniMembers...), "etcd") {
		if name == "etcd" {
			for _, node := range patroniMembers {
				c.killPostmaster(node)
			}
		}
		if p := c.procs[name]; p != nil {
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
	}
	time.Sleep(200 * time.Millisecond)
	_ = os.RemoveAll(c.dir)
}

// killPostmaster stops the node's PostgreSQL (immediate shutdown) by the
// PID in its postmaster.pid.
func (c *patroniCluster) killPostmaster(node string) {
	data, err := os.ReadFile(filepath.Join(c.dir, node, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func (c *patroniCluster) etcdURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.etcd) }

// APIURL is the member's Patroni REST API.
func (c *patroniCluster) APIURL(name string) string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.api[name])
}

// URL is the platform's two-host URL over both members.
func (c *patroniCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/platform?sslmode=disable&target_session_attrs=read-write",
		c.pg["node1"], c.pg["node2"])
}

func (c *patroniCluster) url(name, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.pg[name], db)
}

// Leader is the member Patroni's /cluster names leader ("" if none).
func (c *patroniCluster) Leader(t *testing.T) string {
	t.Helper()
	var cl struct {
		Members []struct{ Name, Role string }
	}
	resp, err := http.Get(c.APIURL("node1") + "/cluster")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&cl) != nil {
		return ""
	}
	for _, m := range cl.Members {
		if m.Role == "leader" {
			return m.Name
		}
	}
	return ""
}

// ReplicaReady says whether Patroni's GET /cluster shows the member as a
// replica in state running or streaming with a numeric lag: what the
// patroni drill driver needs of a switchover candidate.
func (c *patroniCluster) ReplicaReady(name string) bool {
	var cl struct {
		Members []struct {
			Name, Role, State string
			Lag               json.RawMessage
		}
	}
	resp, err := http.Get(c.APIURL("node1") + "/cluster")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&cl) != nil {
		return false
	}
	for _, m := range cl.Members {
		var lag float64
		if m.Name == name && m.Role == "replica" && (m.State == "running" || m.State == "streaming") && json.Unmarshal(m.Lag, &lag) == nil {
			return true
		}
	}
	return false
}

// Streams says whether leader's pg_stat_replication shows replica streaming.
func (c *patroniCluster) Streams(leader, replica string) bool {
	var state string
	err := c.queryRow(leader, `SELECT coalesce((SELECT state FROM pg_stat_replication WHERE application_name = $1), '')`, &state, replica)
	return err == nil && state == "streaming"
}

// Writable says whether the member is out of recovery.
func (c *patroniCluster) Writable(name string) bool {
	var rec bool
	return c.queryRow(name, `SELECT pg_is_in_recovery()`, &rec) == nil && !rec
}

func (c *patroniCluster) queryRow(name, sql string, dest any, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url(name, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql, args...).Scan(dest)
}

func (c *patroniCluster) exec(t *testing.T, name, db string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url(name, db))
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

// httpOK says whether GET url answers 200.
func httpOK(url string) bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
