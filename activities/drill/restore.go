package drill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/workflows/drill"
)

// scratchPrefix starts every scratch database's name; clean-up drops no
// database without it.
const scratchPrefix = "drill_scratch_"

// scratchComment marks a database as made by a restore drill.
const scratchComment = "platform drill scratch database"

// ScratchDatabase is the scratch database of drill drillID: derived, so a
// retried restore or a clean-up after a lost worker finds it.
func ScratchDatabase(drillID string) string {
	return scratchPrefix + strings.TrimPrefix(ids.Derive("s", drillID), "s_")
}

// scratchDir is the scratch redis-server's directory of drill drillID.
func (a *Activities) scratchDir(drillID string) string {
	base := a.Config.DrillScratchDir
	if base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, "platform-drill-"+strings.TrimPrefix(ids.Derive("s", drillID), "s_"))
}

// Restore restores a verified backup into scratch targets: a new database
// on the platform's server and a redis-server on a free loopback port, both
// at once. A retry first removes what an earlier attempt left. AnsweredAt
// is when both copies answered: t1 of the drill's RTO.
func (a *Activities) Restore(ctx context.Context, in drill.RestoreInput) (drill.RestoreResult, error) {
	if err := a.needStore(); err != nil {
		return drill.RestoreResult{}, err
	}
	if in.DrillID == "" || !backupstore.ValidID(in.Manifest.ID) {
		return drill.RestoreResult{}, temporal.NewNonRetryableApplicationError("restore needs a drill id and a backup manifest", "BadInput", nil)
	}
	defer keepAlive(ctx)()
	if err := a.Cleanup(ctx, drill.CleanupInput{DrillID: in.DrillID}); err != nil {
		return drill.RestoreResult{}, err
	}
	res := drill.RestoreResult{
		Scratch:   drill.Scratch{Database: ScratchDatabase(in.DrillID), RedisDir: a.scratchDir(in.DrillID)},
		Durations: map[string]float64{},
	}
	start := time.Now()
	var pgSeconds, redisSeconds float64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := a.restoreScratchPostgres(gctx, in.Manifest, res.Scratch.Database)
		pgSeconds = time.Since(start).Seconds()
		return err
	})
	g.Go(func() error {
		var err error
		res.Scratch.RedisAddr, err = a.restoreScratchRedis(gctx, in.Manifest, res.Scratch.RedisDir)
		redisSeconds = time.Since(start).Seconds()
		return err
	})
	if err := g.Wait(); err != nil {
		return res, err
	}
	res.AnsweredAt = time.Now().UTC()
	res.Durations["postgres_seconds"] = pgSeconds
	res.Durations["redis_seconds"] = redisSeconds
	res.Durations["total_seconds"] = time.Since(start).Seconds()
	return res, nil
}

func (a *Activities) restoreScratchPostgres(ctx context.Context, m drill.Manifest, name string) error {
	db := pgx.Identifier{name}.Sanitize()
	if _, err := a.DB.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	comment := scratchComment + ", created " + time.Now().UTC().Format(time.RFC3339)
	if _, err := a.DB.Exec(ctx, "COMMENT ON DATABASE "+db+" IS '"+comment+"'"); err != nil {
		return fmt.Errorf("mark scratch database: %w", err)
	}
	target, err := withDatabase(a.Config.SessionDatabaseURL(), name)
	if err != nil {
		return err
	}
	if err := RestorePostgres(ctx, a.Store, m, a.Config.PGBinDir, target, false); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		return fmt.Errorf("connect to scratch database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// artefact returns m's artefact called name.
func artefact(m drill.Manifest, name string) (drill.Artefact, bool) {
	for _, art := range m.Artefacts {
		if art.Name == name {
			return art, true
		}
	}
	return drill.Artefact{}, false
}

// summer hashes and counts what passes through it.
type summer struct {
	h hash.Hash
	n int64
}

func newSummer() *summer { return &summer{h: sha256.New()} }

func (s *summer) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return s.h.Write(p)
}

func (s *summer) sum() backupstore.Sum {
	return backupstore.Sum{Size: s.n, SHA256: hex.EncodeToString(s.h.Sum(nil))}
}

// RestorePostgres restores m's dump into the database at targetURL with
// pg_restore (no owners, no privileges, one transaction, stopping at the
// first error), checking the bytes it restored against the manifest as they
// stream: what was verified is what is restored. clean drops existing
// objects first (pg_restore --clean --if-exists).
func RestorePostgres(ctx context.Context, store *backupstore.Store, m drill.Manifest, pgBinDir, targetURL string, clean bool) error {
	art, ok := artefact(m, PostgresArtefact)
	if !ok {
		return corrupt(fmt.Sprintf("backup %s: manifest lists no %s", m.ID, PostgresArtefact))
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	restore, err := pgTool(pgBinDir, "pg_restore", targetURL, args...)
	if err != nil {
		return err
	}
	r, err := store.Open(ctx, m.ID, art.Name)
	if err != nil {
		return err
	}
	defer r.Close()
	s := newSummer()
	in := io.TeeReader(r, s)
	runErr := restore.run(ctx, in)
	if _, err := io.Copy(io.Discard, in); err != nil && runErr == nil {
		return fmt.Errorf("read %s: %w", art.Name, err)
	}
	if err := checkSum(m.ID, art, s.sum()); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("restore postgres: %w", runErr)
	}
	return nil
}

// FetchArtefact writes m's artefact name to path (mode 0600), checking it
// against the manifest; a mismatch removes the file and is CorruptBackup.
func FetchArtefact(ctx context.Context, store *backupstore.Store, m drill.Manifest, name, path string) error {
	art, ok := artefact(m, name)
	if !ok {
		return corrupt(fmt.Sprintf("backup %s: manifest lists no %s", m.ID, name))
	}
	r, err := store.Open(ctx, m.ID, name)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	s := newSummer()
	_, err = io.Copy(io.MultiWriter(f, s), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkSum(m.ID, art, s.sum())
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	return nil
}

func (a *Activities) restoreScratchRedis(ctx context.Context, m drill.Manifest, dir string) (string, error) {
	if _, ok := artefact(m, RedisArtefact); !ok {
		return "", nil // a backup without Redis restores without Redis
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("scratch redis dir: %w", err)
	}
	if err := FetchArtefact(ctx, a.Store, m, RedisArtefact, filepath.Join(dir, "dump.rdb")); err != nil {
		return "", err
	}
	return StartRedis(ctx, a.Config.RedisServerBin, dir)
}

// StartRedis starts a daemonised redis-server on a free loopback port that
// loads dir/dump.rdb, persists nothing, and keeps its pid file in dir; it
// returns the server's address once PING answers. StopRedis stops it.
func StartRedis(ctx context.Context, bin, dir string) (string, error) {
	var lastErr error
	for range 3 { // a free port can be taken between our probe and the bind
		port, err := freePort()
		if err != nil {
			return "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		server := tool{path: bin, args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
			"--daemonize", "yes", "--pidfile", filepath.Join(dir, "redis.pid"), "--logfile", filepath.Join(dir, "redis.log")}}
		if err := server.run(ctx, nil); err != nil {
			return "", fmt.Errorf("start scratch redis: %w", err)
		}
		if lastErr = waitForRedis(ctx, addr, dir); lastErr == nil {
			return addr, nil
		}
		_ = StopRedis(ctx, dir)
	}
	return "", fmt.Errorf("start scratch redis: %w", lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redisStartTimeout bounds how long a scratch server may take to load its
// snapshot and answer.
const redisStartTimeout = 2 * time.Minute

// waitForRedis polls PING until the server at addr answers PONG (not
// LOADING), its process dies, or the timeout passes.
func waitForRedis(ctx context.Context, addr, dir string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer in %s: %w", addr, redisStartTimeout, err)
		}
		if pid, perr := readPid(dir); perr == nil && !alive(pid) {
			return fmt.Errorf("scratch redis exited: %s", logTail(dir))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail is the end of the scratch server's log, saying why it stopped.
func logTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "redis.log"))
	if err != nil {
		return "no log"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 500 {
		s = s[len(s)-500:]
	}
	return s
}

var errNoPid = errors.New("no pid file")
