package flags

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The machine must give the library's answer on every rule the library can
// evaluate cheaply: the same values, the same errors, quirks included.

// machineRules cover each operator, the library's quirks, and its panics.
var machineRules = []string{
	`{"map": [{"var": "list"}, {"cat": [{"var": ""}, "!"]}]}`,
	`{"filter": [[1, 2, 3, "4", null], {">": [{"var": ""}, 1]}]}`,
	`{"reduce": [{"var": "nums"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]}`,
	`{"reduce": [[true, false], {"or": [{"var": "accumulator"}, {"var": "current"}]}, false]}`,
	`{"reduce": [["a", "b"], {"var": "current"}, "s"]}`,
	`{"reduce": [[1], {"var": "current"}, null]}`,
	`{"reduce": ["x", 1, 0]}`,
	`{"all": [{"var": "nums"}, {">": [{"var": ""}, 0]}]}`,
	`{"all": [[{"x": 1}], {"var": "x"}]}`,
	`{"some": [{"var": "users"}, {"==": [{"var": "role"}, {"var": "tier"}]}]}`,
	`{"none": [{"var": "users"}, {"==": [{"var": "role"}, "admin"]}]}`,
	`{"some": [[], true]}`,
	`{"all": ["abc", true]}`,
	`{"map": [{"var": "users"}, {"var": "role"}]}`,
	`{"map": [[1, 2], {"var": "list"}]}`,
	`{"merge": [1, [2, [3, [4]]], null, {"var": "list"}]}`,
	`{"merge": "x"}`,
	`{"missing": ["tier", "user.name", "nope", 1]}`,
	`{"missing": "tier"}`,
	`{"missing_some": [1, ["tier", "nope"]]}`,
	`{"missing_some": [3, ["tier", "nope"]]}`,
	`{"substr": [{"var": "tier"}, 1]}`,
	`{"substr": ["héllo wörld", -5, -1]}`,
	`{"substr": ["abc", 5]}`,
	`{"substr": ["abc", 1, -5]}`,
	`{"cat": ["a", 1.5, null, " b "]}`,
	`{"cat": "plain"}`,
	`{"cat": [true]}`,
	`{"+": ["1", 2, "x"]}`,
	`{"-": [10, "3", 2]}`,
	`{"-": [5]}`,
	`{"-": []}`,
	`{"*": [2, "3"]}`,
	`{"/": [1, 0]}`,
	`{"%": [7, 3]}`,
	`{"abs": -2}`,
	`{"max": [1, "5", 3]}`,
	`{"min": []}`,
	`{"max": {"var": "nums"}}`,
	`{"max": 3}`,
	`{"?:": [true, "a", "b"]}`,
	`{"?:": [1, "a", "b"]}`,
	`{"<": [1, 2, 3]}`,
	`{"<=": [1, 1, "2"]}`,
	`{">": ["b", "a"]}`,
	`{">=": [2, "x"]}`,
	`{"<": [1]}`,
	`{"==": [1, 2, 3]}`,
	`{"in": [2, [1, [2, 5]]]}`,
	`{"in": ["b", [["a", "c"]]]}`,
	`{"in": [{"var": "user"}, [{"var": "user"}]]}`,
	`{"in_sorted": ["b", ["a", "b", "c"]]}`,
	`{"in_sorted": ["bb", ["a", ["b", "c"], "d"]]}`,
	`{"set": [{"var": "user"}, "name", {"cat": ["x", "y"]}]}`,
	`{"set": [{"var": "obj"}, "k", 1]}`,
	`{"set": ["notmap", "k", 1]}`,
	`{"if": {"var": "list"}}`,
	`{"if": [{"var": "user"}, "a", "b"]}`,
	`{"if": [true, [{"var": "tier"}, 1], "b"]}`,
	`{"if": [false, "a"]}`,
	`{"if": []}`,
	`{"if": "x"}`,
	`{"!!": [[]]}`,
	`{"and": [1, [], 2]}`,
	`{"and": [-1, -2]}`,
	`{"or": [0, "", "x"]}`,
	`{"var": 1}`,
	`{"var": ["list.5", "dflt"]}`,
	`{"var": ["list.-1"]}`,
	`{"var": "list.x"}`,
	`{"var": "tier.length"}`,
	`{"var": []}`,
	`{"var": [{"cat": ["ti", "er"]}]}`,
	`{"nope": [1, 2, 3]}`,
	`{"a": 1, "b": 2}`,
	`{}`,
	`{"fractional": {"var": "list"}}`,
	`{"fractional": [{"var": "tier"}, [{"cat": ["a"]}, {"+": [1, 1]}], ["b", {"var": "nope"}]]}`,
	`{"if": [{"sem_ver": ["x", "=", "1"]}, "a", {"fractional": [["a", 1]]}]}`,
	`{"if": [{"some": [[1], {"starts_with": [1, "a"]}]}, "a", "b"]}`,
	`{"map": [{"var": "users"}, {"fractional": [["a", 1], ["b", 1]]}]}`,
}

// machineContexts add lists and objects to the fast path's contexts.
var machineContexts = append(contexts[:len(contexts):len(contexts)],
	EvalContext{TargetingKey: "u", Attributes: attrs(
		"list", []any{"x", 2.0, nil, []any{1.0}}, "nums", []any{3.0, 1.0, 2.0}, "tier", "gold",
		"users", []any{map[string]any{"role": "admin", "n": 1.0}, map[string]any{"role": "gold", "n": 2.0}, "str"},
		"obj", map[string]any{"a": nil, "b": []any{1.0, nil}, "c": map[string]any{"d": "e"}},
		"user", map[string]any{"name": "ann", "age": 30.0})},
	EvalContext{Attributes: attrs("list", []any{}, "nums", []any{"1", "x"}, "users", []any{}, "tier", 3.0)},
)

// TestMachineMatchesLibraryOnHandwrittenRules runs every rule on both.
func TestMachineMatchesLibraryOnHandwrittenRules(t *testing.T) {
	rules := append(append([]string{}, handRules...), machineRules...)
	s := libraryOnly(newSnapshot(flagsFor(rules), clock))
	for i, rule := range rules {
		key := fmt.Sprintf("flag-%d", i)
		for j, ctx := range machineContexts {
			want, got := withoutRecorder(oracle(s, key, ctx)), s.Evaluate(key, ctx)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rule %s, context %d: library vs machine (-want +got):\n%s", rule, j, diff)
			}
		}
	}
}

// TestMachineMatchesLibraryOnRandomRules generates rules from every
// operator and compares the two on random contexts.
func TestMachineMatchesLibraryOnRandomRules(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var rules []string
	for range 3000 {
		b, _ := json.Marshal(anyRule(r, 0))
		rules = append(rules, string(b))
	}
	s := libraryOnly(newSnapshot(flagsFor(rules), clock))
	for i, rule := range rules {
		key := fmt.Sprintf("flag-%d", i)
		for range 4 {
			ctx := anyContext(r)
			want, got := withoutRecorder(oracle(s, key, ctx)), s.Evaluate(key, ctx)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("rule %s, context %+v: library vs machine (-want +got):\n%s", rule, ctx, diff)
			}
		}
	}
}

// withoutRecorder removes the oracle's operator recorder from an error
// message: it sat in the library's data object, where a rule reading the
// whole object saw it.
func withoutRecorder(r Result) Result {
	r.ErrorMessage = strings.NewReplacer(keyRecorder+":{},", "", ","+keyRecorder+":{}", "").Replace(r.ErrorMessage)
	return r
}

// anyRule extends randomRule with every operator the library has.
func anyRule(r *rand.Rand, depth int) any {
	if depth > 3 || r.IntN(5) == 0 {
		return anyLeaf(r)
	}
	sub := func() any { return anyRule(r, depth+1) }
	switch r.IntN(12) {
	case 0, 1:
		return collectionRule(r, depth)
	case 2:
		ops := []string{"+", "-", "*", "/", "%", "max", "min", "merge", "cat", "and", "or", "?:", "<", "<=", "==", "!=="}
		args := make([]any, r.IntN(4))
		for i := range args {
			args[i] = sub()
		}
		return map[string]any{ops[r.IntN(len(ops))]: args}
	case 3:
		return map[string]any{[]string{"abs", "!", "!!", "-", "max", "merge", "missing", "cat", "if"}[r.IntN(9)]: sub()}
	case 4:
		return map[string]any{"substr": []any{sub(), float64(r.IntN(7) - 3), float64(r.IntN(7) - 3)}[:2+r.IntN(2)]}
	case 5:
		return map[string]any{"missing_some": []any{float64(r.IntN(3)), []any{"tier", "nope", "user.name"}}}
	case 6:
		return map[string]any{"set": []any{anyVar(r), "k", sub()}}
	case 7:
		return map[string]any{[]string{"in", "in_sorted"}[r.IntN(2)]: []any{sub(), []any{"a", []any{"b", "d"}, 1.0, "x"}}}
	}
	return randomRule(r, depth+1)
}

func collectionRule(r *rand.Rand, depth int) any {
	subjects := []any{anyVar(r), []any{1.0, "2", nil, "a"}, []any{}, map[string]any{"var": "users"}, "str"}
	subject := subjects[r.IntN(len(subjects))]
	bodies := []any{
		map[string]any{"var": ""}, map[string]any{"var": "role"},
		map[string]any{">": []any{map[string]any{"var": ""}, 1.0}},
		map[string]any{"cat": []any{map[string]any{"var": "role"}, "!"}},
		anyRule(r, depth+2),
	}
	body := bodies[r.IntN(len(bodies))]
	op := []string{"map", "filter", "all", "none", "some", "reduce"}[r.IntN(6)]
	if op == "reduce" {
		initial := []any{0.0, "", true, nil}[r.IntN(4)]
		body = []any{
			map[string]any{"+": []any{map[string]any{"var": "accumulator"}, map[string]any{"var": "current"}}},
			map[string]any{"var": "current"}, body,
		}[r.IntN(3)]
		return map[string]any{op: []any{subject, body, initial}}
	}
	return map[string]any{op: []any{subject, body}}
}

func anyLeaf(r *rand.Rand) any {
	switch r.IntN(5) {
	case 0:
		return anyVar(r)
	case 1:
		return []any{randomLiteral(r), randomLiteral(r)}
	}
	return randomRule(r, 4)
}

func anyVar(r *rand.Rand) any {
	paths := []any{"list", "nums", "users", "user", "obj", "tier", "n", "list.1", "users.0.role", 1.0, "missing"}
	return map[string]any{"var": paths[r.IntN(len(paths))]}
}

func anyContext(r *rand.Rand) EvalContext {
	ctx := randomContext(r)
	extra := machineContexts[len(machineContexts)-2+r.IntN(2)]
	for k, v := range extra.Attributes {
		if r.IntN(2) == 0 {
			ctx.Attributes[k] = v
		}
	}
	if r.IntN(4) == 0 {
		ctx.Attributes["tier"] = strings.Repeat("ab", r.IntN(3))
	}
	return ctx
}
