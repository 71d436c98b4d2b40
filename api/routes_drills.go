package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/backups"
	"github.com/acme/platform/api/drills"
)

// drillRoutes registers the disaster-recovery resources: drills, which run
// on the control task queue, and the backups they take.
func (s *Server) drillRoutes(r *mux.Router, protect func(string, http.Handler) http.Handler, secret []byte) {
	cfg := s.deps.Config
	store := &drills.Store{DB: s.deps.DB, Reads: s.deps.Reads}
	d := drills.Deps{Store: store, Temporal: s.deps.Temporal,
		Starter:       &drills.Starter{Temporal: s.deps.Temporal, TaskQueue: cfg.ControlTaskQueue, Store: store},
		TemporalUIURL: cfg.TemporalUIURL, Namespace: cfg.TemporalNamespace, HasPatroni: cfg.DrillPatroniURL != "",
		CursorSecret: secret, Protect: protect}
	b := backups.Deps{CursorSecret: secret, Protect: protect}
	if s.deps.Backups != nil { // a nil *Store in an interface would not be nil
		b.Store = s.deps.Backups
		d.Backups = backups.Manifests{Store: s.deps.Backups}
	}
	drills.Routes(r, d)
	backups.Routes(r, b)
}
