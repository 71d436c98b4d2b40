package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	apiflags "github.com/acme/platform/api/flags"
	"github.com/acme/platform/api/ofrep"
	"github.com/acme/platform/api/rollouts"
	"github.com/acme/platform/flags/store"
)

// flagRoutes registers the flag resources: /v1/flags, OFREP evaluation and
// /v1/rollouts.
func (s *Server) flagRoutes(r *mux.Router, protect func(string, http.Handler) http.Handler, secret []byte) {
	cfg := s.deps.Config
	flagStore := &store.Store{DB: s.deps.DB}
	apiflags.Routes(r, apiflags.Deps{Store: flagStore, Protect: protect, CursorSecret: secret})
	// Without a provider (tools, tests of other resources), OFREP reads the
	// store on each request.
	od := ofrep.Deps{Current: func(ctx context.Context) (*store.FlagSet, error) { return store.Load(ctx, s.deps.DB) },
		Protect: protect}
	// Rollouts run on the control task queue, whose worker slots no
	// tenant's jobs can take.
	rd := rollouts.Deps{DB: s.deps.DB, Flags: flagStore, Temporal: s.deps.Temporal, TaskQueue: cfg.ControlTaskQueue,
		Protect: protect, CursorSecret: secret, HasPrometheus: cfg.PrometheusURL != "",
		WorkflowURL: cfg.TemporalUIURL + "/namespaces/" + url.PathEscape(cfg.TemporalNamespace) + "/workflows/"}
	if rt := s.deps.Flags; rt != nil {
		od.Current, od.Count = rt.Snapshot, rt.Metrics.Count
		rd.Features = rt.Client
	}
	ofrep.Routes(r, od)
	rollouts.Routes(r, rd)
}
