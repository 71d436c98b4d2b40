// Package drills is the /v1/drills resource: disaster-recovery drills, each
// run by a platform.drill workflow on the platform's control task queue.
// Handlers start, abort and read workflows; the workflow's record activity
// alone writes a drill's row. A drill started from the Temporal UI, under
// any workflow id, is read here under that id.
package drills

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/workflows/drill"
)

// Manifests reads backup manifests; the backup store implements it.
type Manifests interface {
	Manifest(ctx context.Context, id string) (drill.Manifest, error)
}

// Deps holds what the drill handlers use.
type Deps struct {
	Store   *Store
	Starter *Starter
	// Backups gives reports their backup's artefacts; nil leaves them out.
	Backups Manifests
	// Temporal aborts drills.
	Temporal client.Client
	// TemporalUIURL and Namespace build the links to workflow runs.
	TemporalUIURL string
	Namespace     string
	// HasPatroni says whether the server has PLATFORM_DRILL_PATRONI_URL,
	// without which failover drills with driver patroni are refused.
	HasPatroni bool
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the drills resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	read := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeDrillsRead, fn) }
	run := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeDrillsRun, fn) }
	r.Handle("/v1/drills", run(h.create)).Methods(http.MethodPost)
	r.Handle("/v1/drills", read(h.list)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/drills/{id}", read(h.get)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/drills/{id}/report", read(h.report)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/drills/{id}/charts/{name}", read(h.chart)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/drills/{id}/abort", run(h.abort)).Methods(http.MethodPost)
}
