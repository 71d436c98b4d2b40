package testenv

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PgBouncerBin is Debian's pgbouncer.
const PgBouncerBin = "/usr/sbin/pgbouncer"

// PgBouncer starts a PgBouncer of the test's own in transaction mode, on a
// free loopback port, in front of the database of dbURL (which must be on
// 127.0.0.1 with trust authentication, as the test server is), and returns
// the URL of that database through it. It skips the test when pgbouncer is
// not installed. PgBouncer refuses to run as root, so it drops to the
// postgres user (-u); its configuration stays readable in a 0755 directory
// and it logs to stderr, which the test keeps.
func PgBouncer(t testing.TB, dbURL string) string {
	t.Helper()
	bin, err := exec.LookPath(PgBouncerBin)
	if err != nil {
		t.Skipf("pgbouncer not installed: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	ini := fmt.Sprintf(`[databases]
%[1]s = host=%[2]s port=%[3]s dbname=%[1]s user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[4]d
unix_socket_dir =
auth_type = trust
auth_file = %[5]s
pool_mode = transaction
default_pool_size = 8
max_client_conn = 200
server_reset_query =
`, name, u.Hostname(), u.Port(), port, filepath.Join(dir, "userlist.txt"))
	for file, content := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": `"postgres" ""` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres"}, args...)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	Start(t, dir, "pgbouncer", addr, bin, args...)
	through := *u
	through.Host = addr
	return through.String()
}
