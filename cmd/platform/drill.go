package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/drills/report"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/temporalclient"
	"github.com/acme/platform/workflows/drill"
)

func drillCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Run disaster-recovery drills"}
	cmd.AddCommand(drillRunCmd())
	return cmd
}

// drillRunOptions are platform drill run's own flags.
type drillRunOptions struct {
	wait     bool
	rto, rpo float64
	backupID string
}

func drillRunCmd() *cobra.Command {
	var o drillRunOptions
	cmd := withConfigFlags(&cobra.Command{
		Use:   "run SCENARIO [--wait]",
		Short: "Start a drill on the control task queue; with --wait, print its postmortem report when it ends",
		Long: "Starts platform.drill as the Temporal UI would (principal \"system\"), on PLATFORM_CONTROL_TASK_QUEUE.\n" +
			"Without --wait it prints the drill id and its run in the Temporal UI. With --wait it waits for the\n" +
			"drill to end, prints the Markdown report and exits 1 when the verdict is not met.",
		Args: cobra.ExactArgs(1),
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			return runDrill(cmd, cfg, log, args[0], o)
		}),
	})
	cmd.Flags().BoolVar(&o.wait, "wait", false, "wait for the drill to end and print its report")
	cmd.Flags().Float64Var(&o.rto, "rto", 0, "RTO objective in seconds (0: not judged)")
	cmd.Flags().Float64Var(&o.rpo, "rpo", 0, "RPO objective in seconds (0: not judged)")
	cmd.Flags().StringVar(&o.backupID, "backup", "", "restore_verify: the backup to restore (default the newest)")
	return cmd
}

// drillInput builds the workflow's input and checks it as the API does.
func drillInput(scenario string, o drillRunOptions) (drill.Input, error) {
	in := drill.Input{ID: ids.New(ids.Drill), Principal: "system", Scenario: scenario}
	if o.rto > 0 {
		in.Objectives.RTOSeconds = &o.rto
	}
	if o.rpo > 0 {
		in.Objectives.RPOSeconds = &o.rpo
	}
	if o.backupID != "" {
		in.Params, _ = json.Marshal(drill.RestoreParams{BackupID: o.backupID})
	}
	if errs := drill.Validate(in); len(errs) > 0 {
		return in, fmt.Errorf("invalid drill: %s", errs[0].String())
	}
	return in, nil
}

func runDrill(cmd *cobra.Command, cfg config.Config, log *slog.Logger, scenario string, o drillRunOptions) error {
	in, err := drillInput(scenario, o)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	c, err := temporalclient.Dial(ctx, temporalclient.Options{Address: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: log})
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: drill.WorkflowID(in.ID), TaskQueue: cfg.ControlTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, drill.Name, in)
	if err != nil {
		return fmt.Errorf("start drill: %w", err)
	}
	link := fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", cfg.TemporalUIURL, cfg.TemporalNamespace, run.GetID(), run.GetRunID())
	out := cmd.OutOrStdout()
	if !o.wait {
		_, err := fmt.Fprintf(out, "drill %s started\n%s\n", in.ID, link)
		return err
	}
	var d drill.Drill
	if err := run.Get(ctx, &d); err != nil {
		return fmt.Errorf("drill %s: %w", in.ID, err)
	}
	fmt.Fprint(out, report.Render(d, manifestOf(ctx, cfg, d.BackupID), link))
	if d.Verdict != drill.Met {
		return fmt.Errorf("drill %s ended %s, verdict %s", d.ID, d.Status, d.Verdict)
	}
	return nil
}

// manifestOf reads the drill's backup manifest for its report; a report
// without one is still a report.
func manifestOf(ctx context.Context, cfg config.Config, id string) *drill.Manifest {
	if id == "" {
		return nil
	}
	store, err := backupstore.Open(ctx, cfg.BackupURL)
	if err != nil {
		return nil
	}
	defer store.Close()
	var m drill.Manifest
	if store.Manifest(ctx, id, &m) != nil {
		return nil
	}
	return &m
}
