package flags

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Tests of the limits (H1, M10, L11): evaluating a rule that would
// allocate or loop without bound stops within the budget.

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

// hostileContext is a large but ordinary context.
func hostileContext() EvalContext {
	items := make([]any, 1000)
	for i := range items {
		items[i] = "item"
	}
	return EvalContext{TargetingKey: "u", Attributes: map[string]any{"items": items, "kind": strings.Repeat("k", 48<<10)}}
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
