package database

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionConfig is the connection configuration of a dedicated session
// (the flag watcher's LISTEN) on url. Behind a transaction pooler such as
// PgBouncer, url must reach Postgres directly (PLATFORM_DATABASE_DIRECT_URL):
// a pooler in transaction mode hands each transaction to any server
// connection, so a LISTEN would be registered on a connection that no
// longer delivers to its client.
func SessionConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	cfg.RuntimeParams["application_name"] = "platform"
	return cfg, nil
}
