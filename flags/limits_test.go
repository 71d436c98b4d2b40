package flags

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Tests of the limits (H1, M10, L11): definitions that could allocate or
// loop without bound are refused when written, with a pointer to the rule,
// and evaluating one anyway stops within the budget.

func definitionWith(targeting string) string {
	return `{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": ` + targeting + `}`
}

// manyOperations is a rule of n operations, counting the "if" that
// condition puts it in: "or"s of at most a thousand "var"s.
func manyOperations(n int) string {
	vars := n - 4 // if, the outer or, two inner ors
	return `{"or": [{"or": [` + repeatJoin(`{"var": "a"}`, vars/2) + `]}, {"or": [` + repeatJoin(`{"var": "a"}`, vars-vars/2) + `]}]}`
}

func condition(rule string) string { return `{"if": [` + rule + `, "on", "off"]}` }

func repeatJoin(s string, n int) string { return strings.TrimSuffix(strings.Repeat(s+",", n), ",") }

// TestValidateRefusesUnboundedRules refuses each way of making evaluation
// expensive, the review's attacks first.
func TestValidateRefusesUnboundedRules(t *testing.T) {
	nested := `{"var": "a"}`
	for range 32 {
		nested = `{"!": ` + nested + `}`
	}
	tests := []struct {
		name, targeting string
		want            []string
	}{
		{"the review's reduce/cat rule doubling a string per element", doublingRule(34), []string{"#/targeting/if/0/==/0/reduce too_complex"}},
		{"the same rule over 20 elements", doublingRule(20), []string{"#/targeting/if/0/==/0/reduce too_complex"}},
		{"the review's three maps over 200-element lists", nestedMapsRule(3, 200), []string{"#/targeting/if/0/==/0/map/1/map too_complex"}},
		{"two maps over 200-element lists", nestedMapsRule(2, 200), []string{"#/targeting/if/0/==/0/map too_complex"}},
		{"a collection over a context list in one over another", condition(`{"some": [{"var": "a"}, {"some": [{"var": "b"}, {"==": [{"var": ""}, 1]}]}]}`),
			[]string{"#/targeting/if/0/some/1/some too_complex"}},
		{"four nested collections", condition(`{"all": [[1], {"all": [[1], {"all": [[1], {"all": [[1], true]}]}]}]}`),
			[]string{"#/targeting/if/0/all/1/all/1/all/1/all/1 too_deep"}},
		{"a reduce concatenating every element", condition(`{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "current"}]}, ""]}`),
			[]string{"#/targeting/if/0/reduce too_complex"}},
		{"a context string concatenated per element", condition(`{"map": [{"var": "items"}, {"cat": [{"var": "kind"}, "-x"]}]}`),
			[]string{"#/targeting/if/0/map too_complex"}},
		{"a merge of context lists per element", condition(`{"map": [{"var": "a"}, {"merge": [{"var": "b"}, {"var": "b"}]}]}`),
			[]string{"#/targeting/if/0/map/1/merge too_complex"}},
		{"twenty context strings in one cat", condition(`{"cat": [` + repeatJoin(`{"var": "a.x"}`, 20) + `]}`),
			[]string{"#/targeting/if/0/cat too_complex"}},
		{"a literal array of 1001 elements", condition(`{"in": [{"var": "id"}, [` + repeatJoin("1", MaxRuleArray+1) + `]]}`),
			[]string{"#/targeting/if/0/in/1 too_large"}},
		{"a literal string over 4 KiB", condition(`{"==": [{"var": "id"}, "` + strings.Repeat("x", MaxRuleString+1) + `"]}`),
			[]string{"#/targeting/if/0/==/1 too_large"}},
		{"33 levels", nested, []string{"#/targeting" + strings.Repeat("/!", 32) + " too_deep"}},
		{"2001 operations", condition(manyOperations(MaxRuleOperations + 1)), []string{"#/targeting too_large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codes(t, ValidateRaw("f", []byte(definitionWith(tt.targeting)), nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateRefusesDefinitionsOver64KiB caps a definition as written,
// wherever the bytes are (M10).
func TestValidateRefusesDefinitionsOver64KiB(t *testing.T) {
	big := `{"state": "ENABLED", "variants": {"on": {"blob": "` + strings.Repeat("x", MaxDefinitionBytes) + `"}}}`
	if diff := cmp.Diff([]string{"# too_large"}, codes(t, ValidateRaw("f", []byte(big), nil))); diff != "" {
		t.Errorf("ValidateRaw (-want +got):\n%s", diff)
	}
	file := `{"flags": {"big": ` + big + `, "small": {"state": "ENABLED", "variants": {"on": true}}}}`
	if diff := cmp.Diff([]string{"#/flags/big too_large"}, codes(t, ValidateFile([]byte(file)))); diff != "" {
		t.Errorf("ValidateFile (-want +got):\n%s", diff)
	}
}

// TestValidateAcceptsRulesWithinTheLimits keeps the limits from refusing
// what targeting needs, up to each limit exactly.
func TestValidateAcceptsRulesWithinTheLimits(t *testing.T) {
	nested := `{"var": "a"}`
	for range 31 {
		nested = `{"!": ` + nested + `}`
	}
	rules := []string{
		nested,
		condition(`{"in": [{"var": "id"}, [` + repeatJoin(`"user-1234"`, MaxRuleArray) + `]]}`),
		condition(`{"==": [{"var": "id"}, "` + strings.Repeat("x", MaxRuleString) + `"]}`),
		condition(manyOperations(MaxRuleOperations)),
		condition(`{"all": [[1], {"all": [[1], {"all": [[1], true]}]}]}`),
		condition(`{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}, {"var": "org"}, {"var": "team"}]}`),
	}
	for _, r := range boundedRules {
		rules = append(rules, condition(r))
	}
	for _, r := range rules {
		if err := ValidateRaw("f", []byte(definitionWith(r)), nil); err != nil {
			t.Errorf("%.200s: %v", r, err)
		}
	}
	if err := ValidateFile([]byte(exampleFlags)); err == nil || strings.Contains(err.Error(), "too_") {
		t.Errorf("flagd's examples: %v", err) // they hold deliberate errors, but none of size
	}
}

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
// every level (L11), in validation, import and evaluation alike, rather
// than hanging or running out of memory: the review's two references per
// level (deep, so the depth limit stops it first), and eight per level
// (shallow, so the size of the expansion does).
func TestRefExpansionIsBounded(t *testing.T) {
	for _, tt := range []struct{ levels, fanout int }{{20, 2}, {32, 2}, {6, 8}} {
		t.Run(fmt.Sprintf("%d levels of %d", tt.levels, tt.fanout), func(t *testing.T) {
			data := refChain(tt.levels, tt.fanout)
			got := codes(t, ValidateFile(data))
			if len(got) != 1 || (got[0] != "#/flags/f/targeting/$ref too_large" && got[0] != "#/flags/f/targeting/$ref too_deep") {
				t.Errorf("ValidateFile = %v, want a size or depth error at the $ref", got)
			}
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
