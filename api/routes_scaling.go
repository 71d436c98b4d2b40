package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/scaling"
)

// scalingRoutes registers the scaling resources: policies and their
// controllers, decisions, targets and actions, on the control task queue.
func (s *Server) scalingRoutes(r *mux.Router, protect func(string, http.Handler) http.Handler, secret []byte) {
	scaling.Routes(r, scaling.Deps{Store: &scaling.Store{DB: s.deps.DB}, Temporal: s.deps.Temporal,
		ControlTaskQueue: s.deps.Config.ControlTaskQueue, CursorSecret: secret, Protect: protect})
}
