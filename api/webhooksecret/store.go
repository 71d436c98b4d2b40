package webhooksecret

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/jobs/signing"
)

// RotationGrace is how long a rotated-out secret keeps signing deliveries.
const RotationGrace = 24 * time.Hour

// Store keeps signing secrets in Postgres. The worker reads them (and
// creates the first one the same way when a principal never asked).
type Store struct {
	DB *pgxpool.Pool
}

// Secret is a principal's current secret.
type Secret struct {
	Secret             string
	CreatedAt          time.Time
	PreviousValidUntil *time.Time
}

// Creating a principal's first secret races only with itself: the unique
// index on the current secret keeps one, and the other insert does nothing.
const ensureSecret = `
INSERT INTO webhook_secrets (principal, secret) VALUES ($1, $2)
ON CONFLICT (principal) WHERE expires_at IS NULL DO NOTHING`

const currentSecret = `
SELECT secret, created_at,
       (SELECT max(expires_at) FROM webhook_secrets p WHERE p.principal = c.principal AND p.expires_at > now())
FROM webhook_secrets c
WHERE principal = $1 AND expires_at IS NULL`

// Current returns the principal's current secret, creating it on first use.
func (s *Store) Current(ctx context.Context, principal string) (Secret, error) {
	var sec Secret
	err := s.DB.QueryRow(ctx, currentSecret, principal).Scan(&sec.Secret, &sec.CreatedAt, &sec.PreviousValidUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.DB.Exec(ctx, ensureSecret, principal, signing.NewSecret()); err != nil {
			return Secret{}, fmt.Errorf("create webhook secret of %s: %w", principal, err)
		}
		err = s.DB.QueryRow(ctx, currentSecret, principal).Scan(&sec.Secret, &sec.CreatedAt, &sec.PreviousValidUntil)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("read webhook secret of %s: %w", principal, err)
	}
	return sec, nil
}

// Rotations of one principal are serialised by a transaction-scoped
// advisory lock, so two at once cannot both retire the same secret.
const (
	lockPrincipal  = `SELECT pg_advisory_xact_lock(hashtext('webhook_secrets:' || $1))`
	retireCurrent  = `UPDATE webhook_secrets SET expires_at = now() + $2::interval WHERE principal = $1 AND expires_at IS NULL`
	insertCurrent  = `INSERT INTO webhook_secrets (principal, secret) VALUES ($1, $2)`
	retiredSecrets = `SELECT max(expires_at) FROM webhook_secrets WHERE principal = $1 AND expires_at > now()`
)

// Rotate makes a new current secret; the old one stays valid for
// RotationGrace.
func (s *Store) Rotate(ctx context.Context, principal string) (Secret, error) {
	sec := Secret{Secret: signing.NewSecret()}
	err := database.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockPrincipal, principal); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, retireCurrent, principal, RotationGrace); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertCurrent, principal, sec.Secret); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT now(), (`+retiredSecrets+`)`, principal).Scan(&sec.CreatedAt, &sec.PreviousValidUntil)
	})
	if err != nil {
		return Secret{}, fmt.Errorf("rotate webhook secret of %s: %w", principal, err)
	}
	return sec, nil
}
