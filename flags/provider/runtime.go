package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/flags/store"
)

// Runtime is one process's OpenFeature set-up: an OpenFeature API of its
// own with the platform provider and hook, and a client of it for the
// platform's code. Each Runtime has an isolated API rather than the
// package-level singleton, so several (one per test stack) can live in one
// process without replacing each other's provider.
type Runtime struct {
	API      *openfeature.EvaluationAPI
	Provider *Provider
	Client   *openfeature.Client
	Metrics  *Metrics
}

// Start builds the runtime and waits up to opts.InitTimeout for the first
// load. A store that does not answer in time is not an error: the provider
// starts in ERROR, keeps retrying, and turns READY when the store answers;
// evaluations meanwhile return the caller's defaults.
func Start(ctx context.Context, cfg *pgx.ConnConfig, reg prometheus.Registerer, opts Options) (*Runtime, error) {
	p := New(cfg, opts)
	m, err := NewMetrics(reg, p.Current)
	if err != nil {
		return nil, fmt.Errorf("register flag metrics: %w", err)
	}
	api := isolated.NewAPI()
	api.AddHooks(NewHook(m))
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		p.log.Warn("flag provider not ready yet; it keeps trying", "error", err)
	}
	return &Runtime{API: api, Provider: p, Client: api.NewClient(), Metrics: m}, nil
}

// Current returns the flag set being served, or nil before the first load.
func (r *Runtime) Current() *store.FlagSet { return r.Provider.Current() }

// Snapshot returns the flag set being served, or an error before the first
// load.
func (r *Runtime) Snapshot(context.Context) (*store.FlagSet, error) {
	if set := r.Provider.Current(); set != nil {
		return set, nil
	}
	return nil, errors.New("flags not loaded yet")
}

// Close shuts the provider down.
func (r *Runtime) Close(ctx context.Context) error {
	if err := r.API.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down openfeature: %w", err)
	}
	return nil
}

// FollowFloat calls set with numeric flag key's value (def when the flag is
// missing, disabled or not a number) now and after every change the
// provider reports (LISTEN/NOTIFY, or the poll), so a process setting can
// change at run time through an audited flag change. The flag is evaluated
// without a targeting key: it is one value per process, not per caller.
func (r *Runtime) FollowFloat(key string, def float64, set func(float64)) {
	eval := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		set(r.Client.Float(ctx, key, def, openfeature.EvaluationContext{}))
	}
	cb := func(openfeature.EventDetails) { eval() }
	r.Client.AddHandler(openfeature.ProviderReady, &cb)
	r.Client.AddHandler(openfeature.ProviderConfigChange, &cb)
	eval()
}
