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

func (a *Activities) driver(name string) (Driver, error) {
	d, ok := a.Drivers[name]
	if !ok || d == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("driver %q is not configured on this worker", name), ErrTypeNoDriver, nil)
	}
	return d, nil
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
