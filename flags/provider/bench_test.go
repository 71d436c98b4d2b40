package provider

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// The flags of flags/bench_test.go, so the three layers compare directly:
// the evaluator alone (flags.BenchmarkEvaluate), the provider, and the
// OpenFeature client with the platform hook.
const benchFlags = `{"flags": {
  "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "targeting": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"and": [{"ends_with": [{"var": "email"}, "@example.com"]}, {"in": [{"var": "country"}, ["NL", "DE", "FR"]]}]}, "on", "off"]}},
  "fractional": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"fractional": [["on", 10], ["off", 90]]}}
}}`

func benchSet(b *testing.B) *store.FlagSet {
	file, err := flags.ParseFile([]byte(benchFlags))
	if err != nil {
		b.Fatal(err)
	}
	return store.NewFlagSet(file.Flags, nil, 1)
}

var benchAttrs = map[string]any{"email": "ann@example.com", "country": "NL", "plan": "pro"}

// BenchmarkProviderEvaluate calls the provider as the OpenFeature SDK does.
func BenchmarkProviderEvaluate(b *testing.B) {
	p := NewStatic(benchSet(b))
	fc := openfeature.FlattenedContext{"targetingKey": "user-12345", "email": "ann@example.com", "country": "NL", "plan": "pro"}
	for _, name := range []string{"static", "targeting", "fractional"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := p.BooleanEvaluation(context.Background(), name, false, fc); r.Error() != nil {
					b.Fatal(r.Error())
				}
			}
		})
	}
}

// BenchmarkClientEvaluate evaluates through the OpenFeature client, with
// the platform hook counting every evaluation: what platform code pays.
func BenchmarkClientEvaluate(b *testing.B) {
	c := newClient(b, benchSet(b), prometheus.NewRegistry())
	ec := openfeature.NewEvaluationContext("user-12345", benchAttrs)
	ctx := context.Background()
	for _, name := range []string{"static", "targeting", "fractional"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.BooleanValueDetails(ctx, name, false, ec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
