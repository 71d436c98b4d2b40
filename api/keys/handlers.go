package keys

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/acme/platform/internal/validation"
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
	expiresAt, err := h.childExpiry(r.Context(), caller, req.ExpiresAt)
	if err != nil {
		return err
	}
	k, secret, err := h.Store.Create(r.Context(), NewKey{
		ID: idempotency.ResourceID(r.Context(), ids.Key), Principal: principal, Name: req.Name,
		Scopes: req.Scopes, CreatedBy: caller.KeyID, ExpiresAt: expiresAt,
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

// childExpiry is when a key the caller mints expires: a key never outlives
// the key that made it. No expiry asked for means the caller's own; a later
// one than the caller's is refused rather than silently shortened, so the
// client learns the key's real lifetime from the answer it acts on.
func (h *handlers) childExpiry(ctx context.Context, caller auth.Principal, asked *time.Time) (*time.Time, error) {
	parent, err := h.Store.Get(ctx, caller.KeyID)
	if err != nil {
		// The caller's key was found a moment ago; its absence is a fault.
		return nil, fmt.Errorf("read the creating key %s: %v", caller.KeyID, err)
	}
	switch {
	case parent.ExpiresAt == nil:
		return asked, nil
	case asked == nil:
		return parent.ExpiresAt, nil
	case asked.After(*parent.ExpiresAt):
		return nil, problem.Validation(validation.FieldError{Pointer: "#/expires_at", Code: "out_of_range",
			Detail: "must not be later than the creating key's expiry, " + parent.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	return asked, nil
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
	f := ListFilter{Principal: principal}
	if !caller.IsAdmin() {
		f.Within = caller.Scopes
	}
	rows, err := h.Store.List(r.Context(), f, req)
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

// visible returns the key in the path if the caller may manage it. A key
// the caller may not manage answers exactly as an unknown one, so its
// existence is never revealed.
func (h *handlers) visible(r *http.Request) (Key, error) {
	caller, _ := auth.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	// Built only when needed: formatting it is most of this function's own cost.
	notFound := func() error { return problem.Newf(problem.NotFound, "no key %q", id) }
	if !ids.HasPrefix(id, ids.Key) {
		return Key{}, notFound()
	}
	k, err := h.Store.Get(r.Context(), id)
	if errors.Is(err, problem.ErrNotFound) {
		return Key{}, notFound()
	}
	if err != nil {
		return Key{}, err
	}
	if !mayManage(caller, k) {
		return Key{}, notFound()
	}
	return k, nil
}

// mayManage reports whether caller may see and revoke k: a key of a
// principal it sees, holding no scope the caller lacks. So keys:admin
// manages the keys it could have minted, never its principal's admin keys.
func mayManage(caller auth.Principal, k Key) bool {
	if !caller.CanSee(k.Principal) {
		return false
	}
	for _, s := range k.Scopes {
		if !caller.Has(s) {
			return false
		}
	}
	return true
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
	revoked, err := h.Store.Revoke(r.Context(), k.ID)
	if err != nil {
		return err
	}
	if h.Forget != nil {
		for _, id := range revoked {
			h.Forget(id)
		}
	}
	return web.NoContent(w)
}
