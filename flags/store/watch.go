package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventKind says what happened to a Watcher's flag set.
type EventKind string

// Event kinds.
const (
	// EventReady: the first load succeeded, or the store is reachable again
	// after being stale.
	EventReady EventKind = "ready"
	// EventChanged: a reload changed at least one flag.
	EventChanged EventKind = "changed"
	// EventStale: the store became unreachable; the last set is still served.
	EventStale EventKind = "stale"
	// EventError: the store is unreachable and nothing was ever loaded.
	EventError EventKind = "error"
)

// Event is a change of a Watcher's state.
type Event struct {
	Kind EventKind
	// Changed lists the changed flag keys of an EventChanged.
	Changed []string
	// Err is the cause of EventStale and EventError.
	Err error
}

// WatchOptions configure a Watcher. Zero values take the defaults.
type WatchOptions struct {
	// Poll is how often the revision is checked when no notification comes:
	// a safety net against lost notifications and half-open connections.
	// Default 30s.
	Poll time.Duration
	// Debounce is how long to gather further notifications before reloading,
	// so a burst of writes (an import) costs one reload. Default 20ms.
	Debounce time.Duration
	// RetryMin and RetryMax bound the reconnect backoff. Defaults 100ms, 5s.
	RetryMin, RetryMax time.Duration
	// QueryTimeout bounds each load. Default 5s.
	QueryTimeout time.Duration
	// OnEvent is called, from the watcher's goroutine, on each event. It must
	// not block.
	OnEvent func(Event)
	// Log receives reconnects and failures; nil discards them.
	Log *slog.Logger
}

func (o WatchOptions) withDefaults() WatchOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Poll, 30*time.Second)
	def(&o.Debounce, 20*time.Millisecond)
	def(&o.RetryMin, 100*time.Millisecond)
	def(&o.RetryMax, 5*time.Second)
	def(&o.QueryTimeout, 5*time.Second)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	return o
}

// WatchApplicationName names the watcher's connection in pg_stat_activity.
const WatchApplicationName = "platform-flags-watch"

// Watcher keeps a current FlagSet. It holds one dedicated connection that
// LISTENs on Channel and reloads (debounced) on every notification, and
// checks the revision every Poll as a safety net. When the connection is
// lost it keeps serving the last set, reports stale, and reconnects with
// backoff; after reconnecting it reloads, so nothing written meanwhile is
// missed.
type Watcher struct {
	cfg  *pgx.ConnConfig
	opts WatchOptions

	current atomic.Pointer[FlagSet]

	mu      sync.Mutex
	stale   bool
	lastErr error
	loaded  chan struct{} // closed after the first successful load
}

// NewWatcher returns a watcher connecting with cfg (copied; its
// application_name is set to WatchApplicationName).
func NewWatcher(cfg *pgx.ConnConfig, opts WatchOptions) *Watcher {
	c := cfg.Copy()
	c.RuntimeParams["application_name"] = WatchApplicationName
	return &Watcher{cfg: c, opts: opts.withDefaults(), loaded: make(chan struct{})}
}

// Current returns the latest flag set, or nil before the first load.
func (w *Watcher) Current() *FlagSet { return w.current.Load() }

// Loaded is closed once the first load has succeeded.
func (w *Watcher) Loaded() <-chan struct{} { return w.loaded }

// Status is a Watcher's health.
type Status struct {
	// Stale is true while the store is unreachable; the last set (if any)
	// is still served.
	Stale bool
	// Err is the last connection or load error while stale.
	Err error
	// Revision and LoadedAt describe the set being served.
	Revision int64
	LoadedAt time.Time
}

// Status reports the watcher's health.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{Stale: w.stale, Err: w.lastErr}
	if set := w.Current(); set != nil {
		st.Revision, st.LoadedAt = set.Revision, set.LoadedAt
	}
	return st
}

// Run watches until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	backoff := w.opts.RetryMin
	for {
		err := w.session(ctx, func() { backoff = w.opts.RetryMin })
		if ctx.Err() != nil {
			return
		}
		w.fail(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, w.opts.RetryMax)
	}
}

// session connects, listens and reloads until the connection fails. healthy
// is called once the session has loaded.
func (w *Watcher) session(ctx context.Context, healthy func()) error {
	conn, err := pgx.ConnectConfig(ctx, w.cfg)
	if err != nil {
		return fmt.Errorf("connect flag watcher: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	// LISTEN before loading: a change committed after the load is then
	// always notified.
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen on %s: %w", Channel, err)
	}
	changed, err := w.reload(ctx, conn)
	if err != nil {
		return err
	}
	w.recover()
	w.announce(changed)
	healthy()
	for {
		if err := w.waitAndReload(ctx, conn); err != nil {
			return err
		}
	}
}

// waitAndReload waits up to Poll for a notification, gathers any others
// that follow within Debounce, and reloads. A timeout reloads too: the
// revision check is cheap and proves the connection still works.
func (w *Watcher) waitAndReload(ctx context.Context, conn *pgx.Conn) error {
	notified, err := wait(ctx, conn, w.opts.Poll)
	if err != nil {
		return err
	}
	for notified {
		if notified, err = wait(ctx, conn, w.opts.Debounce); err != nil {
			return err
		}
	}
	changed, err := w.reload(ctx, conn)
	w.announce(changed)
	return err
}

// wait reports whether a notification arrived within d. Only a timeout is
// not an error; a notification's payload does not matter, since the reload
// reads everything at one revision.
func wait(ctx context.Context, conn *pgx.Conn, d time.Duration) (bool, error) {
	waitCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(waitCtx)
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(waitCtx.Err(), context.DeadlineExceeded) && !conn.IsClosed():
		return false, nil
	}
	return false, fmt.Errorf("wait for flag notifications: %w", err)
}

// reload loads the flags when the revision moved and returns the keys that
// changed (none on the first load, which announces readiness instead).
func (w *Watcher) reload(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.QueryTimeout)
	defer cancel()
	old := w.Current()
	if old != nil {
		rev, err := Revision(ctx, conn)
		if err != nil {
			return nil, err
		}
		if rev == old.Revision {
			return nil, nil
		}
	}
	set, err := Load(ctx, conn)
	if err != nil {
		return nil, err
	}
	w.current.Store(set)
	if old == nil {
		close(w.loaded)
		return nil, nil
	}
	return set.Changed(old), nil
}

func (w *Watcher) announce(changed []string) {
	if len(changed) == 0 {
		return
	}
	set := w.Current()
	w.opts.Log.Info("flags reloaded", "revision", set.Revision, "changed", changed)
	w.opts.OnEvent(Event{Kind: EventChanged, Changed: changed})
}

// fail marks the watcher stale (or in error before any load) once per
// outage.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	first := !w.stale
	w.stale, w.lastErr = true, err
	w.mu.Unlock()
	if !first {
		return
	}
	kind := EventStale
	if w.Current() == nil {
		kind = EventError
	}
	w.opts.Log.Warn("flag store unreachable: serving the last flags", "error", err)
	w.opts.OnEvent(Event{Kind: kind, Err: err})
}

// recover marks the watcher healthy after a successful load, announcing
// readiness on the first load and after an outage.
func (w *Watcher) recover() {
	w.mu.Lock()
	wasStale := w.stale
	w.stale, w.lastErr = false, nil
	w.mu.Unlock()
	if wasStale {
		w.opts.Log.Info("flag store reachable again")
	}
	w.opts.OnEvent(Event{Kind: EventReady})
}
