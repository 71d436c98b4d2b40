package keys

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
)

// Deps holds what the keys handlers use.
type Deps struct {
	Store *Store
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
	// Forget drops a key from the authentication cache of this process.
	Forget func(keyID string)
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
}

// Routes registers the keys resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/v1/keys", d.Protect(auth.ScopeKeysAdmin, web.HandlerFunc(h.create))).Methods(http.MethodPost)
	r.Handle("/v1/keys", d.Protect(auth.ScopeKeysAdmin, web.HandlerFunc(h.list))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/keys/{id}", d.Protect(auth.ScopeKeysAdmin, web.HandlerFunc(h.get))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/keys/{id}", d.Protect(auth.ScopeKeysAdmin, web.HandlerFunc(h.revoke))).Methods(http.MethodDelete)
}

type handlers struct{ Deps }

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	var req createRequest
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	if errs := req.validate(time.Now()); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	principal := caller.Name
	if req.Principal != nil {
		principal = *req.Principal
	}
	if err := mayGrant(caller, principal, req.Scopes); err != nil {
		return err
	}
	k, secret, err := h.Store.Create(r.Context(), NewKey{
		ID: idempotency.ResourceID(r.Context(), ids.Key), Principal: principal, Name: req.Name,
		Scopes: req.Scopes, CreatedBy: caller.KeyID, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	v := toView(k)
	v.Secret = secret
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	// The secret is shown once: no cache keeps it, and no-store also keeps
	// it out of the idempotency store (a retry gets 409, not the secret).
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusCreated, v)
}

// mayGrant enforces that keys:admin acts only for its own principal, that
// only admin acts for others, and that nobody grants a scope they lack.
func mayGrant(caller auth.Principal, principal string, scopes []string) error {
	if principal != caller.Name && !caller.IsAdmin() {
		return auth.InsufficientScope(auth.ScopeAdmin)
	}
	for _, s := range scopes {
		if !caller.Has(s) {
			return auth.InsufficientScope(s)
		}
	}
	return nil
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := web.UnknownParams(q, auth.ParamPrincipal, page.ParamLimit, page.ParamCursor)
	principal, bound, perrs := auth.PrincipalFilter(q, caller)
	if errs = append(errs, perrs...); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	filters := url.Values{}
	if bound != "" {
		filters.Set(auth.ParamPrincipal, bound)
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	rows, err := h.Store.List(r.Context(), ListFilter{Principal: principal}, req)
	if err != nil {
		return err
	}
	views := make([]keyView, len(rows))
	for i, k := range rows {
		views[i] = toView(k)
	}
	p := page.Build(views, req, func(v keyView) page.Cursor { return page.Cursor{CreatedAt: v.CreatedAt, ID: v.ID} },
		h.CursorSecret, caller.Name, filters)
	return page.Write(w, r, p)
}

func (h *handlers) visible(r *http.Request) (Key, error) {
	caller, _ := auth.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	k, err := h.Store.Get(r.Context(), id)
	if err != nil {
		return Key{}, err
	}
	if !caller.CanSee(k.Principal) {
		// Never reveal that another principal's key exists.
		return Key{}, problem.Newf(problem.NotFound, "no key %q", id)
	}
	return k, nil
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	k, err := h.visible(r)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, toView(k))
}

func (h *handlers) revoke(w http.ResponseWriter, r *http.Request) error {
	k, err := h.visible(r)
	if err != nil {
		return err
	}
	if err := h.Store.Revoke(r.Context(), k.ID); err != nil {
		return err
	}
	if h.Forget != nil {
		h.Forget(k.ID)
	}
	return web.NoContent(w)
}
