// Package ofrep serves the OpenFeature Remote Evaluation Protocol on the
// API: POST /ofrep/v1/evaluate/flags/{key} and the bulk POST
// /ofrep/v1/evaluate/flags, evaluated from the process's flag snapshot
// (kept current by the flag provider), so any OFREP provider in any
// language can use the platform's flags.
//
// Flag-level errors have the protocol's own JSON shape ({key, errorCode,
// errorDetails}); authentication, rate limits, oversized bodies and an API
// without flags are answered as problems, like every other route.
package ofrep

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/ofrep"
	"github.com/acme/platform/flags/store"
)

// Deps holds what the OFREP handlers use.
type Deps struct {
	// Current returns the flag set to evaluate, or why there is none.
	Current func(ctx context.Context) (*store.FlagSet, error)
	// Count records an evaluation in the flag metrics; nil records nothing.
	Count func(flag, variant, reason string)
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the OFREP evaluation endpoints on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/ofrep/v1/evaluate/flags/{key}", d.Protect(auth.ScopeFlagsRead, web.HandlerFunc(h.evaluate))).Methods(http.MethodPost)
	r.Handle("/ofrep/v1/evaluate/flags", d.Protect(auth.ScopeFlagsRead, web.HandlerFunc(h.evaluateAll))).Methods(http.MethodPost)
}

type handlers struct{ Deps }

func (h *handlers) evaluate(w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)["key"]
	set, err := h.current(r.Context())
	if err != nil {
		return err
	}
	body, err := web.ReadBody(r)
	if err != nil {
		return err
	}
	ctx, _, code, details := ofrep.ParseContext(body)
	if code != "" {
		return web.WriteJSON(w, http.StatusBadRequest, ofrep.Failure{Key: key, ErrorCode: code, ErrorDetails: details})
	}
	status, out, res := ofrep.Evaluate(set, key, ctx)
	h.count(key, res)
	return web.WriteJSON(w, status, out)
}

func (h *handlers) evaluateAll(w http.ResponseWriter, r *http.Request) error {
	set, err := h.current(r.Context())
	if err != nil {
		return err
	}
	body, err := web.ReadBody(r)
	if err != nil {
		return err
	}
	ctx, canonical, code, details := ofrep.ParseContext(body)
	if code != "" {
		return web.WriteJSON(w, http.StatusBadRequest, ofrep.BulkFailure{ErrorCode: code, ErrorDetails: details})
	}
	etag := ofrep.ETag(set, canonical)
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && ofrep.NotModified(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return web.WriteJSON(w, http.StatusOK, ofrep.EvaluateAll(set, ctx, h.count))
}

func (h *handlers) current(ctx context.Context) (*store.FlagSet, error) {
	set, err := h.Current(ctx)
	if err != nil || set == nil {
		return nil, problem.UnavailableAfter(2, "flags are not loaded", err)
	}
	return set, nil
}

func (h *handlers) count(key string, r flags.Result) {
	if h.Count != nil {
		h.Count(key, r.Variant, r.Reason)
	}
}
