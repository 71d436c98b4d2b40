// Package scaling holds the scaling workflows' activities: reading a
// target's policy and signals, driving replica counts through a Driver and
// writing the decision and action rows (their one writer).
package scaling

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/temporal"
)

// Driver applies replica counts to a target. It uses only builtin types so
// that a driver in another package (scaling/kubernetes) satisfies it
// structurally, without importing this one.
type Driver interface {
	Scale(ctx context.Context, target string, replicas int32) error
	Replicas(ctx context.Context, target string) (desired, ready int32, err error)
}

// Endpointer is a driver that knows its replicas' ops addresses
// (host:port), where signals read metrics and checks probe /readyz.
type Endpointer interface {
	Endpoints(ctx context.Context, target string) ([]string, error)
}

// ErrTypeNoDriver marks a policy or action naming a driver this worker has
// not built.
const ErrTypeNoDriver = "NoDriver"

// ErrTypeDriverUnavailable marks a driver this worker could not build
// (the kubernetes driver outside a cluster without KUBECONFIG, say).
const ErrTypeDriverUnavailable = "DriverUnavailable"

func (a *Activities) driver(name string) (Driver, error) {
	d, ok := a.Drivers[name]
	if !ok || d == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("driver %q is not configured on this worker", name), ErrTypeNoDriver, nil)
	}
	if l, ok := d.(*Lazy); ok {
		return l.get(name)
	}
	return d, nil
}

// Lazy is a driver built on its first use, so that a worker whose
// environment cannot build it (the kubernetes driver outside a cluster)
// still starts, and only the policies and actions naming it fail, with
// the reason in their decision or action. A failed build is tried again
// at the next use; a built driver is kept.
type Lazy struct {
	Build func() (Driver, error)

	mu sync.Mutex
	d  Driver
}

func (l *Lazy) get(name string) (Driver, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.d != nil {
		return l.d, nil
	}
	d, err := l.Build()
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("driver %q is unavailable on this worker: %v", name, err), ErrTypeDriverUnavailable, nil)
	}
	l.d = d
	return d, nil
}

// Scale and Replicas make a Lazy a Driver for the registry; the
// activities resolve it first (Activities.driver), so these are only
// reached by a caller that holds the Lazy itself.
func (l *Lazy) Scale(ctx context.Context, target string, replicas int32) error {
	d, err := l.get("lazy")
	if err != nil {
		return err
	}
	return d.Scale(ctx, target, replicas)
}

// Replicas: see Scale.
func (l *Lazy) Replicas(ctx context.Context, target string) (int32, int32, error) {
	d, err := l.get("lazy")
	if err != nil {
		return 0, 0, err
	}
	return d.Replicas(ctx, target)
}

// DryRun is the dry_run driver: it remembers the counts it is given (per
// process; every target starts at 1) and reports them ready at once.
type DryRun struct {
	mu     sync.Mutex
	counts map[string]int32
}

var _ Driver = (*DryRun)(nil)

// Scale records the count.
func (d *DryRun) Scale(_ context.Context, target string, replicas int32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts == nil {
		d.counts = map[string]int32{}
	}
	d.counts[target] = replicas
	return nil
}

// Replicas returns the recorded count as desired and ready.
func (d *DryRun) Replicas(_ context.Context, target string) (int32, int32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.counts[target]
	if !ok {
		n = 1
	}
	return n, n, nil
}
