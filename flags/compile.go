package flags

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxRefDepth bounds $ref expansion so that evaluators referring to each
// other in a cycle stop expanding instead of looping.
const maxRefDepth = 32

// decodeRule parses a JSONLogic rule the way the library does (numbers as
// float64).
func decodeRule(raw json.RawMessage) (any, error) {
	var rule any
	if err := json.Unmarshal(raw, &rule); err != nil {
		return nil, err
	}
	return rule, nil
}

// decodeEvaluators parses the $evaluators section. An evaluator that is not
// valid JSON is left out, so references to it stay unresolved and fail at
// evaluation time with PARSE_ERROR, as an unknown reference does in flagd.
func decodeEvaluators(raw map[string]json.RawMessage) map[string]any {
	out := make(map[string]any, len(raw))
	for name, r := range raw {
		if v, err := decodeRule(r); err == nil {
			out[name] = v
		}
	}
	return out
}

// resolveRefs replaces every {"$ref": "name"} with the named evaluator, the
// way flagd's text substitution does: the evaluator's keys are spliced into
// the object that held "$ref". Evaluators may refer to other evaluators.
// References to unknown evaluators are left in place. Expansion stops with
// errRefBlowUp past maxRefNodes values, since two references per level
// would otherwise double the rule at every level (L11).
func resolveRefs(rule any, evaluators map[string]any) (any, error) {
	x := expander{evaluators: evaluators, budget: maxRefNodes}
	out := x.expand(rule, 0)
	if x.budget < 0 {
		return nil, errRefBlowUp
	}
	return out, nil
}

var errRefBlowUp = fmt.Errorf("targeting has more than %d values once $ref is expanded", maxRefNodes)

// expander expands $ref within a budget of values.
type expander struct {
	evaluators map[string]any
	budget     int
}

func (x *expander) expand(v any, depth int) any {
	if x.budget--; x.budget < 0 {
		return nil
	}
	switch e := v.(type) {
	case []any:
		out := make([]any, len(e))
		for i, el := range e {
			out[i] = x.expand(el, depth)
		}
		return out
	case map[string]any:
		return x.expandObject(e, depth)
	}
	return v
}

func (x *expander) expandObject(obj map[string]any, depth int) any {
	out := make(map[string]any, len(obj))
	for k, e := range obj {
		out[k] = x.expand(e, depth)
	}
	name, isRef := obj["$ref"].(string)
	body, known := x.evaluators[name].(map[string]any)
	if !isRef || !known || len(body) == 0 || depth >= maxRefDepth {
		return out
	}
	delete(out, "$ref")
	if expanded, ok := x.expand(body, depth+1).(map[string]any); ok {
		maps.Copy(out, expanded)
	}
	return out
}

// withinBudget reports whether the estimator bounds a rule within the
// evaluation budget for contexts within the OFREP limits.
func withinBudget(rule any) bool {
	e := estimator{}
	return !e.estimateRule(rule, "#").cost.over()
}

// compileFast turns a rule into a fast-path node tree, or reports that the
// rule uses something only the machine evaluates.
func compileFast(rule any) (*node, bool) {
	n, ok := compileNode(rule)
	if ok {
		markResultPath(n)
	}
	return n, ok
}

// markResultPath flags the "if" nodes whose value is the targeting result.
func markResultPath(n *node) {
	if n.kind != kIf {
		return
	}
	n.result = true
	last := len(n.args) - 1
	for i := 1; i <= last; i += 2 {
		markResultPath(n.args[i])
	}
	if len(n.args)%2 == 1 {
		markResultPath(n.args[last])
	}
}

func compileNode(v any) (*node, bool) {
	switch x := v.(type) {
	case nil, string, float64, bool:
		return &node{kind: kLit, lit: x}, true
	case map[string]any:
		if len(x) != 1 {
			return nil, false // the library returns such objects as values
		}
		for op, arg := range x {
			return compileOp(op, arg)
		}
	}
	return nil, false
}

var compareKinds = map[string]nodeKind{
	"==": kEq, "!=": kNe, "===": kStrictEq, "!==": kStrictNe,
	"<": kLt, ">": kGt, "<=": kLe, ">=": kGe,
}

var customOps = map[string]bool{opStartsWith: true, opEndsWith: true, opSemVer: true}

func compileOp(op string, arg any) (*node, bool) {
	switch op {
	case "var":
		return compileVar(arg)
	case "if":
		return compileList(kIf, arg, 0, 8)
	case "cat":
		return compileList(kCat, arg, 0, 8)
	case "and":
		return compileList(kAnd, arg, 0, 8)
	case "or":
		return compileList(kOr, arg, 0, 8)
	case "in":
		return compileIn(arg)
	case "!":
		return compileNot(kNot, arg)
	case "!!":
		return compileNot(kNotNot, arg)
	case opFractional:
		return compileFractional(arg)
	}
	if kind, ok := compareKinds[op]; ok {
		return compileList(kind, arg, 2, 2)
	}
	if customOps[op] {
		n, ok := compileList(kOp, arg, 0, 4)
		if ok {
			n.opName = op
		}
		return n, ok
	}
	return nil, false
}

// compileList compiles an operator whose argument is an array of operands,
// with at least min and (when max >= 0) at most max of them.
func compileList(kind nodeKind, arg any, min, max int) (*node, bool) {
	items, ok := arg.([]any)
	if !ok || len(items) < min || (max >= 0 && len(items) > max) {
		return nil, false
	}
	n := &node{kind: kind}
	for _, it := range items {
		c, ok := compileNode(it)
		if !ok {
			return nil, false
		}
		n.args = append(n.args, c)
	}
	return n, true
}

func compileVar(arg any) (*node, bool) {
	var path string
	var def any
	switch x := arg.(type) {
	case string:
		path = x
	case float64:
		path = strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		if len(x) == 0 {
			return nil, false
		}
		p, ok := x[0].(string)
		if !ok {
			return nil, false
		}
		path = p
		if len(x) == 2 {
			def = x[1]
		}
	default:
		return nil, false
	}
	switch def.(type) {
	case nil, string, float64, bool:
	default:
		return nil, false
	}
	if path == "" {
		return nil, false // the whole data object
	}
	if strings.ContainsRune(path, utf8.RuneError) {
		return nil, false // may match a key whose invalid UTF-8 JSON replaced
	}
	n := &node{kind: kVar, def: def}
	for _, p := range strings.Split(path, ".") {
		if p != "" {
			n.path = append(n.path, p)
		}
	}
	return n, true
}

func compileNot(kind nodeKind, arg any) (*node, bool) {
	if items, ok := arg.([]any); ok {
		if len(items) != 1 {
			return nil, false
		}
		c, ok := compileNode(items[0])
		return &node{kind: kind, args: []*node{c}}, ok
	}
	c, ok := compileNode(arg)
	return &node{kind: kind, args: []*node{c}, bare: true}, ok
}

func compileIn(arg any) (*node, bool) {
	items, ok := arg.([]any)
	if !ok || len(items) != 2 {
		return nil, false
	}
	needle, ok := compileNode(items[0])
	if !ok {
		return nil, false
	}
	hay, ok := compileHaystack(items[1])
	if !ok {
		return nil, false
	}
	return &node{kind: kIn, args: []*node{needle, hay}}, true
}

func compileHaystack(v any) (*node, bool) {
	list, isList := v.([]any)
	if !isList {
		return compileNode(v)
	}
	for _, el := range list {
		switch el.(type) {
		case string, float64, bool:
		default:
			return nil, false
		}
	}
	return &node{kind: kList, list: list}, true
}

// compileFractional handles literal buckets; computed variant names or
// weights go to the machine.
func compileFractional(arg any) (*node, bool) {
	items, ok := arg.([]any)
	if !ok || len(items) == 0 {
		return nil, false
	}
	n := &node{kind: kFractional}
	buckets := items
	if _, isBucket := items[0].([]any); !isBucket {
		b, ok := compileNode(items[0])
		if !ok {
			return nil, false
		}
		if b.kind == kLit {
			if _, isString := b.lit.(string); !isString && b.lit != nil {
				return nil, false
			}
		}
		if b.kind != kLit || b.lit != nil {
			n.bucket = b
		}
		n.dropNull = true
		buckets = items[1:]
	}
	for _, b := range buckets {
		pair, ok := b.([]any)
		if !ok {
			continue // parseDistribution reports it
		}
		for _, part := range pair {
			if _, isRule := part.(map[string]any); isRule {
				return nil, false
			}
		}
	}
	n.dist, ok = parseDistribution(buckets, nil)
	n.distBroken = !ok
	return n, true
}

// knownOperators are the operators diegoholiveira/jsonlogic v3.5.1 implements
// plus flagd's. The library quietly treats an unknown operator applied to
// one value as a truth test; flagd's newer library fails instead, so a rule
// naming anything else is refused up front (PARSE_ERROR at evaluation,
// "invalid" in validation).
var knownOperators = map[string]bool{
	"var": true, "missing": true, "missing_some": true,
	"if": true, "?:": true, "==": true, "===": true, "!=": true, "!==": true,
	"!": true, "!!": true, "or": true, "and": true,
	">": true, ">=": true, "<": true, "<=": true,
	"max": true, "min": true, "+": true, "-": true, "*": true, "/": true, "%": true, "abs": true,
	"map": true, "reduce": true, "filter": true, "all": true, "none": true, "some": true,
	"merge": true, "in": true, "in_sorted": true, "cat": true, "substr": true, "set": true,
	opFractional: true, opSemVer: true, opStartsWith: true, opEndsWith: true,
}

// unknownOperator finds a single-key object, anywhere in the rule, whose key
// is not an operator.
func unknownOperator(rule any) (string, bool) {
	switch x := rule.(type) {
	case []any:
		for _, e := range x {
			if op, ok := unknownOperator(e); ok {
				return op, true
			}
		}
	case map[string]any:
		if len(x) != 1 {
			return "", false // the library treats such objects as values
		}
		for op, arg := range x {
			if !knownOperators[op] {
				return op, true
			}
			return unknownOperator(arg)
		}
	}
	return "", false
}
