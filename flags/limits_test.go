package flags

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Tests of the limits (H1, M10, L11): evaluating a rule that would
// allocate or loop without bound stops within the budget, and $ref
// expansion is bounded.

func definitionWith(targeting string) string {
	return `{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": ` + targeting + `}`
}

func condition(rule string) string { return `{"if": [` + rule + `, "on", "off"]}` }

func repeatJoin(s string, n int) string { return strings.TrimSuffix(strings.Repeat(s+",", n), ",") }

// TestSnapshotStopsRulesOverTheBudget evaluates the review's rules without
// validation, as a flag stored before the limits would be: each stops with
// the default variant and reason ERROR rather than exhausting the process.
func TestSnapshotStopsRulesOverTheBudget(t *testing.T) {
	for name, rule := range map[string]string{
		"doubling over 24 elements":            doublingRule(24),
		"doubling over 34 elements":            doublingRule(34),
		"three maps over 200-element lists":    nestedMapsRule(3, 200),
		"a context string per element":         condition(`{"map": [{"var": "items"}, {"cat": [{"var": "kind"}, "-x"]}]}`),
		"a list rebuilt per element and level": condition(`{"map": [{"var": "items"}, {"map": [{"var": "items"}, {"merge": [{"var": "items"}]}]}]}`),
	} {
		t.Run(name, func(t *testing.T) {
			var f Flag
			if err := json.Unmarshal([]byte(definitionWith(rule)), &f); err != nil {
				t.Fatal(err)
			}
			s := newSnapshot(File{Flags: map[string]Flag{"f": f}}, clock)
			before := BudgetExceeded()
			r := s.Evaluate("f", hostileContext())
			got := fmt.Sprint(r.Value, r.Variant, r.Reason, r.ErrorCode)
			if want := fmt.Sprint(false, "off", ReasonError, ErrorGeneral); got != want {
				t.Errorf("got %s, want %s (%s)", got, want, r.ErrorMessage)
			}
			if BudgetExceeded() != before+1 {
				t.Errorf("BudgetExceeded went from %d to %d", before, BudgetExceeded())
			}
		})
	}
}

// hostileContext is within the OFREP limits.
func hostileContext() EvalContext {
	items := make([]any, MaxContextArray)
	for i := range items {
		items[i] = "item"
	}
	return EvalContext{TargetingKey: "u", Attributes: map[string]any{"items": items, "kind": strings.Repeat("k", 48<<10)}}
}

// refChain is a file whose flag refers to an evaluator that refers to the
// next one fanout times, levels deep, in the positions that give the
// flag's result.
func refChain(levels, fanout int) []byte {
	evaluators := map[string]any{fmt.Sprintf("e%d", levels): map[string]any{"if": []any{true, "on", "off"}}}
	for i := range levels {
		branches := []any{map[string]any{"var": "x"}}
		for range fanout {
			branches = append(branches, map[string]any{"$ref": fmt.Sprintf("e%d", i+1)}, map[string]any{"var": "y"})
		}
		evaluators[fmt.Sprintf("e%d", i)] = map[string]any{"if": branches}
	}
	file := map[string]any{
		"flags": map[string]any{"f": map[string]any{"state": "ENABLED", "variants": map[string]any{"on": true, "off": false},
			"defaultVariant": "off", "targeting": map[string]any{"$ref": "e0"}}},
		"$evaluators": evaluators,
	}
	b, _ := json.Marshal(file)
	return b
}

// TestRefExpansionIsBounded refuses a file whose $refs multiply the rule at
// every level (L11), in import and evaluation alike, rather than hanging
// or running out of memory, and validates it in bounded time: the review's
// two references per level, and eight per level.
func TestRefExpansionIsBounded(t *testing.T) {
	for _, tt := range []struct{ levels, fanout int }{{20, 2}, {32, 2}, {6, 8}} {
		t.Run(fmt.Sprintf("%d levels of %d", tt.levels, tt.fanout), func(t *testing.T) {
			data := refChain(tt.levels, tt.fanout)
			_ = ValidateFile(data) // it used to check the variants of 2^levels copies
			f, err := ParseFile(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Inline(); err == nil {
				t.Error("Inline expanded the file")
			}
			if r := NewSnapshot(f).Evaluate("f", EvalContext{}); r.ErrorCode != ErrorParse {
				t.Errorf("Evaluate = %+v, want PARSE_ERROR", r)
			}
		})
	}
}

// attackRules are the review's: a string that doubles with each element,
// and maps over 200-element lists nested three deep.
func attackRules() []string {
	return []string{doublingRule(34), nestedMapsRule(3, 200), nestedMapsRule(2, 200)}
}

func doublingRule(n int) string {
	ones := strings.TrimSuffix(strings.Repeat("1,", n), ",")
	return `{"if": [{"==": [{"reduce": [[` + ones + `], {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "ab"]}, "x"]}, "on", "off"]}`
}

func nestedMapsRule(levels, n int) string {
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]"
	body := `1`
	for range levels {
		body = `{"map": [` + list + `, ` + body + `]}`
	}
	return `{"if": [{"==": [` + body + `, "x"]}, "on", "off"]}`
}
