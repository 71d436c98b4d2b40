package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/workflows/drill"
	"github.com/acme/platform/workflows/retention"
)

// defaultScratchMaxAge stands in for an unset PLATFORM_DRILL_SCRATCH_MAX_AGE:
// a zero bound would sweep the scratch of drills running right now.
const defaultScratchMaxAge = 6 * time.Hour

// scratchCreated starts the comment of every scratch database, followed by
// its creation time in RFC 3339.
const scratchCreated = scratchComment + ", created "

// SweepScratch removes what drills left behind when their worker was lost
// (a drill removes its own scratch on success, failure and abort): every
// scratch database whose comment says it was created more than
// PLATFORM_DRILL_SCRATCH_MAX_AGE ago, and every scratch directory (with its
// redis-server) last changed that long ago, unless a queued or running
// drill owns it. A database without that exact comment is never touched,
// whatever its name.
func (a *Activities) SweepScratch(ctx context.Context) (retention.SweepResult, error) {
	defer keepAlive(ctx)()
	res := retention.SweepResult{Databases: []string{}, Dirs: []string{}}
	maxAge := a.Config.DrillScratchMaxAge
	if maxAge <= 0 {
		maxAge = defaultScratchMaxAge
	}
	cutoff := time.Now().Add(-maxAge)
	owned, err := a.ownedScratch(ctx)
	if err != nil {
		return res, err
	}
	return res, errors.Join(a.sweepDatabases(ctx, cutoff, owned, &res), a.sweepDirs(ctx, cutoff, owned, &res))
}

// ownedScratch names the scratch databases and directories of drills
// that are queued or running.
func (a *Activities) ownedScratch(ctx context.Context) (map[string]bool, error) {
	rows, err := a.DB.Query(ctx, `SELECT id FROM drills WHERE status = ANY($1)`, []string{drill.Queued, drill.Running})
	if err != nil {
		return nil, fmt.Errorf("list running drills: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list running drills: %w", err)
	}
	owned := map[string]bool{}
	for _, id := range ids {
		owned[ScratchDatabase(id)] = true
		owned[filepath.Base(a.scratchDir(id))] = true
	}
	return owned, nil
}

func (a *Activities) sweepDatabases(ctx context.Context, cutoff time.Time, owned map[string]bool, res *retention.SweepResult) error {
	rows, err := a.DB.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`, scratchPrefix)
	if err != nil {
		return fmt.Errorf("list scratch databases: %w", err)
	}
	type db struct{ name, comment string }
	dbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (db, error) {
		var d db
		return d, r.Scan(&d.name, &d.comment)
	})
	if err != nil {
		return fmt.Errorf("list scratch databases: %w", err)
	}
	var errs []error
	for _, d := range dbs {
		if !staleScratchDatabase(d.name, d.comment, cutoff) || owned[d.name] {
			res.Kept++
			continue
		}
		if _, err := a.DB.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop scratch database %s: %w", d.name, err))
			continue
		}
		a.Log.Info("dropped a drill's leftover scratch database", "database", d.name, "comment", d.comment)
		res.Databases = append(res.Databases, d.name)
	}
	return errors.Join(errs...)
}

// staleScratchDatabase reports whether a database is a drill's scratch by
// its name and exact comment, created before cutoff.
func staleScratchDatabase(name, comment string, cutoff time.Time) bool {
	at, ok := strings.CutPrefix(comment, scratchCreated)
	if !strings.HasPrefix(name, scratchPrefix) || !ok {
		return false
	}
	created, err := time.Parse(time.RFC3339, at)
	return err == nil && created.Before(cutoff)
}

func (a *Activities) sweepDirs(ctx context.Context, cutoff time.Time, owned map[string]bool, res *retention.SweepResult) error {
	base := filepath.Dir(a.scratchDir("x"))
	entries, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("list scratch dirs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "platform-drill-") {
			continue // symlinks are not dirs here: never followed
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) || owned[e.Name()] {
			res.Kept++
			continue
		}
		dir := filepath.Join(base, e.Name())
		if pid, err := readPid(dir); err == nil && alive(pid) && isRedisServer(pid) {
			res.Redis++
		}
		if err := removeScratchDir(ctx, dir); err != nil {
			errs = append(errs, err)
			continue
		}
		a.Log.Info("removed a drill's leftover scratch dir", "dir", dir)
		res.Dirs = append(res.Dirs, dir)
	}
	return errors.Join(errs...)
}
