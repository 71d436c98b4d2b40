package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/workflows/drill"
)

// Cleanup removes drill in.DrillID's scratch targets: the scratch database
// (its sessions terminated), the scratch redis-server and its directory.
// Names derive from the drill id, so it works after a restore that failed
// half-way or a worker that was lost; what is already gone is fine. It
// never touches a database or directory that is not a drill's scratch.
func (a *Activities) Cleanup(ctx context.Context, in drill.CleanupInput) error {
	if in.DrillID == "" {
		return temporal.NewNonRetryableApplicationError("cleanup needs a drill id", "BadInput", nil)
	}
	var errs []error
	if err := a.dropScratchDatabase(ctx, ScratchDatabase(in.DrillID)); err != nil {
		errs = append(errs, err)
	}
	if err := removeScratchDir(ctx, a.scratchDir(in.DrillID)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

const scratchDatabaseComment = `
SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`

// dropScratchDatabase drops name, refusing a database that exists but was
// not made by a restore drill.
func (a *Activities) dropScratchDatabase(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, scratchPrefix) {
		return fmt.Errorf("%q is not a scratch database", name)
	}
	var comment *string
	err := a.DB.QueryRow(ctx, scratchDatabaseComment, name).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up scratch database: %w", err)
	}
	// A crash between CREATE and COMMENT leaves no comment: the derived
	// name is then the evidence.
	if comment != nil && !strings.HasPrefix(*comment, scratchComment) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("database %s exists and is not a drill's scratch database; not dropping it", name), "ScratchConflict", nil)
	}
	if _, err := a.DB.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop scratch database: %w", err)
	}
	return nil
}

// removeScratchDir stops the scratch redis-server of dir and removes dir.
func removeScratchDir(ctx context.Context, dir string) error {
	if !strings.HasPrefix(filepath.Base(dir), "platform-drill-") {
		return fmt.Errorf("%q is not a scratch directory", dir)
	}
	if err := StopRedis(ctx, dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove scratch dir: %w", err)
	}
	return nil
}

// StopRedis stops the redis-server whose pid file is in dir: SIGTERM (it
// persists nothing: --save "" --appendonly no), then SIGKILL if it lingers.
// No pid file, or a pid that is no longer a redis-server, is fine.
func StopRedis(ctx context.Context, dir string) error {
	pid, err := readPid(dir)
	if errors.Is(err, errNoPid) {
		return nil
	}
	if err != nil {
		return err
	}
	if !alive(pid) || !isRedisServer(pid) {
		return nil // gone, or the pid was reused by something else
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "redis.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, errNoPid
	}
	if err != nil {
		return 0, fmt.Errorf("read scratch redis pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("scratch redis pid file holds %q", strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// alive reports whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the command name in parentheses: "pid (comm) S …".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// isRedisServer reports whether pid runs redis-server, so a stale pid file
// never makes clean-up signal an unrelated process.
func isRedisServer(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true // no /proc to ask: trust the pid file
	}
	return strings.Contains(string(cmdline), "redis-server")
}
