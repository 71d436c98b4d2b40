package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"

	flagstore "github.com/acme/platform/flags/store"
	"github.com/acme/platform/jobs/jobrow"
	"github.com/acme/platform/workflows/drill"
)

// sampleJobs reads the newest jobs through the platform's own scanner.
const sampleJobs = `SELECT ` + jobrow.Columns + ` FROM jobs ORDER BY created_at DESC LIMIT 5`

// CheckRestore compares the restored copy with its manifest: every table's
// row count and the schema version, then reads sample records through the
// platform's own store code (the jobs scanner, the flag store) pointed at
// the copy, and counts the scratch Redis's keys. Differences are listed in
// Mismatches, not returned as errors: the workflow judges them.
func (a *Activities) CheckRestore(ctx context.Context, in drill.CheckRestoreInput) (drill.CheckRestoreResult, error) {
	if !strings.HasPrefix(in.Scratch.Database, scratchPrefix) {
		return drill.CheckRestoreResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%q is not a scratch database", in.Scratch.Database), "BadInput", nil)
	}
	defer keepAlive(ctx)()
	target, err := withDatabase(a.Config.SessionDatabaseURL(), in.Scratch.Database)
	if err != nil {
		return drill.CheckRestoreResult{}, err
	}
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		return drill.CheckRestoreResult{}, fmt.Errorf("connect to scratch database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var res drill.CheckRestoreResult
	if err := checkTables(ctx, conn, in.Manifest.Postgres, &res); err != nil {
		return res, err
	}
	readSamples(ctx, conn, &res)
	if in.Scratch.RedisAddr != "" {
		if err := checkRedis(ctx, in.Scratch.RedisAddr, in.Manifest.Redis, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkTables compares the copy's row counts and schema version with the
// manifest's.
func checkTables(ctx context.Context, conn *pgx.Conn, want drill.PostgresManifest, res *drill.CheckRestoreResult) error {
	got, err := countTables(ctx, conn)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(want.Tables))
	for name := range want.Tables {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n, ok := got[name]
		switch {
		case !ok:
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("table %s is missing from the copy", name))
		case n != want.Tables[name]:
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("table %s has %d rows, the manifest %d", name, n, want.Tables[name]))
		}
		res.TablesChecked++
	}
	for name := range got {
		if _, ok := want.Tables[name]; !ok {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("table %s is in the copy but not in the manifest", name))
		}
	}
	var version int64
	if err := conn.QueryRow(ctx, schemaVersion).Scan(&version); err != nil {
		return fmt.Errorf("read the copy's schema version: %w", err)
	}
	if version != want.SchemaVersion {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf("schema version is %d, the manifest %d", version, want.SchemaVersion))
	}
	return nil
}

// readSamples reads records as the platform reads them: a copy whose rows
// the platform's code cannot scan is not a working restore.
func readSamples(ctx context.Context, conn *pgx.Conn, res *drill.CheckRestoreResult) {
	rows, err := conn.Query(ctx, sampleJobs)
	if err == nil {
		for rows.Next() {
			if _, serr := jobrow.Scan(rows); serr != nil {
				err = serr
				break
			}
			res.SamplesRead++
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf("jobs cannot be read through the platform's scanner: %v", err))
	}
	set, err := flagstore.Load(ctx, conn)
	if err != nil {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf("flags cannot be loaded through the flag store: %v", err))
		return
	}
	res.SamplesRead += len(set.Keys())
}

// checkRedis counts the scratch server's keys in the platform's database
// index. A live cache's key count moves between the manifest's DBSIZE and
// the snapshot, and keys whose TTL passed are dropped on load, so only an
// empty copy of a non-empty cache is a mismatch.
func checkRedis(ctx context.Context, addr string, want drill.RedisManifest, res *drill.CheckRestoreResult) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: want.DB})
	defer c.Close()
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf("scratch redis does not answer: %v", err))
		return nil
	}
	res.RedisKeys = n
	if n == 0 && want.Keys > 0 {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf("scratch redis holds no key, the manifest %d", want.Keys))
	}
	return nil
}
