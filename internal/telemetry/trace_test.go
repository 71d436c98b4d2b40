package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// sampledShare is the share of n random root server spans s samples.
func sampledShare(s sdktrace.Sampler, n int) float64 {
	hits := 0
	for range n {
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
		r := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id, Kind: trace.SpanKindServer})
		if r.Decision == sdktrace.RecordAndSample {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// TestRatioSampler_FollowsSetRatio: the share sampled follows SetRatio at
// once, on the same sampler the provider holds.
func TestRatioSampler_FollowsSetRatio(t *testing.T) {
	s := NewRatioSampler(1)
	for _, ratio := range []float64{1, 0, 0.25, 1, 0} {
		s.SetRatio(ratio)
		got := sampledShare(s, 20000)
		if got < ratio-0.02 || got > ratio+0.02 {
			t.Errorf("ratio %g: sampled %.3f", ratio, got)
		}
	}
	s.SetRatio(7)
	if s.Ratio() != 1 {
		t.Errorf("ratio 7 clamped to %g, want 1", s.Ratio())
	}
}

// TestRatioSampler_AgreesWithTraceIDRatioBased: a trace id is sampled alike
// here and by the SDK's sampler, so processes mixing both agree.
func TestRatioSampler_AgreesWithTraceIDRatioBased(t *testing.T) {
	ours, sdk := NewRatioSampler(0.3), sdktrace.TraceIDRatioBased(0.3)
	for range 5000 {
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
		p := sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id, Kind: trace.SpanKindServer}
		if a, b := ours.ShouldSample(p).Decision, sdk.ShouldSample(p).Decision; a != b {
			t.Fatalf("trace %s: ours %v, sdk %v", id, a, b)
		}
	}
}

// TestRatioSampler_ClientSpansStartNoTrace: a query or call outside any
// request (a flag poll) is not a trace of its own, whatever the ratio.
func TestRatioSampler_ClientSpansStartNoTrace(t *testing.T) {
	s := NewRatioSampler(1)
	r := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: trace.TraceID{1}, Kind: trace.SpanKindClient})
	if r.Decision != sdktrace.Drop {
		t.Errorf("root client span: %v, want drop", r.Decision)
	}
}

// TestNewTracing_ExportsOnlyWithAnEndpoint: no OTEL endpoint, no exporter;
// an unknown protocol is an error, not a silent default.
func TestNewTracing_ExportsOnlyWithAnEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := NewTracing(t.Context(), 1)
	if err != nil || tr.Exporting {
		t.Fatalf("unset: exporting %v, err %v", tr != nil && tr.Exporting, err)
	}
	_ = tr.Shutdown(t.Context())
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	for _, proto := range []string{"", "http/protobuf", "grpc"} {
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
		tr, err := NewTracing(t.Context(), 1)
		if err != nil || !tr.Exporting {
			t.Fatalf("protocol %q: exporting %v, err %v", proto, tr != nil && tr.Exporting, err)
		}
		_ = tr.Provider.ForceFlush(t.Context())
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, err := NewTracing(t.Context(), 1); err == nil {
		t.Error("http/json accepted")
	}
}

// TestNewTracing_ServiceNameFromEnvironment: OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES describe the process; platform is the default.
func TestNewTracing_ServiceNameFromEnvironment(t *testing.T) {
	for _, c := range []struct{ name, attrs, want string }{
		{"", "", "platform"},
		{"", "service.name=from-attrs,deployment.environment=test", "from-attrs"},
		{"worker-eu", "service.name=from-attrs", "worker-eu"},
	} {
		t.Setenv("OTEL_SERVICE_NAME", c.name)
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", c.attrs)
		tr, err := NewTracing(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		tr.Provider.RegisterSpanProcessor(rec)
		_, sp := tr.Provider.Tracer("t").Start(t.Context(), "x")
		sp.End()
		got := ""
		for _, kv := range rec.res.Attributes() {
			if kv.Key == "service.name" {
				got = kv.Value.AsString()
			}
		}
		if got != c.want {
			t.Errorf("OTEL_SERVICE_NAME=%q OTEL_RESOURCE_ATTRIBUTES=%q: service.name %q, want %q", c.name, c.attrs, got, c.want)
		}
	}
}

type recorder struct {
	res interface{ Attributes() []attribute.KeyValue }
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (r *recorder) OnEnd(s sdktrace.ReadOnlySpan)                   { r.res = s.Resource() }
func (r *recorder) Shutdown(context.Context) error                  { return nil }
func (r *recorder) ForceFlush(context.Context) error                { return nil }
