// Package webhooksecret is the webhook signing secret resource: each
// principal has one current Standard Webhooks secret, created on first use;
// rotating it keeps the previous one valid for 24 hours, during which
// deliveries carry a signature with each.
package webhooksecret

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
)

// Deps holds what the handlers use.
type Deps struct {
	Store *Store
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the resource on r. Both need jobs:write: whoever holds a
// secret can forge deliveries to the principal's receivers.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/v1/webhook-secret", d.Protect(auth.ScopeJobsWrite, web.HandlerFunc(h.get))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/webhook-secret/rotate", d.Protect(auth.ScopeJobsWrite, web.HandlerFunc(h.rotate))).Methods(http.MethodPost)
}
