package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/workflows/drill"
)

// recovery is how long after a fault is lifted its answers still count to
// it: the platform's reconnection is part of the fault.
const recovery = 2 * time.Second

// Degraded applies each fault in turn to in.Proxy under steady load and
// measures the answers. When the stop condition trips, it removes every
// toxic, stops the load and reports why; the workflow's compensation
// removes them again in any case, so a lost worker leaves nothing behind.
func (a *Activities) Degraded(ctx context.Context, in drill.DegradedInput) (drill.DegradedResult, error) {
	res := drill.DegradedResult{PoolWaitsMax: -1}
	c, err := a.toxiproxyClient()
	if err != nil {
		return res, err
	}
	if !slices.Contains(proxies, in.Proxy) {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%q is not a platform proxy", in.Proxy), "BadInput", nil)
	}
	proxy, err := c.Proxy(in.Proxy)
	if err != nil {
		return res, fmt.Errorf("read proxy %s: %w", in.Proxy, err)
	}
	p := in.Params
	run := time.Duration(len(p.Faults)) * (time.Duration(p.FaultSeconds)*time.Second + recovery)
	keyID, secret, err := a.mintKey(ctx, "degraded drill "+in.DrillID, experimentScopes, run+keyGrace)
	if err != nil {
		return res, err
	}
	defer a.revokeDrillKey(ctx, keyID)
	defer keepAlive(ctx)()
	defer func() { _, _ = removeAll(c, in.Proxy) }()

	m := &mix{base: a.Config.DrillAPIURL, secret: secret, drillID: in.DrillID}
	if m.jobID, err = seedJob(ctx, m.base, secret, in.DrillID); err != nil {
		return res, err
	}
	baseline := scrape(ctx, a.Config.DrillMetricsURL)
	l := &faultLoad{breaker: experiment.Breaker{MaxErrorRate: float64(p.AbortErrorPercent) / 100, MaxP99: float64(p.AbortP99Ms),
		Grace: time.Duration(p.GraceSeconds) * time.Second}, byFault: map[string]*faultTally{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	done := make(chan struct{})
	go func() { defer close(done); l.run(loadCtx, m, p.RatePerSecond, run+time.Second) }()

	res.Stopped = a.injectFaults(loadCtx, proxy, p, l, &res)
	stopLoad()
	<-done
	if _, err := removeAll(c, in.Proxy); err != nil {
		a.Log.Warn("degraded drill: toxics not removed yet; the compensation retries", "proxy", in.Proxy, "error", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Stopped == "" {
		res.Stopped = l.stoppedBy()
	}
	res.Faults = l.results(p.Faults)
	res.Invariants = a.checkInvariants(ctx, m, l.acked(), baseline)
	return res, nil
}

// injectFaults runs each fault for its time, sampling pool waits every
// second, and returns why it stopped early, if it did.
func (a *Activities) injectFaults(ctx context.Context, proxy *toxiproxy.Proxy, p drill.DegradedParams, l *faultLoad, res *drill.DegradedResult) string {
	before := scrape(ctx, a.Config.DrillMetricsURL)
	for _, fault := range p.Faults {
		l.setFault(fault)
		if err := applyFault(proxy, fault); err != nil {
			return "could not apply " + fault + ": " + err.Error()
		}
		end := time.Now().Add(time.Duration(p.FaultSeconds) * time.Second)
		for time.Now().Before(end) {
			if why := l.stoppedBy(); why != "" {
				return why
			}
			select {
			case <-ctx.Done():
				return ""
			case <-time.After(time.Second):
			}
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, fault)
			}
			if now := scrape(ctx, a.Config.DrillMetricsURL); len(now) > 0 {
				res.PoolWaitsMax = max(res.PoolWaitsMax, now[metricPoolWaits]-before[metricPoolWaits])
			}
		}
		if _, err := removeAll(toxiproxy.NewClient(a.Config.ToxiproxyURL), proxy.Name); err != nil {
			return "could not lift " + fault + ": " + err.Error()
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(recovery):
		}
	}
	return ""
}

// faultLoad is the steady load of a degraded drill: its answers by the
// fault in force when each request was sent, and the stop condition fed
// one-second windows.
type faultLoad struct {
	mu      sync.Mutex
	fault   string
	byFault map[string]*faultTally
	ids     []string
	breaker experiment.Breaker
	window  []*vegeta.Result
	winEnd  time.Time
	stopped string
}

type faultTally struct {
	res       drill.FaultResult
	latencies []time.Duration
}

func (l *faultLoad) setFault(f string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fault = f
}

func (l *faultLoad) stoppedBy() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

func (l *faultLoad) acked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// run sends the mix at rate until ctx ends or the stop condition trips.
func (l *faultLoad) run(ctx context.Context, m *mix, rate int, d time.Duration) {
	atk, closeIdle := newAttacker()
	defer closeIdle()
	results := atk.Attack(m.targeter(), vegeta.Rate{Freq: rate, Per: time.Second}, d, "degraded")
	stopped := false
	for {
		select {
		case r, ok := <-results:
			if !ok {
				return
			}
			if l.add(r) && !stopped {
				stopped = true
				atk.Stop()
			}
		case <-ctx.Done():
			if !stopped {
				stopped = true
				atk.Stop()
			}
			for r := range results {
				l.add(r)
			}
			return
		}
	}
}

// add counts r and feeds the stop condition; it reports whether to stop.
func (l *faultLoad) add(r *vegeta.Result) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := l.fault
	if name == "" {
		name = "baseline"
	}
	t := l.byFault[name]
	if t == nil {
		t = &faultTally{res: drill.FaultResult{Fault: name, Statuses: map[string]int{}}}
		l.byFault[name] = t
	}
	t.res.Requests++
	t.latencies = append(t.latencies, r.Latency)
	t.res.Statuses[degradedClass(r.Code)]++
	switch {
	case r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") != "":
		t.res.Shed++
	case r.Code == http.StatusInternalServerError:
		t.res.Errors500++
		t.res.Unexpected++
	case unexpected(r):
		t.res.Unexpected++
	}
	if r.Code == http.StatusCreated && classOf(r.Method, r.URL) == experiment.ClassCreate {
		if id := createdID(r.Body); id != "" {
			l.ids = append(l.ids, id)
		}
	}
	return l.observe(r)
}

// observe adds r to the current one-second window; at the window's end it
// feeds the breaker.
func (l *faultLoad) observe(r *vegeta.Result) bool {
	end := r.End()
	if l.winEnd.IsZero() {
		l.winEnd = end.Add(time.Second)
	}
	l.window = append(l.window, r)
	if end.Before(l.winEnd) || l.stopped != "" {
		return false
	}
	bad := 0
	ds := make([]time.Duration, len(l.window))
	for i, w := range l.window {
		ds[i] = w.Latency
		if unexpected(w) {
			bad++
		}
	}
	slices.Sort(ds)
	l.stopped = l.breaker.Observe(end, float64(bad)/float64(len(l.window)), percentile(ds, 99))
	l.window, l.winEnd = l.window[:0], end.Add(time.Second)
	return l.stopped != ""
}

// unexpected: outside the documented degraded mode — no answer, a 5xx
// other than a 503 with Retry-After.
func unexpected(r *vegeta.Result) bool {
	if r.Code == 0 {
		return true
	}
	if r.Code == http.StatusServiceUnavailable {
		return r.Headers.Get("Retry-After") == ""
	}
	return r.Code >= 500
}

func degradedClass(code uint16) string {
	switch {
	case code == 0:
		return "transport"
	case code == 429 || code == 500 || code == 503:
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%dxx", code/100)
}

// results are the faults' tallies in the order they ran.
func (l *faultLoad) results(faults []string) []drill.FaultResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []drill.FaultResult
	for _, f := range faults {
		t := l.byFault[f]
		if t == nil {
			continue
		}
		slices.Sort(t.latencies)
		t.res.P50, t.res.P99 = percentile(t.latencies, 50), percentile(t.latencies, 99)
		out = append(out, t.res)
	}
	return out
}

func createdID(body []byte) string {
	var job struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &job); err != nil {
		return ""
	}
	return job.ID
}
