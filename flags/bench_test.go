package flags

import (
	"testing"
)

const benchFlags = `{
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "targeting": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"and": [{"ends_with": [{"var": "email"}, "@example.com"]}, {"in": [{"var": "country"}, ["NL", "DE", "FR"]]}]}, "on", "off"]}
    },
    "fractional": {
      "state": "ENABLED", "variants": {"control": "control", "treatment": "treatment"}, "defaultVariant": "control",
      "targeting": {"fractional": [["treatment", 10], ["control", 90]]}
    }
  }
}`

// BenchmarkEvaluate measures one evaluation per shape, on the fast path and,
// for comparison, on the JSONLogic library alone.
func BenchmarkEvaluate(b *testing.B) {
	fast := NewSnapshot(mustFile(b, benchFlags))
	lib := libraryOnly(fast)
	ctx := EvalContext{TargetingKey: "user-12345", Attributes: map[string]any{"email": "ann@example.com", "country": "NL", "plan": "pro"}}
	for _, name := range []string{"static", "targeting", "fractional"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := fast.Evaluate(name, ctx); r.Reason == ReasonError {
					b.Fatal(r.ErrorMessage)
				}
			}
		})
	}
	for _, name := range []string{"targeting", "fractional"} {
		b.Run(name+"-library", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lib.Evaluate(name, ctx)
			}
		})
	}
}
