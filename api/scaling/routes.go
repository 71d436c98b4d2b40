// Package scaling is the /v1/scaling resources: policies (one per target,
// which start the target's platform.scaling.controller), the controller's
// decisions, the targets' state, and scaling actions (platform.scaling.action
// workflows on the control task queue).
//
// Scaling is an operator capability over platform-wide targets (the worker
// pool and the API replicas), like running drills: a policy, a decision or
// an action belongs to the platform, not to a tenant. Any key with
// scaling:read sees all of them and any key with scaling:write changes
// them; an action records the principal that asked for it. There is thus no
// other tenant's scaling resource to hide.
package scaling

import (
	"net/http"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
)

// Deps holds what the scaling handlers use.
type Deps struct {
	Store    *Store
	Temporal client.Client
	// ControlTaskQueue runs controllers and actions.
	ControlTaskQueue string
	CursorSecret     []byte
	Protect          func(scope string, h http.Handler) http.Handler
}

// Routes registers the scaling resources on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	read := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeScalingRead, fn) }
	write := func(fn web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeScalingWrite, fn) }
	const policy = "/v1/scaling/policies/{target}"
	r.Handle("/v1/scaling/policies", read(h.listPolicies)).Methods(http.MethodGet, http.MethodHead)
	r.Handle(policy, read(h.getPolicy)).Methods(http.MethodGet, http.MethodHead)
	r.Handle(policy, write(h.putPolicy)).Methods(http.MethodPut)
	r.Handle(policy, write(h.deletePolicy)).Methods(http.MethodDelete)
	r.Handle(policy+"/pause", write(h.pause)).Methods(http.MethodPost)
	r.Handle(policy+"/resume", write(h.resume)).Methods(http.MethodPost)
	r.Handle(policy+"/override", write(h.override)).Methods(http.MethodPost)
	r.Handle("/v1/scaling/targets/{target}", read(h.target)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/scaling/decisions", read(h.decisions)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/scaling/actions", write(h.createAction)).Methods(http.MethodPost)
	r.Handle("/v1/scaling/actions", read(h.listActions)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/scaling/actions/{id}", read(h.getAction)).Methods(http.MethodGet, http.MethodHead)
}
