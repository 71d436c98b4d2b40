package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/local"
)

// superviseCmd runs N children of one target and follows the local scaling
// driver's desired count (see package scaling/local for the files).
//
// Children are "platform worker" or "platform api" processes of this same
// binary, configured by the environment this command runs in (PLATFORM_*;
// command-line flags are passed on as well), plus:
//   - each its own ops listener on a free loopback port (status file);
//   - API replicas each their own HTTP port: PLATFORM_HTTP_ADDR's port plus
//     the child's index. Ports rather than SO_REUSEPORT on one port: the
//     standard library's listener does not set it, a drained replica must
//     stop receiving connections before it stops, and a local load balancer
//     (or the client) picking among ports shows which replica answers.
func superviseCmd() *cobra.Command {
	var target string
	var replicas int
	cmd := withConfigFlags(&cobra.Command{
		Use:   "supervise",
		Short: "Run N worker or API processes and follow the local scaling driver's count",
		Args:  cobra.NoArgs,
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, _ []string) error {
			if !slices.Contains(scaling.Targets, target) {
				return fmt.Errorf("--target must be worker or api")
			}
			if replicas < 0 || replicas > scaling.MaxReplicasLimit {
				return fmt.Errorf("--replicas must be between 0 and %d", scaling.MaxReplicasLimit)
			}
			s, err := newSupervisor(cfg, log, target, int32(replicas), passedFlags(cmd), nil)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		}),
	})
	cmd.Flags().StringVar(&target, "target", scaling.TargetWorker, "what to run: worker or api")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "replicas to start with, until the local driver sets a count")
	return cmd
}

// ownFlags are the flags supervise sets per child, or its own.
var ownFlags = []string{"target", "replicas", "ops-addr", "worker-ops-addr", "http-addr", "scaling-local-dir"}

// passedFlags are the configuration flags given on the command line, passed
// on to the children.
func passedFlags(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if !slices.Contains(ownFlags, f.Name) {
			out = append(out, "--"+f.Name+"="+f.Value.String())
		}
	})
	return out
}

// newSupervisor builds the supervisor of target's children, each run with
// args and this process's environment plus env.
func newSupervisor(cfg config.Config, log *slog.Logger, target string, initial int32, args, env []string) (*local.Supervisor, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.ScalingLocalDir)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("PLATFORM_HTTP_ADDR: %w", err)
	}
	basePort, _ := strconv.Atoi(port)
	return &local.Supervisor{Dir: dir, Target: target, Initial: initial, Log: log,
		StopTimeout: cfg.DrainTimeout + cfg.ShutdownDelay + 5e9,
		Command: func(index int, opsAddr string) *exec.Cmd {
			cmd := exec.Command(self, append([]string{target}, args...)...)
			cmd.Env = append(append(os.Environ(), env...), "PLATFORM_SCALING_LOCAL_DIR="+dir)
			if target == scaling.TargetWorker {
				cmd.Env = append(cmd.Env, "PLATFORM_WORKER_OPS_ADDR="+opsAddr)
			} else {
				cmd.Env = append(cmd.Env, "PLATFORM_OPS_ADDR="+opsAddr,
					"PLATFORM_HTTP_ADDR="+net.JoinHostPort(host, strconv.Itoa(basePort+index)))
			}
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			return cmd
		}}, nil
}
