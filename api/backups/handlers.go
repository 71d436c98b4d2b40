package backups

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/workflows/drill"
)

type handlers struct{ Deps }

// list answers complete backups, newest first, a page of manifests at a
// time. The store holds at most PLATFORM_BACKUP_RETENTION of them, so the
// listing is read whole and paged in memory.
func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	if err := web.RejectUnknownParams(r.URL.Query(), page.ParamLimit, page.ParamCursor); err != nil {
		return err
	}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, url.Values{})
	if err != nil {
		return err
	}
	store, err := h.store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), manifestTimeout)
	defer cancel()
	entries, err := store.List(ctx)
	if err != nil {
		return problem.UnavailableAfter(5, "could not list the backup store", err)
	}
	entries = after(entries, req.After)
	entries = entries[:min(len(entries), req.FetchLimit())]
	views := make([]drill.Manifest, 0, len(entries))
	for _, e := range entries {
		var m drill.Manifest
		if err := store.Manifest(ctx, e.ID, &m); err != nil {
			return problem.UnavailableAfter(5, "could not read a backup manifest", fmt.Errorf("backup %s: %w", e.ID, err))
		}
		views = append(views, m)
	}
	// The cursor carries the store's listing time, the order List sorts by.
	at := make(map[string]page.Cursor, len(entries))
	for _, e := range entries {
		at[e.ID] = page.Cursor{CreatedAt: e.Time.UTC(), ID: e.ID}
	}
	key := func(m drill.Manifest) page.Cursor { return at[m.ID] }
	return page.Write(w, r, page.Build(views, req, key, h.CursorSecret, caller.Name, url.Values{}))
}

// after drops the entries up to and including the cursor's.
func after(entries []backupstore.Entry, c *page.Cursor) []backupstore.Entry {
	if c == nil {
		return entries
	}
	for i, e := range entries {
		if e.Time.Before(c.CreatedAt) || (e.Time.Equal(c.CreatedAt) && e.ID < c.ID) {
			return entries[i:]
		}
	}
	return nil
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	if err := web.RejectUnknownParams(r.URL.Query()); err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no backup %q", id)
	if !backupstore.ValidID(id) {
		return notFound
	}
	store, err := h.store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), manifestTimeout)
	defer cancel()
	var m drill.Manifest
	err = store.Manifest(ctx, id, &m)
	switch {
	case errors.Is(err, backupstore.ErrNotFound):
		return notFound
	case err != nil:
		return problem.UnavailableAfter(5, "could not read the backup manifest", err)
	}
	return web.WriteJSON(w, http.StatusOK, m)
}

func (h *handlers) store() (Store, error) {
	if h.Store == nil {
		return nil, problem.UnavailableAfter(60, "this API process has no backup store (PLATFORM_BACKUP_URL could not be opened)", nil)
	}
	return h.Store, nil
}
