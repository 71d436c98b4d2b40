package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/internal/temporalclient"
	"github.com/acme/platform/worker"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func withConfigFlags(cmd *cobra.Command) *cobra.Command {
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func apiCmd() *cobra.Command {
	return processCmd("api", "Serve the REST API", "json", runAPI)
}

// processCmd is a subcommand that takes the configuration flags and runs one
// long-running process with its logger.
func processCmd(use, short, logFormat string, run func(context.Context, config.Config, *slog.Logger) error) *cobra.Command {
	return withConfigFlags(&cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: withConfig(logFormat, func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			return run(cmd.Context(), cfg, log)
		}),
	})
}

// runAPI serves the REST API until ctx is done, then drains.
func runAPI(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return withProcess(ctx, "api", cfg, log, func(ctx context.Context, d *deps) error {
		s, err := d.apiServer()
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
}

func workerCmd() *cobra.Command {
	return processCmd("worker", "Run the Temporal worker (workflows and activities)", "json", runWorker)
}

// runWorker polls the task queues and serves the worker's ops listener
// until ctx is done, then lets running activities finish.
func runWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return withProcess(ctx, "worker", cfg, log, func(ctx context.Context, d *deps) error {
		// The worker follows the flags too: schedules start traces there.
		if err := d.startFlags(); err != nil {
			return err
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return worker.Run(ctx, d.workerDeps()) })
		g.Go(func() error { return serveWorkerOps(ctx, cfg, d) })
		return g.Wait()
	})
}

// serveWorkerOps serves the worker's /metrics, /healthz and /readyz on
// PLATFORM_WORKER_OPS_ADDR until ctx is done.
func serveWorkerOps(ctx context.Context, cfg config.Config, d *deps) error {
	ready := func(ctx context.Context) error { return temporalclient.Check(ctx, d.temporal) }
	return telemetry.ServeOps(ctx, cfg.WorkerOpsAddr, d.registry, ready, d.log)
}

// withProcess is the start-up prelude every long-running process shares:
// log the version and the masked configuration, install tracing, connect to
// Postgres, Redis and Temporal, run, and release all of it in reverse order.
func withProcess(ctx context.Context, role string, cfg config.Config, log *slog.Logger, run func(context.Context, *deps) error) error {
	log.Info("starting "+role, "version", versionString(), "config", cfg)
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
	return run(ctx, d)
}

func migrateCmd() *cobra.Command {
	var create bool
	cmd := withConfigFlags(&cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded database migrations",
		Args:  cobra.NoArgs,
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			if create {
				if err := database.EnsureExists(cmd.Context(), cfg.SessionDatabaseURL()); err != nil {
					return err
				}
			}
			if err := database.Migrate(cmd.Context(), cfg.SessionDatabaseURL(), log); err != nil {
				return err
			}
			log.Info("database is up to date")
			return nil
		}),
	})
	cmd.Flags().BoolVar(&create, "create-database", false, "create the database first when it does not exist")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "platform", versionString())
			return err
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return info.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
