package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/acme/platform/internal/config"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/ids"
)

// keysCmd is the CLI twin of the /v1/keys resource, working on the database
// directly: it is how the first admin key of a deployment is made.
func keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create and revoke API keys"}
	cmd.AddCommand(keysCreateCmd(), keysRevokeCmd())
	return cmd
}

func keysCreateCmd() *cobra.Command {
	var principal, name, scopes string
	var expiresIn time.Duration
	cmd := withConfigFlags(&cobra.Command{
		Use:   "create --principal P --name N --scopes a,b",
		Short: "Create an API key and print its secret (shown only once)",
		Args:  cobra.NoArgs,
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			list := splitScopes(scopes)
			if err := checkKeyFlags(principal, name, list); err != nil {
				return err
			}
			db, err := database.Open(cmd.Context(), cfg.DatabaseURL, 2)
			if err != nil {
				return err
			}
			defer db.Close()
			in := keys.NewKey{ID: ids.New(ids.Key), Principal: principal, Name: name, Scopes: list}
			if expiresIn > 0 {
				at := time.Now().Add(expiresIn).UTC()
				in.ExpiresAt = &at
			}
			k, secret, err := (&keys.Store{DB: db}).Create(cmd.Context(), in)
			if err != nil {
				return err
			}
			log.Info("api key created", "id", k.ID, "principal", k.Principal, "scopes", strings.Join(k.Scopes, ","))
			_, err = fmt.Fprintln(cmd.OutOrStdout(), secret)
			return err
		}),
	})
	f := cmd.Flags()
	f.StringVar(&principal, "principal", "", "principal (tenant) the key belongs to")
	f.StringVar(&name, "name", "", "name of the key, e.g. ci")
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes: "+strings.Join(auth.AllScopes, ","))
	f.DurationVar(&expiresIn, "expires-in", 0, "lifetime of the key (default: no expiry)")
	return cmd
}

func splitScopes(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkKeyFlags(principal, name string, scopes []string) error {
	if !keys.ValidPrincipal(principal) {
		return fmt.Errorf("--principal must be 1 to 64 of a-z, 0-9, '-', '_' and '.'")
	}
	if keys.ReservedPrincipal(principal) {
		return fmt.Errorf("--principal %q is reserved for the platform", principal)
	}
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return fmt.Errorf("--name must be 1 to 100 characters")
	}
	if len(scopes) == 0 {
		return fmt.Errorf("--scopes must list at least one of %s", strings.Join(auth.AllScopes, ","))
	}
	for _, s := range scopes {
		if !auth.ValidScope(s) {
			return fmt.Errorf("--scopes: %q is not a scope; use %s", s, strings.Join(auth.AllScopes, ","))
		}
	}
	return nil
}

func keysRevokeCmd() *cobra.Command {
	return withConfigFlags(&cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: withConfig("text", func(cmd *cobra.Command, cfg config.Config, log *slog.Logger, args []string) error {
			db, err := database.Open(cmd.Context(), cfg.DatabaseURL, 2)
			if err != nil {
				return err
			}
			defer db.Close()
			store := &keys.Store{DB: db}
			if _, err := store.Get(cmd.Context(), args[0]); err != nil {
				return err
			}
			revoked, err := store.Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			log.Info("api key revoked, with the keys it minted", "id", args[0], "revoked", len(revoked))
			return nil
		}),
	})
}
