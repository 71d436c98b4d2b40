// Package backups is the /v1/backups resource: the manifests of the backups
// that backup drills took, read from the backup store (PLATFORM_BACKUP_URL).
// Backups are the platform's own, not a tenant's: reading them needs
// drills:read, and they hold no secrets (the config bundle is masked).
package backups

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/workflows/drill"
)

// Store lists backups and reads their manifests; *backupstore.Store is one.
type Store interface {
	List(ctx context.Context) ([]backupstore.Entry, error)
	Manifest(ctx context.Context, id string, v any) error
}

var _ Store = (*backupstore.Store)(nil)

// Deps holds what the handlers use.
type Deps struct {
	// Store is nil when the process could not open its backup store.
	Store Store
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the backups resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	read := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeDrillsRead, fn) }
	r.Handle("/v1/backups", read(h.list)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/backups/{id}", read(h.get)).Methods(http.MethodGet, http.MethodHead)
}

// manifestTimeout bounds reading manifests from the store, below the
// request timeout.
const manifestTimeout = 10 * time.Second

// Manifests adapts a Store to the drills resource's reports.
type Manifests struct{ Store Store }

// Manifest returns backup id's manifest.
func (m Manifests) Manifest(ctx context.Context, id string) (drill.Manifest, error) {
	var out drill.Manifest
	err := m.Store.Manifest(ctx, id, &out)
	return out, err
}
