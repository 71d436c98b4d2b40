package webhooksecret

import (
	"net/http"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
)

type handlers struct{ Deps }

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	s, err := h.Store.Current(r.Context(), caller.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, toView(s))
}

// rotate takes no body; an empty JSON object is accepted too.
func (h *handlers) rotate(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	if r.ContentLength != 0 {
		var empty struct{}
		if err := web.DecodeJSON(r, &empty); err != nil {
			return err
		}
	}
	s, err := h.Store.Rotate(r.Context(), caller.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, toView(s))
}
