package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/acme/platform/internal/config"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/database"
)

// flagSchema is the $schema of exported files, so editors validate them.
const flagSchema = "https://flagd.dev/schema/v0/flags.json"

// flagsCmd reads and writes flagd flag files against the flag store.
func flagsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "flags", Short: "Import and export flagd flag files"}
	cmd.AddCommand(flagsImportCmd(), flagsExportCmd())
	return cmd
}

func flagsImportCmd() *cobra.Command {
	var reason string
	cmd := withConfigFlags(&cobra.Command{
		Use:   "import FILE",
		Short: "Create or replace every flag of a flagd file (- for stdin), in one transaction",
		Long: "Validates the whole file first (errors name the field with a JSON pointer), then creates or\n" +
			"replaces each flag; flags missing from the file are kept. $evaluators and the file's metadata are\n" +
			"inlined into each flag, which evaluates exactly as in the file. Every change is audited as \"cli\".",
		Args: cobra.ExactArgs(1),
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			defs, err := readFlagFile(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			db, err := database.Open(cmd.Context(), cfg.DatabaseURL, 2)
			if err != nil {
				return err
			}
			defer db.Close()
			if reason == "" {
				reason = "import " + args[0]
			}
			n, err := (&store.Store{DB: db}).Import(cmd.Context(), defs, store.Change{Actor: "cli", Reason: reason})
			if err != nil {
				return err
			}
			log.Info("flags imported", "file", args[0], "flags", len(defs), "changed", n)
			return nil
		}),
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit (default: import FILE)")
	return cmd
}

// readFlagFile reads and validates a flagd file and returns its flags,
// inlined.
func readFlagFile(stdin io.Reader, path string) (map[string]flags.Flag, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := flags.ValidateFile(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	file, err := flags.ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return file.Inline()
}

func flagsExportCmd() *cobra.Command {
	return withConfigFlags(&cobra.Command{
		Use:   "export FILE",
		Short: "Write every flag to a flagd file (- for stdout)",
		Args:  cobra.ExactArgs(1),
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			data, err := exportFlags(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			if args[0] == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return os.WriteFile(args[0], data, 0o644)
		}),
	})
}

func exportFlags(ctx context.Context, databaseURL string) ([]byte, error) {
	db, err := database.Open(ctx, databaseURL, 2)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	recs, err := (&store.Store{DB: db}).All(ctx)
	if err != nil {
		return nil, err
	}
	file := flags.File{Schema: flagSchema, Flags: make(map[string]flags.Flag, len(recs))}
	for _, r := range recs {
		file.Flags[r.Key] = r.Def
	}
	return file.Marshal()
}
