package scaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/client"

	sc "github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/recommend"
	wf "github.com/acme/platform/workflows/scaling"
)

// ReadSignals reads every signal the policy names. A signal that cannot be
// read is returned without a value and with its error: the recommender
// then refuses to scale down.
func (a *Activities) ReadSignals(ctx context.Context, in wf.ReadSignalsInput) (wf.ReadSignalsResult, error) {
	p := in.Policy
	var backlog *queueReading
	var scrape *scrapeReading
	var out wf.ReadSignalsResult
	for _, t := range wf.SignalTargets(p.Signals) {
		r := wf.Reading{Name: t.Name, Target: t.Target, Total: t.Total}
		var v float64
		var err error
		switch t.Name {
		case sc.SignalBacklog, sc.SignalBacklogAge:
			if backlog == nil {
				backlog = a.readQueues(ctx)
			}
			v, err = backlog.count, backlog.err
			if t.Name == sc.SignalBacklogAge {
				v = backlog.age
			}
		case sc.SignalLatency:
			v, err = a.p95(ctx, p)
		default:
			if scrape == nil {
				scrape = a.scrapeReplicas(ctx, p)
			}
			v, err = scrape.value(t.Name)
		}
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Value = &v
		}
		out.Readings = append(out.Readings, r)
	}
	return out, nil
}

type queueReading struct {
	count, age float64
	err        error
}

// readQueues sums the effective backlog of the job queues (workflow and
// activity tasks) and takes the oldest task's age.
func (a *Activities) readQueues(ctx context.Context) *queueReading {
	var r queueReading
	if len(a.JobQueues) == 0 {
		r.err = errors.New("no task queue to read")
		return &r
	}
	for _, q := range a.JobQueues {
		d, err := a.Temporal.DescribeTaskQueueEnhanced(ctx, client.DescribeTaskQueueEnhancedOptions{
			TaskQueue:      q,
			TaskQueueTypes: []client.TaskQueueType{client.TaskQueueTypeWorkflow, client.TaskQueueTypeActivity},
			ReportStats:    true,
		})
		if err != nil {
			r.err = fmt.Errorf("describe task queue %s: %w", q, err)
			return &r
		}
		//lint:ignore SA1019 in SDK v1.51 DescribeTaskQueueEnhanced reports stats and pollers only here (VersioningInfo has neither)
		for _, v := range d.VersionsInfo {
			for _, ti := range v.TypesInfo {
				if ti.Stats == nil {
					continue
				}
				s := recommend.QueueStats{Count: ti.Stats.ApproximateBacklogCount, AgeSeconds: ti.Stats.ApproximateBacklogAge.Seconds(),
					AddRate: float64(ti.Stats.TasksAddRate), DispatchRate: float64(ti.Stats.TasksDispatchRate)}
				r.count += recommend.EffectiveBacklog(s)
				r.age = math.Max(r.age, s.AgeSeconds)
			}
		}
	}
	return &r
}

// p95 reads the API's 95th-percentile latency in milliseconds: from
// Prometheus over the last minute when PLATFORM_PROMETHEUS_URL is set,
// else from the replicas' own histograms (since each replica started).
func (a *Activities) p95(ctx context.Context, p sc.Policy) (float64, error) {
	if a.PrometheusURL != "" {
		return a.promQuery(ctx, `1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))`)
	}
	fams, err := a.scrapeAll(ctx, sc.TargetAPI, p.Driver)
	if err != nil {
		return 0, err
	}
	buckets := map[float64]float64{}
	for _, mf := range fams {
		for _, m := range mf["http_request_duration_seconds"].GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
	return quantile(0.95, buckets) * 1000, nil
}

// quantile estimates q from cumulative buckets, interpolating linearly
// within the bucket, as Prometheus's histogram_quantile does.
func quantile(q float64, buckets map[float64]float64) float64 {
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 || buckets[bounds[len(bounds)-1]] == 0 {
		return 0
	}
	rank := q * buckets[bounds[len(bounds)-1]]
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := buckets[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}

func (a *Activities) promQuery(ctx context.Context, query string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.PrometheusURL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("query prometheus: status %d", resp.StatusCode)
	}
	if len(body.Data.Result) == 0 {
		return 0, errors.New("prometheus has no samples")
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) {
		return 0, errors.New("prometheus has no samples")
	}
	return v, nil
}

func (a *Activities) client() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 5 * time.Second}
}

// scrapeAll fetches every replica's /metrics.
func (a *Activities) scrapeAll(ctx context.Context, target, driver string) ([]map[string]*dto.MetricFamily, error) {
	d, err := a.driver(driver)
	if err != nil {
		return nil, err
	}
	ep, ok := d.(Endpointer)
	if !ok {
		return nil, fmt.Errorf("the %s driver lists no replicas to read; set PLATFORM_PROMETHEUS_URL", driver)
	}
	addrs, err := ep.Endpoints(ctx, target)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no replica to read")
	}
	var out []map[string]*dto.MetricFamily
	for _, addr := range addrs {
		fams, err := a.scrape(ctx, addr)
		if err != nil {
			return nil, err
		}
		out = append(out, fams)
	}
	return out, nil
}

func (a *Activities) scrape(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return fams, nil
}

// scrapeReading holds CPU, memory and slot use, averaged over replicas.
type scrapeReading struct {
	values map[string]float64
	errs   map[string]error
}

func (s *scrapeReading) value(name string) (float64, error) {
	if err, ok := s.errs[name]; ok {
		return 0, err
	}
	return s.values[name], nil
}

// scrapeReplicas scrapes each replica twice, a second apart, for its CPU
// rate, and reads memory against the cgroup v2 limit and the SDK's
// activity slots.
func (a *Activities) scrapeReplicas(ctx context.Context, p sc.Policy) *scrapeReading {
	r := &scrapeReading{values: map[string]float64{}, errs: map[string]error{}}
	fail := func(err error) *scrapeReading {
		for _, n := range []string{sc.SignalCPU, sc.SignalMemory, sc.SignalSlots} {
			r.errs[n] = err
		}
		return r
	}
	first, err := a.scrapeAll(ctx, p.Target, p.Driver)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(time.Second):
	}
	second, err := a.scrapeAll(ctx, p.Target, p.Driver)
	if err != nil || len(second) != len(first) {
		return fail(fmt.Errorf("replicas changed while reading: %v", err))
	}
	elapsed := time.Since(start).Seconds()
	cores, memLimit := cgroupLimits()
	var cpu, mem, used, avail float64
	for i := range first {
		cpu += (gauge(second[i], "process_cpu_seconds_total", nil) - gauge(first[i], "process_cpu_seconds_total", nil)) / elapsed / cores
		mem += gauge(second[i], "process_resident_memory_bytes", nil)
		used += gauge(second[i], "temporal_worker_task_slots_used", map[string]string{"worker_type": "ActivityWorker"})
		avail += gauge(second[i], "temporal_worker_task_slots_available", map[string]string{"worker_type": "ActivityWorker"})
	}
	n := float64(len(first))
	r.values[sc.SignalCPU] = cpu / n
	if memLimit > 0 {
		r.values[sc.SignalMemory] = mem / n / memLimit
	} else {
		r.errs[sc.SignalMemory] = errors.New("no memory limit is set (cgroup v2 memory.max)")
	}
	if used+avail > 0 {
		r.values[sc.SignalSlots] = used / (used + avail)
	} else {
		r.errs[sc.SignalSlots] = errors.New("no worker slot metrics")
	}
	return r
}

// gauge sums the samples of name whose labels include want.
func gauge(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for fname, mf := range fams {
		if fname != name && !strings.HasPrefix(fname, name+"_") {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Untyped != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
	}
	return sum
}

// cgroupLimits reads this machine's cgroup v2 CPU quota (in cores; the
// number of CPUs when unlimited) and memory limit (0 when unlimited). The
// local driver's replicas share the supervisor's cgroup.
func cgroupLimits() (cores, mem float64) {
	cores = float64(runtime.NumCPU())
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, err1 := strconv.ParseFloat(f[0], 64)
			per, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && per > 0 {
				cores = q / per
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil {
			mem = v
		}
	}
	return cores, mem
}
