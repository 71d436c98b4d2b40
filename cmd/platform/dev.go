package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/devserver"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/local"
)

func devCmd() *cobra.Command {
	return withConfigFlags(&cobra.Command{
		Use:   "dev",
		Short: "Run everything for development: Temporal dev server, migrations, supervised workers and API",
		Args:  cobra.NoArgs,
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, _ []string) error {
			return runDev(cmd.Context(), cfg, log, passedFlags(cmd))
		}),
	})
}

// runDev starts the dev Temporal server unless one answers, prepares the
// database, then runs the API in this process and the workers as child
// processes under the local scaling driver's supervisor (one to start
// with), so a worker policy with driver local really scales them. args
// are the configuration flags given, passed on to the workers.
func runDev(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	cfg, childEnv, err := devConfig(cfg)
	if err != nil {
		return err
	}
	server, err := startDevTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer server.Stop()
	if err := database.EnsureExists(ctx, cfg.SessionDatabaseURL()); err != nil {
		return err
	}
	if err := database.Migrate(ctx, cfg.SessionDatabaseURL(), log); err != nil {
		return err
	}
	tracing, err := installTracing(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer shutdownTracing(ctx, tracing, log)
	d, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	d.tracing = tracing
	defer d.close()
	adminKey, err := devAdminKey(ctx, cfg, d)
	if err != nil {
		return err
	}
	s, err := d.apiServer()
	if err != nil {
		return err
	}
	workers, err := devWorkers(cfg, log, args, childEnv)
	if err != nil {
		return err
	}
	printBanner(cfg, adminKey)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return workers.Run(gctx) }) // drains the workers on Ctrl-C
	g.Go(func() error { return s.Run(gctx) })       // with the API's ops listener
	return g.Wait()
}

// devConfig fills in what a dev stack needs and a production one must be
// given, and returns the same settings as environment for the workers.
func devConfig(cfg config.Config) (config.Config, []string, error) {
	if err := os.MkdirAll(cfg.DevDir, 0o700); err != nil {
		return cfg, nil, fmt.Errorf("create %s: %w", cfg.DevDir, err)
	}
	// No load balancer probes a dev stack: Ctrl-C stops it at once.
	cfg.ShutdownDelay = 0
	env := []string{"PLATFORM_SHUTDOWN_DELAY=0s", "PLATFORM_LOG_FORMAT=" + cfg.LogFormat}
	if cfg.SecretKey == "" {
		key, err := devSecret(filepath.Join(cfg.DevDir, "secret-key"), "")
		if err != nil {
			return cfg, nil, err
		}
		// Environment, not a flag: flags show in ps.
		cfg.SecretKey = key
		env = append(env, "PLATFORM_SECRET_KEY="+key)
	}
	if len(cfg.WebhookAllowedNetworks) == 0 {
		// Local receivers are the point of a dev stack.
		cfg.WebhookAllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		env = append(env, "PLATFORM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8,::1/128")
	}
	if cfg.BackupURL == config.DefaultBackupURL {
		// Backups of a dev stack stay beside its other state.
		dir, err := filepath.Abs(filepath.Join(cfg.DevDir, "backups"))
		if err != nil {
			return cfg, nil, err
		}
		cfg.BackupURL = "file://" + filepath.ToSlash(dir)
		env = append(env, "PLATFORM_BACKUP_URL="+cfg.BackupURL)
	}
	return cfg, env, nil
}

// devWorkers is the supervisor of the dev stack's "platform worker"
// processes. It starts with one worker whatever count a previous run left
// in the local driver's state: a dev stack comes up the same every time.
func devWorkers(cfg config.Config, log *slog.Logger, args, env []string) (*local.Supervisor, error) {
	sup, err := newSupervisor(cfg, log, scaling.TargetWorker, 1, args, env)
	if err != nil {
		return nil, err
	}
	sup.Reset = true
	return sup, nil
}

// startDevTemporal returns nil when a frontend already answers at the
// configured address (a server the developer runs), else starts one.
func startDevTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (*devserver.Server, error) {
	if devserver.Answers(ctx, cfg.TemporalAddress) {
		log.Info("using the Temporal server already answering", "address", cfg.TemporalAddress)
		return nil, nil
	}
	host, portText, err := net.SplitHostPort(cfg.TemporalAddress)
	if err != nil {
		return nil, fmt.Errorf("PLATFORM_TEMPORAL_ADDRESS: %w", err)
	}
	port, _ := strconv.Atoi(portText)
	log.Info("starting the Temporal dev server", "address", cfg.TemporalAddress, "ui", cfg.TemporalUIURL)
	return devserver.Start(ctx, devserver.Options{
		CLI: cfg.TemporalCLI, IP: host, Port: port, UIPort: uiPort(cfg.TemporalUIURL, port+1000),
		DBFile: filepath.Join(cfg.DevDir, "temporal.db"), Namespace: cfg.TemporalNamespace,
		Output: os.Stderr,
	})
}

func uiPort(uiURL string, fallback int) int {
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(uiURL, "http://"), "https://"))
	if n, convErr := strconv.Atoi(p); err == nil && convErr == nil {
		return n
	}
	return fallback
}

// devSecret returns the secret stored at path, making one (with prefix) the
// first time, so restarts of platform dev keep the same values.
func devSecret(path, prefix string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := prefix + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}

// devAdminKey returns the development admin API key, generated once and
// stored under the dev directory.
func devAdminKey(ctx context.Context, cfg config.Config, d *deps) (string, error) {
	secret, err := devSecret(filepath.Join(cfg.DevDir, "admin-key"), auth.KeyPrefix)
	if err != nil {
		return "", err
	}
	// The id derives from the secret, so registering it again is a no-op.
	_, _, err = (&keys.Store{DB: d.db}).Create(ctx, keys.NewKey{
		ID: ids.Derive(ids.Key, "dev-admin", secret), Principal: "dev", Name: "platform dev admin",
		Scopes: []string{auth.ScopeAdmin}, Secret: secret,
	})
	if err != nil && !errors.Is(err, problem.ErrConflict) {
		return "", fmt.Errorf("register the dev admin key: %w", err)
	}
	return secret, nil
}

func printBanner(cfg config.Config, adminKey string) {
	base := cfg.PublicBaseURL
	fmt.Fprintf(os.Stderr, `
  platform dev is up
    API          %s   (ready: %s/readyz)
    Ops          %s   (API /metrics, /healthz, /readyz)
    Workers      1 "platform worker" process to start with, each with its own ops port:
                 %s
                 (a worker policy with driver "local" scales them: PUT /v1/scaling/policies/worker)
    Temporal UI  %s   (frontend %s, namespace %s)
    Admin key    %s
                 curl -H "Authorization: Bearer %s" %s/v1/ping -X POST
  Ctrl-C stops everything.

`, base, base, localURL(cfg.OpsAddr), filepath.Join(cfg.ScalingLocalDir, "worker.status.json"), cfg.TemporalUIURL, cfg.TemporalAddress,
		cfg.TemporalNamespace, adminKey, adminKey, base)
}

// localURL is the http URL of a listen address such as ":8082".
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
