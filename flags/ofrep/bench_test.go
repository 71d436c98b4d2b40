package ofrep

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// BenchmarkEvaluateAll is a bulk evaluation of 100 flags for a large
// context within the OFREP limits (about 60 KiB): the cost M5 is about.
func BenchmarkEvaluateAll(b *testing.B) {
	set := store.NewFlagSet(benchDefinitions(), nil, 1)
	_, _, code, details := ParseContext(largeContext())
	if code != "" {
		b.Fatal(details)
	}
	ctx, _, _, _ := ParseContext(largeContext())
	b.ReportAllocs()
	for b.Loop() {
		EvaluateAll(set, ctx, nil)
	}
}

// benchDefinitions are 100 flags of the usual shapes: static, targeting on
// the fast path, fractional, and rules the fast path leaves to the
// library (or machine).
func benchDefinitions() map[string]flags.Flag {
	rules := []string{
		``,
		`{"if": [{"and": [{"ends_with": [{"var": "email"}, "@example.com"]}, {"in": [{"var": "country"}, ["NL", "DE", "FR"]]}]}, "on", "off"]}`,
		`{"fractional": [["on", 10], ["off", 90]]}`,
		`{"if": [{"some": [{"var": "groups"}, {"==": [{"var": ""}, "beta"]}]}, "on", "off"]}`,
	}
	defs := map[string]flags.Flag{}
	for i := range 100 {
		def := flags.Flag{State: flags.StateEnabled, DefaultVariant: "off",
			Variants: map[string]json.RawMessage{"on": []byte("true"), "off": []byte("false")}}
		if r := rules[i%len(rules)]; r != "" {
			def.Targeting = json.RawMessage(r)
		}
		defs[fmt.Sprintf("flag-%03d", i)] = def
	}
	return defs
}

// largeContext is about 60 KiB: 200 attributes, a list of 1000 numbers,
// and a list of 1000 group names.
func largeContext() []byte {
	attrs := map[string]any{"targetingKey": "user-12345", "email": "ann@example.com", "country": "NL"}
	for i := range 200 {
		attrs[fmt.Sprintf("attr-%03d", i)] = strings.Repeat("v", 100)
	}
	numbers, groups := make([]any, 1000), make([]any, 1000)
	for i := range numbers {
		numbers[i], groups[i] = float64(i), fmt.Sprintf("group-%d", i)
	}
	attrs["numbers"], attrs["groups"] = numbers, groups
	b, _ := json.Marshal(map[string]any{"context": attrs})
	return b
}
