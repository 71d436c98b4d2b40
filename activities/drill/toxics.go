package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/workflows/drill"
)

// toxicPrefix names every toxic a drill adds, so what a drill left is
// recognisable in Toxiproxy; removal still removes every toxic, since a
// proxy in front of the platform's stores must carry none after a drill.
const toxicPrefix = "drill_"

// proxies are the only proxies a drill may touch.
var proxies = []string{drill.PostgresProxy, drill.RedisProxy}

// toxiproxyClient is the client of the configured admin API, or a
// non-retryable error when none is configured.
func (a *Activities) toxiproxyClient() (*toxiproxy.Client, error) {
	if a.Config.ToxiproxyURL == "" {
		return nil, temporal.NewNonRetryableApplicationError("PLATFORM_TOXIPROXY_URL is not set: degraded drills need Toxiproxy", "NotConfigured", nil)
	}
	return toxiproxy.NewClient(a.Config.ToxiproxyURL), nil
}

// RemoveToxics removes every toxic from in.Proxy and enables it: the
// experiments' compensation. Idempotent; an unreachable Toxiproxy is an
// error Temporal retries.
func (a *Activities) RemoveToxics(_ context.Context, in drill.RemoveToxicsInput) (drill.RemoveToxicsResult, error) {
	var res drill.RemoveToxicsResult
	if !slices.Contains(proxies, in.Proxy) {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%q is not a platform proxy", in.Proxy), "BadInput", nil)
	}
	c, err := a.toxiproxyClient()
	if err != nil {
		return res, err
	}
	removed, err := removeAll(c, in.Proxy)
	res.Removed = removed
	return res, err
}

// removeAll removes every toxic from name and enables it.
func removeAll(c *toxiproxy.Client, name string) ([]string, error) {
	p, err := c.Proxy(name)
	if err != nil {
		return nil, fmt.Errorf("read proxy %s: %w", name, err)
	}
	toxics, err := p.Toxics()
	if err != nil {
		return nil, fmt.Errorf("list toxics of %s: %w", name, err)
	}
	var removed []string
	var errs []error
	for _, t := range toxics {
		if err := p.RemoveToxic(t.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, t.Name)
	}
	if !p.Enabled {
		if err := p.Enable(); err != nil {
			errs = append(errs, fmt.Errorf("enable %s: %w", name, err))
		} else {
			removed = append(removed, "cut (proxy re-enabled)")
		}
	}
	return removed, errors.Join(errs...)
}

// applyFault puts fault on proxy p.
func applyFault(p *toxiproxy.Proxy, fault string) error {
	var err error
	switch fault {
	case drill.FaultLatency:
		_, err = p.AddToxic(toxicPrefix+"latency", "latency", "downstream", 1, toxiproxy.Attributes{"latency": 200, "jitter": 50})
	case drill.FaultBandwidth:
		_, err = p.AddToxic(toxicPrefix+"bandwidth", "bandwidth", "downstream", 1, toxiproxy.Attributes{"rate": 16})
	case drill.FaultTimeout:
		_, err = p.AddToxic(toxicPrefix+"timeout", "timeout", "downstream", 1, toxiproxy.Attributes{"timeout": 2000})
	case drill.FaultCut:
		err = p.Disable()
	default:
		err = fmt.Errorf("unknown fault %q", fault)
	}
	return err
}
