package provider

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// SpanEventName is the name of the span event each evaluation adds, as the
// OpenTelemetry semantic conventions for feature flags in spans name it.
// Its attributes are the conventions' current ones (feature_flag.key,
// feature_flag.provider.name, feature_flag.result.variant, ...), taken from
// the OpenFeature SDK's telemetry package.
const SpanEventName = "feature_flag"

// unknownFlag is the flag label of evaluations of keys the store does not
// hold: clients choose keys freely, and a label per typo would let them
// grow the metric without bound.
const unknownFlag = "_unknown"

// Metrics are the flag series: evaluations by flag, variant and reason, and
// gauges of each flag's state and version read from the served set at
// scrape time, so they always match what evaluations see.
type Metrics struct {
	evaluations *prometheus.CounterVec
	source      func() *store.FlagSet
}

// NewMetrics registers the flag series on reg. source returns the set being
// served. Registering twice on one registry reuses the first counter.
func NewMetrics(reg prometheus.Registerer, source func() *store.FlagSet) (*Metrics, error) {
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feature_flag_evaluations_total",
			Help: "Flag evaluations (in process and OFREP) by flag, variant and reason.",
		}, []string{"flag", "variant", "reason"}),
		source: source,
	}
	var exists prometheus.AlreadyRegisteredError
	switch err := reg.Register(m.evaluations); {
	case errors.As(err, &exists):
		m.evaluations = exists.ExistingCollector.(*prometheus.CounterVec)
	case err != nil:
		return nil, err
	}
	if err := reg.Register(stateCollector{source}); err != nil && !errors.As(err, &exists) {
		return nil, err
	}
	if err := reg.Register(budgetCounter()); err != nil && !errors.As(err, &exists) {
		return nil, err
	}
	return m, nil
}

// budgetCounter exports flags.BudgetExceeded. It has no labels: the flag
// that went over is in the evaluation's error, and nothing a tenant
// controls should add series.
func budgetCounter() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "feature_flag_evaluation_budget_exceeded_total",
		Help: "Flag evaluations stopped by the evaluation budget, which served the default variant with reason ERROR.",
	}, func() float64 { return float64(flags.BudgetExceeded()) })
}

// Count records one evaluation.
func (m *Metrics) Count(flag, variant, reason string) {
	if !m.source().Has(flag) {
		flag = unknownFlag
	}
	m.evaluations.WithLabelValues(flag, variant, reason).Inc()
}

var (
	stateDesc    = prometheus.NewDesc("feature_flag_state", "1 when the flag is ENABLED, 0 when DISABLED.", []string{"flag"}, nil)
	versionDesc  = prometheus.NewDesc("feature_flag_version", "The version of the flag being served.", []string{"flag"}, nil)
	revisionDesc = prometheus.NewDesc("feature_flag_revision", "The flag store revision being served.", nil, nil)
)

// stateCollector reports the served set's flags on every scrape; a deleted
// flag's series simply disappear.
type stateCollector struct{ source func() *store.FlagSet }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- versionDesc
	ch <- revisionDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.source()
	if set == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, float64(set.Revision))
	for key, info := range set.Flags {
		state := 0.0
		if info.Enabled {
			state = 1
		}
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, state, key)
		ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, float64(info.Version), key)
	}
}

// Hook is the OpenFeature hook that counts every evaluation and, when the
// evaluation happens inside a recorded span, adds a feature_flag event.
type Hook struct {
	openfeature.UnimplementedHook
	metrics *Metrics
}

var _ openfeature.Hook = (*Hook)(nil)

// NewHook returns a hook recording into m.
func NewHook(m *Metrics) *Hook { return &Hook{metrics: m} }

// Finally runs after every evaluation, successful or not.
func (h *Hook) Finally(ctx context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) {
	h.metrics.Count(hc.FlagKey(), d.Variant, string(d.Reason))
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	ev := telemetry.CreateEvaluationEvent(hc, d)
	attrs := make([]attribute.KeyValue, 0, len(ev.Attributes))
	for k, v := range ev.Attributes {
		attrs = append(attrs, attributeOf(k, v))
	}
	span.AddEvent(SpanEventName, trace.WithAttributes(attrs...))
}

func attributeOf(k string, v any) attribute.KeyValue {
	switch x := v.(type) {
	case string:
		return attribute.String(k, x)
	case bool:
		return attribute.Bool(k, x)
	case float64:
		return attribute.Float64(k, x)
	case int64:
		return attribute.Int64(k, x)
	}
	b, _ := json.Marshal(v) // an object variant's value
	return attribute.String(k, string(b))
}
