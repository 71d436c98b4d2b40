package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/workflows/drill"
)

// VerifyBackup fetches a backup's manifest (the newest complete backup when
// no id is given) and re-reads every artefact, checking its size and
// SHA-256. A mismatch or a missing artefact is a non-retryable
// CorruptBackup error naming the artefact; no backup is NoBackup.
func (a *Activities) VerifyBackup(ctx context.Context, in drill.VerifyBackupInput) (drill.VerifyBackupResult, error) {
	if err := a.needStore(); err != nil {
		return drill.VerifyBackupResult{}, err
	}
	defer keepAlive(ctx)()
	m, err := LoadManifest(ctx, a.Store, in.BackupID)
	if err != nil {
		return drill.VerifyBackupResult{}, err
	}
	if err := Verify(ctx, a.Store, m); err != nil {
		return drill.VerifyBackupResult{}, err
	}
	return drill.VerifyBackupResult{Manifest: m}, nil
}

// LoadManifest returns backup id's manifest, or the newest complete
// backup's when id is empty. No such backup is a non-retryable NoBackup
// error.
func LoadManifest(ctx context.Context, store *backupstore.Store, id string) (drill.Manifest, error) {
	if id == "" {
		list, err := store.List(ctx)
		if err != nil {
			return drill.Manifest{}, err
		}
		if len(list) == 0 {
			return drill.Manifest{}, temporal.NewNonRetryableApplicationError("no complete backup in the store", drill.NoBackupErrorType, nil)
		}
		id = list[0].ID
	}
	var m drill.Manifest
	err := store.Manifest(ctx, id, &m)
	if errors.Is(err, backupstore.ErrNotFound) || errors.Is(err, backupstore.ErrBadID) {
		return drill.Manifest{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("backup %q: no complete backup by that id", id), drill.NoBackupErrorType, err)
	}
	if err != nil {
		return drill.Manifest{}, err
	}
	if m.ID != id {
		return drill.Manifest{}, corrupt(fmt.Sprintf("backup %s: manifest names %q", id, m.ID))
	}
	return m, nil
}

// Verify re-reads every artefact of m and compares its size and SHA-256
// with the manifest.
func Verify(ctx context.Context, store *backupstore.Store, m drill.Manifest) error {
	if len(m.Artefacts) == 0 {
		return corrupt(fmt.Sprintf("backup %s: manifest lists no artefact", m.ID))
	}
	for _, art := range m.Artefacts {
		sum, err := store.Sum(ctx, m.ID, art.Name)
		if errors.Is(err, backupstore.ErrNotFound) {
			return corrupt(fmt.Sprintf("backup %s: artefact %s is missing", m.ID, art.Name))
		}
		if err != nil {
			return err
		}
		if err := checkSum(m.ID, art, sum); err != nil {
			return err
		}
	}
	return nil
}

func checkSum(id string, art drill.Artefact, sum backupstore.Sum) error {
	if sum.Size != art.Size || sum.SHA256 != art.SHA256 {
		return corrupt(fmt.Sprintf("backup %s: artefact %s does not match its manifest (size %d, sha256 %s; manifest: size %d, sha256 %s)",
			id, art.Name, sum.Size, sum.SHA256, art.Size, art.SHA256))
	}
	return nil
}

func corrupt(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, drill.CorruptBackupErrorType, nil)
}

// staleIncomplete is how old an incomplete backup folder must be before
// pruning removes it: a younger one may be a backup being written.
const staleIncomplete = time.Hour

// PruneBackups keeps the newest PLATFORM_BACKUP_RETENTION complete backups
// and removes older ones and stale incomplete folders.
func (a *Activities) PruneBackups(ctx context.Context) (drill.PruneBackupsResult, error) {
	if err := a.needStore(); err != nil {
		return drill.PruneBackupsResult{}, err
	}
	deleted, err := a.Store.Prune(ctx, a.Config.BackupRetention, staleIncomplete, time.Now())
	if err != nil {
		return drill.PruneBackupsResult{Deleted: deleted}, fmt.Errorf("prune backups: %w", err)
	}
	return drill.PruneBackupsResult{Deleted: deleted}, nil
}
