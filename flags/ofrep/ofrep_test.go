package ofrep

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

func TestParseContext(t *testing.T) {
	tests := []struct {
		body, code, tk string
	}{
		{``, "", ""},
		{`{}`, "", ""},
		{`{"context": null}`, "", ""},
		{`{"context": {"targetingKey": "u1", "plan": "pro"}}`, "", "u1"},
		{`{"context": [1]}`, flags.ErrorInvalidContext, ""},
		{`{"context": {"targetingKey": 3}}`, flags.ErrorInvalidContext, ""},
		{`{"context":`, flags.ErrorInvalidContext, ""},
	}
	for _, tt := range tests {
		ctx, _, code, _ := ParseContext([]byte(tt.body))
		if code != tt.code || ctx.TargetingKey != tt.tk {
			t.Errorf("%s: code %q tk %q, want %q %q", tt.body, code, ctx.TargetingKey, tt.code, tt.tk)
		}
	}
}

func TestETagCoversRevisionAndContext(t *testing.T) {
	set := func(rev int64) *store.FlagSet { return store.NewFlagSet(nil, nil, rev) }
	_, a, _, _ := ParseContext([]byte(`{"context": {"targetingKey": "u1", "b": 1, "a": 2}}`))
	_, sameOtherOrder, _, _ := ParseContext([]byte(`{"context": {"a": 2, "targetingKey": "u1", "b": 1}}`))
	_, other, _, _ := ParseContext([]byte(`{"context": {"targetingKey": "u2"}}`))
	if ETag(set(1), a) != ETag(set(1), sameOtherOrder) {
		t.Error("the ETag depends on key order")
	}
	if ETag(set(1), a) == ETag(set(1), other) || ETag(set(1), a) == ETag(set(2), a) {
		t.Error("the ETag ignores the context or the revision")
	}
	e := ETag(set(1), a)
	for header, want := range map[string]bool{e: true, "W/" + e: true, `"x", ` + e: true, `"x"`: false, "*": true} {
		if NotModified(header, e) != want {
			t.Errorf("If-None-Match %s: %v", header, !want)
		}
	}
}

func TestResponseOmitsTheValueOfCodeDefaults(t *testing.T) {
	def := flags.Flag{State: flags.StateDisabled, DefaultVariant: "on",
		Variants: map[string]json.RawMessage{"on": []byte("true")}}
	set := store.NewFlagSet(map[string]flags.Flag{"f": def}, nil, 1)
	status, body, _ := Evaluate(set, "f", flags.EvalContext{})
	b, _ := json.Marshal(body)
	if status != 200 || string(b) != `{"key":"f","reason":"DISABLED"}` {
		t.Errorf("%d %s", status, b)
	}
}

// TestParseContextEnforcesLimits answers 400 INVALID_CONTEXT for a context
// over the OFREP limits (M5), and accepts one at each limit.
func TestParseContextEnforcesLimits(t *testing.T) {
	body := func(context string) string { return `{"context": ` + context + `}` }
	list := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	nested := func(levels int) string { // the context object is level 1
		return strings.Repeat(`{"a": `, levels) + "1" + strings.Repeat("}", levels)
	}
	attributes := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`"a%d": 1`, i)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"64 KiB", body(`{"s": "` + strings.Repeat("x", flags.MaxContextBytes-9) + `"}`), true},
		{"over 64 KiB", body(`{"s": "` + strings.Repeat("x", flags.MaxContextBytes) + `"}`), false},
		{"invalid UTF-8 that decodes to over 64 KiB", body(`{"s": "` + strings.Repeat("\xff", 30<<10) + `"}`), false},
		{"256 attributes", body(attributes(flags.MaxContextAttributes)), true},
		{"257 attributes", body(attributes(flags.MaxContextAttributes + 1)), false},
		{"a list of 1000", body(`{"l": ` + list(flags.MaxContextArray) + `}`), true},
		{"a list of 1001", body(`{"l": ` + list(flags.MaxContextArray+1) + `}`), false},
		{"8 levels", body(nested(flags.MaxContextDepth)), true},
		{"9 levels", body(nested(flags.MaxContextDepth + 1)), false},
		{"9 levels of lists", body(`{"l": ` + strings.Repeat("[", 8) + strings.Repeat("]", 8) + `}`), false},
	}
	for _, tt := range tests {
		_, _, code, details := ParseContext([]byte(tt.body))
		if ok := code == ""; ok != tt.ok {
			t.Errorf("%s: code %q (%s), want ok=%v", tt.name, code, details, tt.ok)
		} else if !ok && code != flags.ErrorInvalidContext {
			t.Errorf("%s: code %q, want INVALID_CONTEXT", tt.name, code)
		}
	}
}

// countingValue counts how often it is converted to JSON.
type countingValue struct{ n *int }

func (c countingValue) MarshalJSON() ([]byte, error) {
	*c.n++
	return []byte(`"pro"`), nil
}

// TestEvaluateAllConvertsTheContextOnce converts the context once per
// request, not once per flag (M5).
func TestEvaluateAllConvertsTheContextOnce(t *testing.T) {
	defs := map[string]flags.Flag{}
	for i := range 20 {
		defs[fmt.Sprintf("f%d", i)] = flags.Flag{State: flags.StateEnabled, DefaultVariant: "off",
			Variants:  map[string]json.RawMessage{"on": []byte("true"), "off": []byte("false")},
			Targeting: []byte(`{"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]}`)}
	}
	conversions := 0
	ctx := flags.EvalContext{TargetingKey: "u", Attributes: map[string]any{"plan": countingValue{&conversions}}}
	bulk := EvaluateAll(store.NewFlagSet(defs, nil, 1), ctx, nil)
	if conversions != 1 {
		t.Errorf("the context was converted %d times for %d flags, want once", conversions, len(bulk.Flags))
	}
	if s, ok := bulk.Flags[0].(Success); !ok || s.Variant != "on" {
		t.Errorf("first flag = %+v", bulk.Flags[0])
	}
}
