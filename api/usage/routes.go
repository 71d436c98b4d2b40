package usage

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
)

// Deps holds what the usage handler uses.
type Deps struct {
	Store *Store
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers GET /v1/usage on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/v1/usage", d.Protect(auth.ScopeJobsRead, web.HandlerFunc(h.list))).Methods(http.MethodGet, http.MethodHead)
}
