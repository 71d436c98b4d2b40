// Command platform is the platform's one binary: api, worker, dev, migrate,
// keys and version are its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := rootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "platform:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "platform",
		Short:         "Workflow-orchestrated operations platform: jobs, scaling, DR drills and flag rollouts on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(apiCmd(), workerCmd(), devCmd(), migrateCmd(), keysCmd(), flagsCmd(), restoreCmd(), drillCmd(), superviseCmd(), versionCmd())
	return root
}
