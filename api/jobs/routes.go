// Package jobs is the background jobs resource: POST /v1/jobs starts a job's
// workflow, GET reads the rows its workflow writes, POST …/cancel cancels
// the workflow. Handlers never write a job's row.
package jobs

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
)

// UploadFinder tells whether an upload exists for a principal, so that an
// upload.process job naming a missing upload is a 400 at once.
type UploadFinder interface {
	UploadExists(ctx context.Context, id, principal string) (bool, error)
}

// Deps holds what the jobs handlers use.
type Deps struct {
	Store    *Store
	Starter  *Starter
	Temporal client.Client
	Uploads  UploadFinder
	// TemporalUIURL and Namespace build the links to workflow runs.
	TemporalUIURL string
	Namespace     string
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the jobs resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	read := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeJobsRead, fn) }
	write := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeJobsWrite, fn) }
	r.Handle("/v1/jobs", write(h.create)).Methods(http.MethodPost)
	r.Handle("/v1/jobs", read(h.list)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/jobs/{id}", read(h.get)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/jobs/{id}/attempts", read(h.attempts)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/jobs/{id}/cancel", write(h.cancel)).Methods(http.MethodPost)
}
