// Package provider is the platform's OpenFeature provider: it evaluates
// flags in process from a snapshot of the flag store that a store.Watcher
// keeps current (Postgres LISTEN/NOTIFY, with polling as a safety net), and
// turns the watcher's state into OpenFeature events: PROVIDER_READY,
// PROVIDER_CONFIGURATION_CHANGED, PROVIDER_STALE and PROVIDER_ERROR.
//
// Runtime wires it into an OpenFeature API with the platform's hook, which
// counts evaluations in Prometheus and adds feature_flag span events.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// Name is the provider's name in OpenFeature metadata and telemetry.
const Name = "platform"

// Options configure a Provider.
type Options struct {
	// Watch configures the store watcher; its OnEvent is the provider's.
	Watch store.WatchOptions
	// InitTimeout bounds how long Init waits for the first load. When it
	// passes, Init fails (the provider is in ERROR) but the watcher keeps
	// trying and the provider turns READY when the store answers. Default 5s.
	InitTimeout time.Duration
	// Log receives the watcher's reconnects and failures.
	Log *slog.Logger
}

// Provider evaluates flags from the store. It implements OpenFeature's
// FeatureProvider, StateHandler and EventHandler.
type Provider struct {
	watcher     *store.Watcher // nil for a static provider
	current     func() *store.FlagSet
	events      chan openfeature.Event
	initTimeout time.Duration
	log         *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.StateHandler             = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
)

// New returns a provider that watches the store cfg connects to. It does
// nothing until Init.
func New(cfg *pgx.ConnConfig, opts Options) *Provider {
	p := &Provider{events: make(chan openfeature.Event, 64), initTimeout: opts.InitTimeout, log: opts.Log}
	if p.initTimeout <= 0 {
		p.initTimeout = 5 * time.Second
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	w := opts.Watch
	w.OnEvent = p.emit
	w.Log = p.log
	p.watcher = store.NewWatcher(cfg, w)
	p.current = p.watcher.Current
	return p
}

// NewStatic returns a provider that serves one fixed flag set, for tests and
// benchmarks of code that evaluates flags.
func NewStatic(set *store.FlagSet) *Provider {
	return &Provider{current: func() *store.FlagSet { return set }, events: make(chan openfeature.Event, 1),
		log: slog.New(slog.DiscardHandler)}
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: Name} }

// Hooks returns no provider hooks; Runtime installs the platform's hook on
// the API so that it sees every client.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// Init starts watching the store and waits up to the init timeout for the
// first load.
func (p *Provider) Init(ec openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), ec)
}

// InitWithContext is Init bounded by ctx as well.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	if p.watcher == nil {
		return nil
	}
	p.mu.Lock()
	if p.cancel == nil {
		runCtx, cancel := context.WithCancel(context.Background())
		p.cancel, p.done = cancel, make(chan struct{})
		go func() {
			defer close(p.done)
			p.watcher.Run(runCtx)
		}()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.initTimeout)
	defer cancel()
	select {
	case <-p.watcher.Loaded():
		return nil
	case <-ctx.Done():
		err := p.watcher.Status().Err
		if err == nil {
			err = errors.New("no answer")
		}
		return fmt.Errorf("load flags: %w (%w)", ctx.Err(), err)
	}
}

// ShutdownWithContext is Shutdown; closing the connection is bounded by the
// watcher itself.
func (p *Provider) ShutdownWithContext(context.Context) error {
	p.Shutdown()
	return nil
}

// Shutdown stops watching the store and waits for the watcher to close its
// connection.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel = nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// EventChannel delivers the provider's events to the OpenFeature API.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Current returns the flag set being served, or nil before the first load.
func (p *Provider) Current() *store.FlagSet { return p.current() }

// Status reports whether the provider serves a stale set, and why.
func (p *Provider) Status() store.Status {
	if p.watcher == nil {
		return store.Status{Revision: p.current().Revision}
	}
	return p.watcher.Status()
}

// emit turns a watcher event into an OpenFeature event. It never blocks the
// watcher: the API drains the channel continuously, and a provider used
// without an API must not stall.
func (p *Provider) emit(e store.Event) {
	ev := openfeature.Event{ProviderName: Name}
	switch e.Kind {
	case store.EventReady:
		ev.EventType, ev.Message = openfeature.ProviderReady, "flags loaded"
	case store.EventChanged:
		ev.EventType, ev.Message, ev.FlagChanges = openfeature.ProviderConfigChange, "flags changed", e.Changed
	case store.EventStale:
		ev.EventType, ev.Message = openfeature.ProviderStale, "flag store unreachable; serving the last flags: "+e.Err.Error()
	case store.EventError:
		ev.EventType, ev.Message = openfeature.ProviderError, "flag store unreachable: "+e.Err.Error()
		ev.ErrorCode = openfeature.GeneralCode
	default:
		return
	}
	select {
	case p.events <- ev:
	default:
		p.log.Warn("openfeature event dropped: nobody reads the provider's events", "event", ev.EventType)
	}
}

// evaluate resolves flag against the current set. The flattened context is
// used as the attributes as is: the evaluator reads targetingKey from it.
func (p *Provider) evaluate(flag string, fc openfeature.FlattenedContext) flags.Result {
	set := p.current()
	if set == nil {
		return flags.Result{Reason: flags.ReasonError, ErrorCode: string(openfeature.ProviderNotReadyCode), ErrorMessage: "flags not loaded yet"}
	}
	tk, _ := fc[openfeature.TargetingKey].(string)
	return set.Snapshot.Evaluate(flag, flags.EvalContext{TargetingKey: tk, Attributes: fc})
}

// BooleanEvaluation resolves a boolean flag.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, fc openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d := resolve(p.evaluate(flag, fc), def, asBool)
	return openfeature.BoolResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// StringEvaluation resolves a string flag.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, fc openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d := resolve(p.evaluate(flag, fc), def, asString)
	return openfeature.StringResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// FloatEvaluation resolves a numeric flag.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, fc openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d := resolve(p.evaluate(flag, fc), def, asFloat)
	return openfeature.FloatResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// IntEvaluation resolves a numeric flag as an integer, truncating as flagd
// does.
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, fc openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d := resolve(p.evaluate(flag, fc), def, asInt)
	return openfeature.IntResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// ObjectEvaluation resolves an object flag.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, fc openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d := resolve(p.evaluate(flag, fc), def, asObject)
	return openfeature.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// resolve maps an evaluator result to OpenFeature: the value converted by
// as, or the caller's default with the result's reason (DISABLED, DEFAULT)
// or error.
func resolve[T any](r flags.Result, def T, as func(any) (T, bool)) (T, openfeature.ProviderResolutionDetail) {
	d := openfeature.ProviderResolutionDetail{
		Reason: openfeature.Reason(r.Reason), Variant: r.Variant, FlagMetadata: openfeature.FlagMetadata(r.FlagMetadata),
	}
	if r.ErrorCode != "" {
		d.ResolutionError = resolutionError(r.ErrorCode, r.ErrorMessage)
		d.Reason, d.Variant = openfeature.ErrorReason, ""
		return def, d
	}
	if r.Value == nil {
		return def, d
	}
	v, ok := as(r.Value)
	if !ok {
		d.ResolutionError = openfeature.NewTypeMismatchResolutionError(fmt.Sprintf("variant %q is a %T", r.Variant, r.Value))
		d.Reason, d.Variant = openfeature.ErrorReason, ""
		return def, d
	}
	return v, d
}

func resolutionError(code, msg string) openfeature.ResolutionError {
	switch openfeature.ErrorCode(code) {
	case openfeature.FlagNotFoundCode:
		return openfeature.NewFlagNotFoundResolutionError(msg)
	case openfeature.ParseErrorCode:
		return openfeature.NewParseErrorResolutionError(msg)
	case openfeature.TypeMismatchCode:
		return openfeature.NewTypeMismatchResolutionError(msg)
	case openfeature.TargetingKeyMissingCode:
		return openfeature.NewTargetingKeyMissingResolutionError(msg)
	case openfeature.InvalidContextCode:
		return openfeature.NewInvalidContextResolutionError(msg)
	case openfeature.ProviderNotReadyCode:
		return openfeature.NewProviderNotReadyResolutionError(msg)
	}
	return openfeature.NewGeneralResolutionError(msg)
}

func asBool(v any) (bool, bool)     { b, ok := v.(bool); return b, ok }
func asString(v any) (string, bool) { s, ok := v.(string); return s, ok }
func asFloat(v any) (float64, bool) { f, ok := v.(float64); return f, ok }
func asInt(v any) (int64, bool)     { f, ok := v.(float64); return int64(f), ok }
func asObject(v any) (any, bool)    { m, ok := v.(map[string]any); return m, ok }
