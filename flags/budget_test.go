package flags

import (
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The estimator's promise: a rule it bounds within the budget stays within
// that bound, and so within the budget, for any context within the OFREP
// limits. These tests hold it to that with contexts built to make each
// rule as expensive as those limits allow.

// meter runs the machine on a rule, as the library path does.
func meter(t testing.TB, rule any, ctx EvalContext) machine {
	t.Helper()
	data, err := Prepare(ctx).dataFor("flag", fixedNow)
	if err != nil {
		t.Fatalf("context: %v", err)
	}
	var m machine
	if _, _, _, err := m.evaluate(rule, data); err == errOverBudget {
		t.Fatalf("rule %s went over the budget: %d steps, %d bytes", compact(rule), m.steps, m.bytes)
	}
	return m
}

func compact(rule any) string {
	b, _ := json.Marshal(rule)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// checkBound evaluates an accepted rule with hostile contexts and fails if
// the machine does more than the estimator allowed.
func checkBound(t testing.TB, rule any) {
	t.Helper()
	est := (&estimator{}).estimateRule(rule, "#")
	if est.cost.over() {
		t.Fatalf("accepted rule %s has a bound over the budget: %+v", compact(rule), est.cost)
	}
	for _, ctx := range hostileContexts(rule) {
		m := meter(t, rule, ctx)
		if int64(m.steps) > est.cost.steps || int64(m.bytes) > est.cost.bytes {
			t.Fatalf("rule %s took %d steps and %d bytes, over its bound %+v", compact(rule), m.steps, m.bytes, est.cost)
		}
	}
}

// hostileContexts builds contexts within the OFREP limits that give every
// attribute and property the rule names the largest values they may have:
// long strings, long lists of strings, numbers or objects, deep objects.
func hostileContexts(rule any) []EvalContext {
	names := propertyNames(rule)
	key := strings.Join(names, "\x00")
	if cached, ok := hostileCache.Load(key); ok {
		return cached.([]EvalContext)
	}
	out := buildHostileContexts(names)
	if hostileCacheSize.Add(1) < 512 { // fuzzed names are endless
		hostileCache.Store(key, out)
	}
	return out
}

// hostileCache keeps the contexts for a set of names: building them is
// most of the fuzz target's time.
var (
	hostileCache     sync.Map
	hostileCacheSize atomic.Int32
)

func buildHostileContexts(names []string) []EvalContext {
	var out []EvalContext
	for _, fill := range []func(n int, names []string) any{longString, stringList, numberList, objectList, nestedObjectList, deepObject} {
		for size := MaxContextBytes; size > 16; size /= 2 {
			ctx := EvalContext{TargetingKey: longString(size/8, nil).(string), Attributes: map[string]any{}}
			for _, name := range names {
				ctx.Attributes[name] = fill(size/(len(names)+1), names)
			}
			if withinOFREPLimits(ctx) {
				out = append(out, ctx)
				break
			}
		}
	}
	return out
}

func withinOFREPLimits(ctx EvalContext) bool {
	attrs := maps2(ctx.Attributes, "targetingKey", ctx.TargetingKey)
	b, err := json.Marshal(attrs)
	return err == nil && len(b) <= MaxContextBytes && CheckContext(attrs) == nil
}

func maps2(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}

func longString(n int, _ []string) any { return strings.Repeat("x", max(n, 1)) }

func stringList(n int, _ []string) any {
	list := make([]any, MaxContextArray)
	for i := range list {
		list[i] = strings.Repeat("y", max(n/MaxContextArray-3, 1))
	}
	return list
}

func numberList(int, []string) any {
	list := make([]any, MaxContextArray)
	for i := range list {
		list[i] = 5e-324 // the longest text a number formats to
	}
	return list
}

// objectList holds objects with every name the rule reads, and one more
// key, so that no element looks like an operation to JSONLogic.
func objectList(n int, names []string) any {
	count := min(MaxContextArray, max(n/(8*(len(names)+1)), 1))
	list := make([]any, count)
	for i := range list {
		obj := map[string]any{"_": 0.0}
		for _, name := range names {
			obj[name] = "z"
		}
		list[i] = obj
	}
	return list
}

// nestedObjectList holds objects whose properties are lists of lists, so
// that values taken from elements are as large as the context allows.
func nestedObjectList(n int, names []string) any {
	count := min(MaxContextArray, max(n/(64*(len(names)+1)), 1))
	list := make([]any, count)
	for i := range list {
		obj := map[string]any{"_": 0.0}
		for _, name := range names {
			obj[name] = []any{[]any{"q", 1.0, []any{}}, "r", []any{[]any{}}}
		}
		list[i] = obj
	}
	return list
}

func deepObject(n int, names []string) any {
	var v any = longString(n/2, nil)
	for range MaxContextDepth - 2 {
		obj := map[string]any{"_": 0.0}
		for _, name := range names {
			obj[name] = v
		}
		v = obj
		if len(names) > 1 {
			break // the context would grow with every level
		}
	}
	return v
}

// propertyNames lists the parts of every literal var path in a rule, but
// "var": a context object with a "var" key is logic to JSONLogic, which the
// estimator does not bound.
func propertyNames(rule any) []string {
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if p, ok := literalPath(x["var"]); ok {
				for _, part := range strings.Split(p, ".") {
					if part != "" && part != "var" && !strings.HasPrefix(part, "$") && part != keyTargetingKey {
						seen[part] = true
					}
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(rule)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > MaxContextAttributes-1 {
		names = names[:MaxContextAttributes-1]
	}
	return names
}

// boundedRules are accepted rules near the budget.
var boundedRules = []string{
	`{"some": [{"var": "groups"}, {"==": [{"var": ""}, "admin"]}]}`,
	`{"some": [{"var": "users"}, {"==": [{"var": "role"}, "admin"]}]}`,
	`{"all": [{"var": "users"}, {"in": [{"var": "role"}, {"var": "roles"}]}]}`,
	`{"reduce": [{"var": "scores"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]}`,
	`{"filter": [{"var": "items"}, {"in": [{"var": "kind"}, ["a", "b", "c"]]}]}`,
	`{"map": [{"var": "items"}, {"cat": [{"var": ""}, "-x"]}]}`,
	`{"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}, {"var": "org"}]}, ["a", 50], ["b", 50]]}`,
	`{"if": [{"in": [{"var": "email"}, {"var": "allow"}]}, "a", {"sem_ver": [{"var": "v"}, ">=", "1.2.0"]}, "b", null]}`,
	`{"map": [[1, 2, 3, 4, 5], {"map": [[1, 2, 3], {"+": [{"var": ""}, 1]}]}]}`,
	`{"merge": [{"var": "a"}, {"var": "b"}, [1, 2]]}`,
	`{"missing": ["a", "b.c", "d"]}`,
	`{"substr": [{"var": "email"}, 0, 3]}`,
	`{"all": [{"var": "items"}, {"!!": [{"var": "kind"}]}]}`,
	`{"none": [{"var": "items"}, {"starts_with": [{"var": "kind"}, "x"]}]}`,
	`{"in": ["x", {"cat": [{"var": "a"}, {"var": "b"}]}]}`,
}

// TestEstimateBoundsTheMachine checks the bound of each rule, and that the
// machine's byte count follows what it really allocates.
func TestEstimateBoundsTheMachine(t *testing.T) {
	for _, src := range boundedRules {
		rule, err := decodeRule(json.RawMessage(src))
		if err != nil {
			t.Fatal(err)
		}
		checkBound(t, rule)
		for _, ctx := range hostileContexts(rule) {
			data, _ := Prepare(ctx).dataFor("flag", fixedNow)
			allocated, m := allocatedBy(func(m *machine) { _, _, _, _ = m.evaluate(rule, data) })
			// Each step may box a value or start a small slice besides what
			// the meter counts.
			if limit := uint64(2*m.bytes + 256*m.steps + 64<<10); allocated > limit {
				t.Errorf("rule %s allocated %d bytes, more than its %d counted bytes and %d steps allow", src, allocated, m.bytes, m.steps)
			}
		}
	}
}

func allocatedBy(f func(*machine)) (uint64, machine) {
	var before, after runtime.MemStats
	var m machine
	runtime.GC()
	runtime.ReadMemStats(&before)
	f(&m)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, m
}

// FuzzRuleBudget generates rules, and for each one validation accepts,
// checks that no hostile context makes the machine go over the rule's
// bound (and so over the budget), and that evaluation does not panic. The
// first input is a targeting rule as JSON; the second seeds a generator
// that favours what costs: collections, long lists, string building.
func FuzzRuleBudget(f *testing.F) {
	for _, src := range append(append([]string{}, attackRules()...), boundedRules...) {
		f.Add([]byte(src), uint64(0))
	}
	for seed := range uint64(8) {
		f.Add([]byte(`{}`), seed)
	}
	f.Fuzz(func(t *testing.T, targeting []byte, seed uint64) {
		fuzzBudget(t, targeting)
		generated, _ := json.Marshal(costlyRule(rand.New(rand.NewPCG(seed, seed>>32)), 0))
		fuzzBudget(t, generated)
	})
}

func fuzzBudget(t *testing.T, targeting []byte) {
	def := `{"state": "ENABLED", "variants": {"a": "A", "b": "B", "true": "T", "false": "F"}, "defaultVariant": "b", "targeting": ` + string(targeting) + `}`
	if !json.Valid([]byte(def)) || ValidateRaw("f", []byte(def), nil) != nil {
		return
	}
	rule, err := decodeRule(targeting)
	if err != nil {
		t.Fatal(err)
	}
	checkBound(t, rule)
	s := NewSnapshot(File{Flags: map[string]Flag{"f": {State: StateEnabled, DefaultVariant: "b",
		Variants: map[string]json.RawMessage{"a": []byte(`"A"`), "b": []byte(`"B"`)}, Targeting: targeting}}})
	for _, ctx := range hostileContexts(rule)[:1] {
		if r := s.Evaluate("f", ctx); r.Reason == ReasonError && r.ErrorCode == ErrorGeneral && r.Value != nil {
			t.Fatalf("accepted rule %s went over the budget: %+v", targeting, r)
		}
	}
}

// costlyRule generates rules from every operator, favouring collections
// over long lists and context lists, nested bodies, and string building.
func costlyRule(r *rand.Rand, depth int) any {
	if depth > 4 || r.IntN(6) == 0 {
		return costlyLeaf(r)
	}
	sub := func() any { return costlyRule(r, depth+1) }
	switch r.IntN(8) {
	case 0, 1, 2:
		op := []string{"map", "filter", "all", "none", "some", "reduce"}[r.IntN(6)]
		args := []any{costlySubject(r), sub()}
		if op == "reduce" {
			args = append(args, []any{0.0, "", true}[r.IntN(3)])
		}
		return map[string]any{op: args}
	case 3:
		return map[string]any{[]string{"cat", "merge", "+", "in", "or", "missing"}[r.IntN(6)]: []any{sub(), sub(), sub()}}
	case 4:
		return map[string]any{"substr": []any{sub(), float64(r.IntN(5) - 2)}}
	case 5:
		return map[string]any{"in": []any{sub(), costlySubject(r)}}
	}
	return anyRule(r, depth+1)
}

func costlyLeaf(r *rand.Rand) any {
	names := []string{"", "accumulator", "current", "a", "b", "a.b", "list", "list.0"}
	switch r.IntN(3) {
	case 0:
		return map[string]any{"var": names[r.IntN(len(names))]}
	case 1:
		return costlySubject(r)
	}
	return anyLeaf(r)
}

func costlySubject(r *rand.Rand) any {
	if r.IntN(2) == 0 {
		return map[string]any{"var": []string{"list", "a", "b"}[r.IntN(3)]}
	}
	n := []int{0, 3, 200, 1000}[r.IntN(4)]
	list := make([]any, n)
	for i := range list {
		list[i] = float64(i)
	}
	return list
}
