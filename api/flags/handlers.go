// Package flags is the /v1/flags resource: product teams read and change
// feature flags over REST. Flags are global to the platform (every
// principal with flags:read sees them all); the audit keeps who changed
// what. Writes are conditional on the flag's ETag when the client sends
// If-Match, and every write lands in the audit with the caller and the
// optional X-Change-Reason. The platform's own flags (platform.*) are
// written only with admin.
//
// PUT without If-Match creates or replaces the flag: a flagd definition is
// a whole document, and tooling that syncs flags from files needs an
// unconditional write. Clients that edit a flag they read send If-Match
// and get 412 when someone changed it meanwhile; If-None-Match: * creates
// only. A rollout never loses to this: it compare-and-sets on the version
// it wrote, so a human write pauses the rollout instead of being overwritten.
package flags

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/validation"
)

// Deps holds what the flag handlers use.
type Deps struct {
	Store *store.Store
	// Protect wraps a handler with authentication for scope, rate limiting
	// and idempotency.
	Protect func(scope string, h http.Handler) http.Handler
	// CursorSecret signs pagination cursors.
	CursorSecret []byte
}

// Routes registers the flags resource on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	read := func(f web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeFlagsRead, f) }
	write := func(f web.HandlerFunc) http.Handler { return d.Protect(auth.ScopeFlagsWrite, f) }
	r.Handle("/v1/flags", read(h.list)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/flags/{key}", read(h.get)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/v1/flags/{key}", write(h.put)).Methods(http.MethodPut)
	r.Handle("/v1/flags/{key}", write(h.patch)).Methods(http.MethodPatch)
	r.Handle("/v1/flags/{key}", write(h.delete)).Methods(http.MethodDelete)
}

type handlers struct{ Deps }

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	if err := web.RejectUnknownParams(r.URL.Query(), page.ParamLimit, page.ParamCursor); err != nil {
		return err
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, url.Values{})
	if err != nil {
		return err
	}
	var after *store.Position
	if req.After != nil {
		after = &store.Position{CreatedAt: req.After.CreatedAt, Key: req.After.ID}
	}
	rows, err := h.Store.List(r.Context(), after, req.FetchLimit())
	if err != nil {
		return err
	}
	views := make([]flagView, len(rows))
	for i, rec := range rows {
		views[i] = toView(rec)
	}
	p := page.Build(views, req, func(v flagView) page.Cursor { return page.Cursor{CreatedAt: v.createdAt, ID: v.Key} },
		h.CursorSecret, caller.Name, url.Values{})
	return page.Write(w, r, p)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)["key"]
	rec, err := h.Store.Get(r.Context(), key)
	if err != nil {
		return storeProblem(key, err)
	}
	return writeFlag(w, http.StatusOK, rec)
}

func (h *handlers) put(w http.ResponseWriter, r *http.Request) error {
	key, cond, change, err := h.writeRequest(r)
	if err != nil {
		return err
	}
	doc, err := readBody(r, "application/json")
	if err != nil {
		return err
	}
	def, err := parseDefinition(key, doc)
	if err != nil {
		return err
	}
	rec, outcome, err := h.Store.Put(r.Context(), key, def, cond, change)
	if err != nil {
		return storeProblem(key, err)
	}
	logChange(r, key, outcome, rec.Version, change)
	if outcome == store.Created {
		w.Header().Set("Location", "/v1/flags/"+url.PathEscape(key))
		return writeFlag(w, http.StatusCreated, rec)
	}
	return writeFlag(w, http.StatusOK, rec)
}

// patch applies an RFC 7396 JSON merge patch to the current definition
// inside the write's transaction, so concurrent changes are never lost.
// Validation pointers refer to the patched definition.
func (h *handlers) patch(w http.ResponseWriter, r *http.Request) error {
	key, cond, change, err := h.writeRequest(r)
	if err != nil {
		return err
	}
	patch, err := readBody(r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := web.DecodeJSONBytes(patch, &obj); err != nil || obj == nil {
		return patchProblem(err)
	}
	rec, outcome, err := h.Store.Update(r.Context(), key, cond, change, func(cur *store.Record) (*flags.Flag, error) {
		if cur == nil {
			return nil, store.ErrNotFound
		}
		doc, err := store.Definition(cur.Def)
		if err != nil {
			return nil, err
		}
		merged, err := jsonpatch.MergePatch(doc, patch)
		if err != nil {
			return nil, problem.New(problem.InvalidJSON, "the merge patch cannot be applied")
		}
		def, err := parseDefinition(key, merged)
		return &def, err
	})
	if err != nil {
		return storeProblem(key, err)
	}
	logChange(r, key, outcome, rec.Version, change)
	return writeFlag(w, http.StatusOK, rec)
}

func (h *handlers) delete(w http.ResponseWriter, r *http.Request) error {
	key, cond, change, err := h.writeRequest(r)
	if err != nil {
		return err
	}
	version, err := h.Store.Delete(r.Context(), key, cond, change)
	if err != nil {
		return storeProblem(key, err)
	}
	logChange(r, key, store.Deleted, version, change)
	return web.NoContent(w)
}

// writeRequest reads what every write needs: the key, the preconditions
// and the audit's who and why.
func (h *handlers) writeRequest(r *http.Request) (string, store.Cond, store.Change, error) {
	key := mux.Vars(r)["key"]
	if err := web.RejectUnknownParams(r.URL.Query(), "reason"); err != nil {
		return "", store.Cond{}, store.Change{}, err
	}
	if !flags.ValidKey(key) {
		return "", store.Cond{}, store.Change{}, problem.Validation(validation.FieldError{Pointer: "#/key", Code: "invalid",
			Detail: "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"})
	}
	caller, _ := auth.FromContext(r.Context())
	if err := MayWrite(caller, key); err != nil {
		return "", store.Cond{}, store.Change{}, err
	}
	cond, err := conditions(r)
	if err != nil {
		return "", store.Cond{}, store.Change{}, err
	}
	reason, err := changeReason(r)
	if err != nil {
		return "", store.Cond{}, store.Change{}, err
	}
	return key, cond, store.Change{Actor: caller.Name + "/" + caller.KeyID, Reason: reason}, nil
}

// PlatformPrefix starts the keys of the platform's own flags, such as the
// rollouts kill switch. Flags are global, so a tenant able to change these
// would switch platform behaviour for every tenant: only admin keys may.
const PlatformPrefix = "platform."

// MayWrite refuses a change of flag key (a write, or a rollout, which
// rewrites the flag) to a caller who may not make it: platform flags need
// admin. The route already demanded flags:write.
func MayWrite(caller auth.Principal, key string) error {
	if strings.HasPrefix(key, PlatformPrefix) && !caller.IsAdmin() {
		return auth.InsufficientScope(auth.ScopeAdmin)
	}
	return nil
}

func writeFlag(w http.ResponseWriter, status int, rec store.Record) error {
	w.Header().Set("ETag", rec.ETag())
	return web.WriteJSON(w, status, toView(rec))
}

func readBody(r *http.Request, accepted ...string) ([]byte, error) {
	if err := mediaType(r, accepted...); err != nil {
		return nil, err
	}
	return web.ReadBody(r)
}

func patchProblem(err error) error {
	var p *problem.Error
	if errors.As(err, &p) && p.Code == problem.InvalidJSON {
		return err
	}
	return problem.Validation(validation.FieldError{Pointer: "#", Code: "invalid_type",
		Detail: "a merge patch of a flag must be a JSON object"})
}

// storeProblem maps the store's errors to the contract's problems.
func storeProblem(key string, err error) error {
	var ve *flags.ValidationError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem.Newf(problem.NotFound, "no flag %q", key)
	case errors.Is(err, store.ErrPreconditionFailed):
		return &problem.Error{Code: problem.PreconditionFailed,
			Detail: fmt.Sprintf("flag %q does not match the request's precondition (If-Match / If-None-Match)", key), Err: err}
	case errors.As(err, &ve):
		return problem.Validation(fieldErrors(ve)...)
	}
	return err
}

func logChange(r *http.Request, key string, outcome store.Outcome, version int64, ch store.Change) {
	web.Logger(r.Context()).InfoContext(r.Context(), "flag changed", "flag", key, "outcome", outcome,
		"version", version, "actor", ch.Actor, "reason", ch.Reason)
}
