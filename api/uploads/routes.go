// Package uploads is the uploads resource: POST /v1/uploads streams a file
// into Postgres large-object storage and, with ?process=true, starts its
// upload.process job.
//
// Large objects, not a directory: the api and the worker scale apart and may
// run on different hosts with no shared disk, and Postgres is the store both
// already reach. Writing the object and the uploads row in one transaction
// means an upload either exists whole or not at all.
//
// The body is first received into a local temporary file, at no less than a
// minimum rate, and only then written to Postgres in a short transaction: a
// slow client holds a file and a slot of the upload gate, never a pooled
// connection, and never the whole body in memory.
package uploads

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/workflows/job"
)

// Path is the upload route; its body limit is PLATFORM_UPLOAD_MAX_BYTES, not
// the JSON one.
const Path = "/v1/uploads"

// Starter starts the upload.process job of ?process=true. jobs.Starter is
// the one the API uses; the interface is the uploads resource's own, so it
// needs nothing else of the jobs resource.
type Starter interface {
	Start(ctx context.Context, in job.Input) (jobs.Job, error)
}

// Deps holds what the uploads handler uses.
type Deps struct {
	Store   *Store
	Starter Starter
	// Authorize wraps a handler with authentication for scope and the
	// per-principal rate limit.
	Authorize func(scope string, h http.Handler) http.Handler
	// Idempotent applies the Idempotency-Key. It runs once the body is
	// spooled, and fingerprints the spool's SHA-256 instead of reading it.
	Idempotent func(http.Handler) http.Handler
	// Limits bound the uploads in progress.
	Limits Limits
}

// Routes registers the uploads resource on r: authentication and rate limit,
// then the upload gate, then receiving the body, then idempotency.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	next := web.HandlerFunc(h.create)
	var idempotent http.Handler = next
	if d.Idempotent != nil {
		idempotent = d.Idempotent(next)
	}
	create := newGate(d.Limits).limit(receive(d.Limits, idempotent))
	r.Handle(Path, d.Authorize(auth.ScopeJobsWrite, create)).Methods(http.MethodPost)
}
