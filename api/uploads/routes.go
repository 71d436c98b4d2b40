// Package uploads is the uploads resource: POST /v1/uploads streams a file
// into Postgres large-object storage and, with ?process=true, starts its
// upload.process job.
//
// Large objects, not a directory: the api and the worker scale apart and may
// run on different hosts with no shared disk, and Postgres is the store both
// already reach. Writing the object and the uploads row in one transaction
// means an upload either exists whole or not at all.
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
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the uploads resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle(Path, d.Protect(auth.ScopeJobsWrite, web.HandlerFunc(h.create))).Methods(http.MethodPost)
}
