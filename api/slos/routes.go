// Package slos is GET /v1/slos: each SLO of the platform with its error
// budget and burn rates, computed from the platform's own usage data (the
// hourly roll-ups and the newest raw usage events) without Prometheus, for
// all traffic or for one client.
package slos

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/slo"
)

// Deps holds what the handler uses.
type Deps struct {
	Store *Store
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers GET /v1/slos on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/v1/slos", d.Protect(auth.ScopeSLORead, web.HandlerFunc(h.list))).Methods(http.MethodGet, http.MethodHead)
}

type handlers struct{ Deps }

// list answers every SLO. An admin sees all traffic, or one client's with
// ?principal=; any other key sees its own principal's numbers only (naming a
// principal is 400, as on every list). The set of SLOs is fixed and small,
// so the answer is one page.
func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := web.UnknownParams(q, auth.ParamPrincipal)
	principal, _, perrs := auth.PrincipalFilter(q, caller)
	if errs = append(errs, perrs...); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	since := now.UTC().Truncate(time.Hour).Add(time.Hour - slo.Window)
	rows, err := h.Store.Events(r.Context(), principal, since)
	if err != nil {
		return err
	}
	rep := report{AsOf: now.UTC(), Data: evaluate(rows, now)}
	if principal != "" {
		rep.Principal = &principal
	}
	return web.WriteJSON(w, http.StatusOK, rep)
}
