package flags

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fast path must give exactly the library's answer. These tests run
// both on the same flags and contexts and compare whole Results.

// handRules cover each fast-path node and the library quirks it copies.
var handRules = []string{
	`{"fractional": [["a", 50], ["b", 50]]}`,
	`{"fractional": [{"var": "email"}, ["a", 10], ["b", 90]]}`,
	`{"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["a", 1], ["b", 1], ["true", 1]]}`,
	`{"fractional": [{"cat": [" pad ", {"var": "n"}, " "]}, ["a", 3], ["b", 1]]}`,
	`{"fractional": [{"var": "n"}, ["a", 50], ["b", 50]]}`,
	`{"fractional": [null, ["a", 50], ["b", 50]]}`,
	`{"fractional": ["fixed", ["a", 50], ["b", 50]]}`,
	`{"fractional": [["a", 0], ["b", 0]]}`,
	`{"fractional": [["a", 1.5], ["b", 1]]}`,
	`{"if": [{"var": "targetingKey"}, {"fractional": [["a", 50], ["b", 50]]}, "b"]}`,
	`{"if": [{"==": [{"var": "tier"}, "gold"]}, "a", {"fractional": [["a", 20], ["b", 80]]}]}`,
	`{"if": [{"in": [{"var": "country"}, ["NL", "DE", 1, true]]}, "a", "b"]}`,
	`{"if": [{"in": [{"var": "n"}, ["1", "2.0", 3]]}, "a", "b"]}`,
	`{"if": [{"in": ["@faas.com", {"var": "email"}]}, "a", null]}`,
	`{"if": [{"in": [{"var": "n"}, "12345"]}, "a", "b"]}`,
	`{"if": [{"==": [{"var": "n"}, "1"]}, "a", "b"]}`,
	`{"if": [{"===": [{"var": "n"}, 1]}, "a", "b"]}`,
	`{"if": [{"!=": [{"var": "flag"}, true]}, "a", "b"]}`,
	`{"if": [{"!==": [{"var": "tier"}, null]}, "a", "b"]}`,
	`{"if": [{"<": [{"var": "n"}, 10]}, "a", "b"]}`,
	`{"if": [{">=": [{"var": "n"}, "3"]}, "a", "b"]}`,
	`{"if": [{"<=": [{"var": "tier"}, {"var": "country"}]}, "a", "b"]}`,
	`{"if": [{">": [{"var": "$flagd.timestamp"}, 1600000000]}, "a", "b"]}`,
	`{"if": [{"and": [{"var": "flag"}, {"var": "n"}, "x"]}, "a", "b"]}`,
	`{"if": [{"or": [{"var": "missing"}, {"var": "tier"}]}, "a", "b"]}`,
	`{"if": [{"!": {"var": "flag"}}, "a", "b"]}`,
	`{"if": [{"!": [{"var": "flag"}]}, "a", "b"]}`,
	`{"if": [{"!!": [{"var": "tier"}]}, "a", "b"]}`,
	`{"if": [{"starts_with": [{"var": "email"}, "a"]}, "a", {"if": [{"ends_with": [{"var": "email"}, ".com"]}, "b", null]}]}`,
	`{"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "a", "b"]}`,
	`{"if": [{"sem_ver": [{"var": "version"}, "~", {"var": "tier"}]}, "a", "b"]}`,
	`{"if": [false, "a", {"var": "tier"}, "b", "true"]}`,
	`{"if": [{"var": "user.name"}, "a", "b"]}`,
	`{"if": [{"var": "tier.x"}, "a", "b"]}`,
	`{"if": [{"var": ["missing", "a"]}, {"var": ["missing", "a"]}, "b"]}`,
	`{"if": [{"var": "list.1"}, "a", "b"]}`,
	`{"cat": [{"var": "tier"}]}`,
	`{"var": "tier"}`,
	`{"var": "flag"}`,
	`{"==": [{"var": "tier"}, "gold"]}`,
	`{"and": []}`,
	`{"missing": ["tier"]}`,
	`{"if": [{"substr": [{"var": "tier"}, 0, 1]}, "a", "b"]}`,
	`{"if": [{"var": "\ufffd"}, "a", "b"]}`,
}

// contexts mix types, including ones the fast path hands to the library.
var contexts = []EvalContext{
	{},
	{TargetingKey: "user-1"},
	{TargetingKey: "user-2", Attributes: attrs("tier", "gold", "email", "ann@faas.com", "n", 1.0)},
	{Attributes: attrs("targetingKey", "attr-key", "tier", "a", "country", "NL", "flag", true, "n", 3)},
	{Attributes: attrs("tier", "", "flag", false, "n", "12", "version", "1.2.3", "email", "bob.example.com")},
	{Attributes: attrs("tier", "1.3", "version", "1.3.9", "n", int64(-2), "country", "DE")},
	{Attributes: attrs("tier", "b", "n", "abc", "version", "v2.0.0-rc.1", "flag", "true")},
	{TargetingKey: "k", Attributes: attrs("user", map[string]any{"name": "jack"}, "list", []any{"x", 2.0, nil})},
	{Attributes: attrs("tier", map[string]any{"x": 1.0}, "n", nil)},
	{Attributes: attrs("tier", []any{1.0}, "n", uint64(7))},
	{Attributes: attrs("country", "\xff\xfe", "tier", "gold")},
	{Attributes: attrs("n", 2.5, "flag", nil, "email", "  a@x.com ")},
	{Attributes: attrs("tier", struct{ X int }{1})},
	{TargetingKey: "\xffuser", Attributes: attrs("\xff", "x", "tier", "go\xffld", "email", "a\xff@faas.com")},
	{Attributes: attrs("targetingKey", "k\xfe", "n", 1)},
}

func flagsFor(rules []string) File {
	f := File{Flags: map[string]Flag{}}
	variants := map[string]json.RawMessage{
		"a": json.RawMessage(`"A"`), "b": json.RawMessage(`"B"`),
		"true": json.RawMessage(`"T"`), "false": json.RawMessage(`"F"`), "gold": json.RawMessage(`"G"`),
	}
	for i, r := range rules {
		f.Flags[fmt.Sprintf("flag-%d", i)] = Flag{State: StateEnabled, Variants: variants, DefaultVariant: "b", Targeting: json.RawMessage(r)}
	}
	return f
}

// TestFastPathMatchesLibraryOnHandwrittenRules compares the two paths on
// every handwritten rule and context.
func TestFastPathMatchesLibraryOnHandwrittenRules(t *testing.T) {
	fast := newSnapshot(flagsFor(handRules), clock)
	lib := libraryOnly(fast)
	for i, rule := range handRules {
		key := fmt.Sprintf("flag-%d", i)
		for j, ctx := range contexts {
			want, got := lib.Evaluate(key, ctx), fast.Evaluate(key, ctx)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rule %s, context %d: library vs fast (-want +got):\n%s", rule, j, diff)
			}
		}
	}
}

// TestFastPathCompilesTheCommonShapes guards against the fast path silently
// covering less than intended.
func TestFastPathCompilesTheCommonShapes(t *testing.T) {
	s := newSnapshot(flagsFor(handRules), clock)
	var slow []string
	for i, rule := range handRules {
		if s.flags[fmt.Sprintf("flag-%d", i)].fast == nil {
			slow = append(slow, rule)
		}
	}
	want := []string{
		`{"missing": ["tier"]}`,
		`{"if": [{"substr": [{"var": "tier"}, 0, 1]}, "a", "b"]}`,
		`{"if": [{"var": "\ufffd"}, "a", "b"]}`,
	}
	if diff := cmp.Diff(want, slow); diff != "" {
		t.Errorf("rules left to the library (-want +got):\n%s", diff)
	}
}

// TestFastPathMatchesLibraryOnRandomRules generates rules from the fast
// path's grammar and compares the two paths on random contexts.
func TestFastPathMatchesLibraryOnRandomRules(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var rules []string
	for range 3000 {
		b, _ := json.Marshal(randomRule(r, 0))
		rules = append(rules, string(b))
	}
	fast := newSnapshot(flagsFor(rules), clock)
	lib := libraryOnly(fast)
	compiled := 0
	for i, rule := range rules {
		key := fmt.Sprintf("flag-%d", i)
		if fast.flags[key].fast != nil {
			compiled++
		}
		for range 4 {
			ctx := randomContext(r)
			want, got := lib.Evaluate(key, ctx), fast.Evaluate(key, ctx)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("rule %s, context %+v: library vs fast (-want +got):\n%s", rule, ctx, diff)
			}
		}
	}
	if compiled < len(rules)*9/10 {
		t.Errorf("only %d of %d random rules compiled to the fast path", compiled, len(rules))
	}
}

var randomAttrs = []string{"tier", "n", "flag", "email", "version"}

func randomLiteral(r *rand.Rand) any {
	options := []any{"a", "b", "true", "", " a ", "1", "1.0", "2.0.0", "gold", 0.0, 1.0, -2.5, 3.0, true, false, nil}
	return options[r.IntN(len(options))]
}

func randomVar(r *rand.Rand) any {
	paths := []any{"tier", "n", "flag", "email", "version", "missing", "targetingKey", "$flagd.flagKey", "user.name", "tier.x"}
	p := paths[r.IntN(len(paths))]
	if r.IntN(4) == 0 {
		return map[string]any{"var": []any{p, randomLiteral(r)}}
	}
	return map[string]any{"var": p}
}

func randomRule(r *rand.Rand, depth int) any {
	if depth > 3 || r.IntN(4) == 0 {
		if r.IntN(2) == 0 {
			return randomLiteral(r)
		}
		return randomVar(r)
	}
	sub := func() any { return randomRule(r, depth+1) }
	switch r.IntN(14) {
	case 0, 1:
		args := []any{sub(), sub(), sub()}
		if r.IntN(3) == 0 {
			args = append(args, sub(), sub())
		}
		return map[string]any{"if": args}
	case 2:
		ops := []string{"==", "!=", "===", "!==", "<", ">", "<=", ">="}
		return map[string]any{ops[r.IntN(len(ops))]: []any{sub(), sub()}}
	case 3:
		return map[string]any{"in": []any{sub(), []any{"a", 1.0, "gold", true}}}
	case 4:
		return map[string]any{"in": []any{sub(), sub()}}
	case 5:
		return map[string]any{[]string{"and", "or"}[r.IntN(2)]: []any{sub(), sub(), sub()}}
	case 6:
		if r.IntN(2) == 0 {
			return map[string]any{"!": sub()}
		}
		return map[string]any{"!!": []any{sub()}}
	case 7:
		return map[string]any{"cat": []any{sub(), sub()}}
	case 8:
		return map[string]any{[]string{opStartsWith, opEndsWith}[r.IntN(2)]: []any{sub(), sub()}}
	case 9:
		ops := []any{"=", "!=", "<", ">=", "^", "~", "?"}
		return map[string]any{opSemVer: []any{sub(), ops[r.IntN(len(ops))], "1.2.0"}}
	default:
		buckets := []any{[]any{"a", float64(r.IntN(3))}, []any{"b", float64(r.IntN(3))}}
		if r.IntN(3) == 0 {
			buckets = append(buckets, []any{true, 1.0})
		}
		switch r.IntN(3) {
		case 0:
			return map[string]any{opFractional: buckets}
		case 1:
			return map[string]any{opFractional: append([]any{sub()}, buckets...)}
		}
		return map[string]any{opFractional: append([]any{map[string]any{"cat": []any{sub(), sub()}}}, buckets...)}
	}
}

func randomContext(r *rand.Rand) EvalContext {
	ctx := EvalContext{Attributes: map[string]any{}}
	if r.IntN(2) == 0 {
		ctx.TargetingKey = fmt.Sprintf("user-%d", r.IntN(50))
	}
	for _, k := range randomAttrs {
		if r.IntN(4) != 0 {
			ctx.Attributes[k] = randomLiteral(r)
		}
	}
	if r.IntN(8) == 0 {
		ctx.Attributes["n"] = r.IntN(5)
	}
	if r.IntN(8) == 0 {
		ctx.Attributes["user"] = map[string]any{"name": randomLiteral(r)}
	}
	return ctx
}
