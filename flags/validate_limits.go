package flags

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Checks of the limits in limits.go, so that a definition whose evaluation
// could allocate or loop without bound is refused when it is written (H1,
// M10, L11). They run on the rule as evaluation sees it, with each $ref
// replaced by its evaluator; a problem inside an evaluator is reported at
// the $ref that brings it in.

// checkSize reports a definition over MaxDefinitionBytes, measured as
// compact JSON so that indentation does not count. It returns false when
// the definition is too large to check further.
func (v *validator) checkSize(raw []byte, ptr string) bool {
	var compact bytes.Buffer
	if json.Compact(&compact, raw) != nil {
		return true // not JSON: checkFlag says so
	}
	if compact.Len() > MaxDefinitionBytes {
		v.add(ptr, CodeTooLarge, "the definition is %d bytes of compact JSON; the limit is %d", compact.Len(), MaxDefinitionBytes)
		return false
	}
	return true
}

// checkLimits checks a rule's size, depth and literals, then bounds its
// evaluation cost.
func (v *validator) checkLimits(rule any, ptr string) {
	w := limitWalker{v: v}
	w.walk(rule, ptr, level{})
	if w.failed {
		return // the cost of a rule that is too big is not worth bounding
	}
	if w.operations > MaxRuleOperations {
		v.add(ptr, CodeTooLarge, "the rule has %d operations once $ref is expanded; the limit is %d", w.operations, MaxRuleOperations)
		return
	}
	expanded, err := resolveRefs(rule, v.evaluators)
	if err != nil {
		return // the walk has room for fewer values than expansion: reported
	}
	reported := map[string]bool{}
	report := func(p, detail string) {
		if p = documentPointer(rule, ptr, p); !reported[p] { // operations of one evaluator share its $ref
			reported[p] = true
			v.add(p, CodeTooComplex, "%s", detail)
		}
	}
	e := estimator{report: report}
	e.estimateRule(expanded, ptr)
}

// documentPointer turns a pointer into the expanded rule at base into one
// into the rule as written: a pointer into an evaluator stops at the $ref
// that brings it in.
func documentPointer(rule any, base, ptr string) string {
	out, cur := base, rule
	for _, token := range strings.Split(strings.TrimPrefix(ptr, base), "/")[1:] {
		if obj, ok := cur.(map[string]any); ok && len(obj) == 1 && obj["$ref"] != nil {
			return pointer(out, "$ref")
		}
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[token]
		case []any:
			i, _ := strconv.Atoi(token)
			if i < 0 || i >= len(c) {
				return out
			}
			cur = c[i]
		}
		out = pointer(out, token)
	}
	return out
}

// limitWalker checks the structural limits of a rule.
type limitWalker struct {
	v          *validator
	operations int  // operations seen
	values     int  // values seen, bounded by maxRefNodes
	failed     bool // a limit was reported: stop
}

// level is where a value sits: how many objects and arrays deep, how many
// $refs deep, in how many collection bodies, and the $ref it came through
// (where its problems are reported).
type level struct {
	depth, refs, bodies int
	ref, refName        string
}

// walk visits a value.
func (w *limitWalker) walk(x any, ptr string, at level) {
	if w.failed {
		return
	}
	if w.values++; w.values > maxRefNodes {
		w.fail(at, ptr, CodeTooLarge, "the rule has more than %d values once $ref is expanded", maxRefNodes)
		return
	}
	switch e := x.(type) {
	case string:
		if len(e) > MaxRuleString {
			w.fail(at, ptr, CodeTooLarge, "a string in a rule may have at most %d bytes, not %d", MaxRuleString, len(e))
		}
	case []any:
		if w.deeper(ptr, &at) {
			w.walkList(e, ptr, at)
		}
	case map[string]any:
		if w.deeper(ptr, &at) {
			w.walkObject(e, ptr, at)
		}
	}
}

// deeper counts one more level of nesting, reporting when it is too many.
func (w *limitWalker) deeper(ptr string, at *level) bool {
	if at.depth++; at.depth > MaxRuleDepth {
		w.fail(*at, ptr, CodeTooDeep, "the rule nests deeper than %d levels of objects and arrays", MaxRuleDepth)
		return false
	}
	return true
}

func (w *limitWalker) walkList(list []any, ptr string, at level) {
	if len(list) > MaxRuleArray {
		w.fail(at, ptr, CodeTooLarge, "an array in a rule may have at most %d elements, not %d", MaxRuleArray, len(list))
		return
	}
	for i, e := range list {
		w.walk(e, index(ptr, i), at)
	}
}

func (w *limitWalker) walkObject(obj map[string]any, ptr string, at level) {
	if name, body, ok := w.ref(obj); ok {
		if at.refs >= maxRefDepth {
			w.fail(at, ptr, CodeTooDeep, "$ref nests more than %d evaluators deep", maxRefDepth)
			return
		}
		at.refs++
		if at.ref == "" {
			at.ref, at.refName = pointer(ptr, "$ref"), name
		}
		at.depth-- // the evaluator takes the $ref's place
		w.walk(body, ptr, at)
		return
	}
	if len(obj) == 1 {
		w.operations++
	}
	for _, k := range sortedKeys(obj) {
		w.walk(k, ptr, at)
		if args, ok := obj[k].([]any); ok && len(obj) == 1 && isCollection(k) && len(args) > 1 {
			w.walkCollection(args, pointer(ptr, k), at)
			continue
		}
		w.walk(obj[k], pointer(ptr, k), at)
	}
}

// walkCollection walks a collection's operands: its subject, then its
// body and initial value one collection deeper.
func (w *limitWalker) walkCollection(args []any, ptr string, at level) {
	if !w.deeper(ptr, &at) {
		return
	}
	if len(args) > MaxRuleArray {
		w.fail(at, ptr, CodeTooLarge, "an array in a rule may have at most %d elements, not %d", MaxRuleArray, len(args))
		return
	}
	w.walk(args[0], index(ptr, 0), at)
	if at.bodies++; at.bodies > MaxCollectionNesting {
		w.fail(at, index(ptr, 1), CodeTooDeep, "map, filter, reduce, all, none and some nest at most %d deep", MaxCollectionNesting)
		return
	}
	for i, e := range args[1:] {
		w.walk(e, index(ptr, i+1), at)
	}
}

// ref returns the evaluator that {"$ref": name} stands for.
func (w *limitWalker) ref(obj map[string]any) (string, any, bool) {
	if len(obj) != 1 {
		return "", nil, false
	}
	name, ok := obj["$ref"].(string)
	if !ok {
		return "", nil, false
	}
	body, ok := w.v.evaluators[name].(map[string]any)
	return name, body, ok && len(body) > 0
}

// fail reports a limit at ptr, or at the $ref that brought the value in.
func (w *limitWalker) fail(at level, ptr, code, format string, args ...any) {
	w.failed = true
	if at.ref != "" {
		ptr, format = at.ref, "evaluator "+strconv.Quote(at.refName)+": "+format
	}
	w.v.add(ptr, code, format, args...)
}
