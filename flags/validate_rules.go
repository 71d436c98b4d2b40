package flags

import (
	"math"
	"strconv"
)

// Targeting checks. They follow flagd's targeting schema and what flagd
// fails on at run time, and no further: a rule that flagd would evaluate is
// accepted even when it looks odd.

var semVerOperators = map[string]bool{"=": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true, "^": true, "~": true}

// checkRule walks a JSONLogic value. result is true where the value becomes
// the targeting result, so literal strings there must name variants.
func (v *validator) checkRule(rule any, ptr string, result bool, depth int) {
	switch x := rule.(type) {
	case map[string]any:
		v.checkOperator(x, ptr, result, depth)
	case []any:
		for i, e := range x {
			v.checkRule(e, index(ptr, i), false, depth)
		}
	default:
		if result {
			v.checkResultLiteral(x, ptr)
		}
	}
}

// checkResultLiteral checks a literal the targeting can return: a string
// must be a variant, true/false must be variants named "true"/"false".
func (v *validator) checkResultLiteral(lit any, ptr string) {
	if v.variants == nil {
		return
	}
	var name string
	switch x := lit.(type) {
	case string:
		name = x
	case bool:
		name = strconv.FormatBool(x)
	default:
		return // null falls back to the default; numbers are undefined in flagd
	}
	if !v.variants[name] {
		v.add(ptr, CodeUnknownVariant, "targeting can return %q, which is not one of the variants", name)
	}
}

func (v *validator) checkOperator(obj map[string]any, ptr string, result bool, depth int) {
	if v.work != nil {
		*v.work++
	}
	if len(obj) == 0 {
		return // {} is allowed, as in flagd's schema
	}
	if len(obj) > 1 {
		v.add(ptr, CodeInvalid, "a JSONLogic operation is an object with exactly one key, found %d", len(obj))
		return
	}
	for op, arg := range obj {
		p := pointer(ptr, op)
		switch op {
		case "$ref":
			v.checkRef(arg, ptr, result, depth)
		case "if", "?:":
			v.checkIf(arg, p, result, depth)
		case opFractional:
			v.checkFractional(arg, p, result, depth)
		case opSemVer:
			v.checkSemVer(arg, p, depth)
		case opStartsWith, opEndsWith:
			v.checkStringCompare(arg, p, depth)
		case "var":
			v.checkVar(arg, p)
		default:
			if !knownOperators[op] {
				v.add(ptr, CodeInvalid, "unknown operator %q", op)
				return
			}
			v.checkRule(arg, p, false, depth)
		}
	}
}

func (v *validator) checkRef(arg any, ptr string, result bool, depth int) {
	name, ok := arg.(string)
	if !ok {
		v.add(pointer(ptr, "$ref"), CodeInvalid, "$ref must name an evaluator")
		return
	}
	if !v.known[name] {
		v.add(pointer(ptr, "$ref"), CodeUnknownRef, "no evaluator named %q in $evaluators", name)
		return
	}
	body, ok := v.evaluators[name]
	if !ok || !result || depth >= maxRefDepth || v.work != nil && *v.work > maxRefNodes {
		return // undecodable bodies are reported under #/$evaluators; see work for the rest
	}
	// The evaluator's result is this flag's result: its literal results must
	// be this flag's variants. Structural problems inside it are reported
	// once, under #/$evaluators, so only variant names are checked here.
	inner := validator{evaluators: v.evaluators, known: v.known, variants: v.variants, work: v.work}
	inner.checkRule(body, ptr, true, depth+1)
	for _, e := range inner.errs {
		if e.Code == CodeUnknownVariant {
			e.Pointer = pointer(ptr, "$ref")
			e.Detail = "evaluator " + strconv.Quote(name) + ": " + e.Detail
			v.errs = append(v.errs, e)
		}
	}
}

func (v *validator) checkIf(arg any, ptr string, result bool, depth int) {
	args, ok := arg.([]any)
	if !ok || len(args) == 0 {
		v.add(ptr, CodeInvalid, "\"if\" takes an array of at least one operand")
		return
	}
	last := len(args) - 1
	for i, a := range args {
		branch := i%2 == 1 || (i == last && len(args)%2 == 1)
		v.checkRule(a, index(ptr, i), result && branch, depth)
	}
}

func (v *validator) checkSemVer(arg any, ptr string, depth int) {
	args, ok := arg.([]any)
	if !ok || len(args) != 3 {
		v.add(ptr, CodeInvalid, "sem_ver takes [version, operator, version]")
		return
	}
	for _, i := range []int{0, 2} {
		if !v.ruleOrValid(args[i], index(ptr, i), depth, func(x any) bool { _, ok := parseVersion(x); return ok }) {
			v.add(index(ptr, i), CodeInvalid, "%v is not a semantic version", args[i])
		}
	}
	if !v.ruleOrValid(args[1], index(ptr, 1), depth, func(x any) bool { s, _ := x.(string); return semVerOperators[s] }) {
		v.add(index(ptr, 1), CodeInvalid, "sem_ver operator must be one of = != < <= > >= ^ ~, not %v", args[1])
	}
}

func (v *validator) checkStringCompare(arg any, ptr string, depth int) {
	args, ok := arg.([]any)
	if !ok || len(args) != 2 {
		v.add(ptr, CodeInvalid, "starts_with and ends_with take exactly two operands")
		return
	}
	for i, a := range args {
		if !v.ruleOrValid(a, index(ptr, i), depth, func(x any) bool { _, ok := x.(string); return ok }) {
			v.add(index(ptr, i), CodeInvalid, "operand must be a string or a rule, not %v", a)
		}
	}
}

// ruleOrValid checks a rule operand, or tests a literal one with valid.
func (v *validator) ruleOrValid(x any, ptr string, depth int, valid func(any) bool) bool {
	if m, ok := x.(map[string]any); ok {
		v.checkOperator(m, ptr, false, depth)
		return true
	}
	return valid(x)
}

func (v *validator) checkVar(arg any, ptr string) {
	path, ok := arg.(string)
	if list, isList := arg.([]any); isList && len(list) > 0 {
		path, ok = list[0].(string)
	}
	if !ok {
		if _, isNum := arg.(float64); !isNum {
			v.add(ptr, CodeInvalid, "var takes a path or [path, default]")
		}
		return
	}
	if len(path) > 7 && path[:7] == "$flagd." && path != "$flagd.flagKey" && path != "$flagd.timestamp" {
		v.add(ptr, CodeInvalid, "flagd provides only $flagd.flagKey and $flagd.timestamp, not %q", path)
	}
}

// checkFractional checks [bucketing?, [variant, weight?]...].
func (v *validator) checkFractional(arg any, ptr string, result bool, depth int) {
	args, ok := arg.([]any)
	if !ok || len(args) == 0 {
		v.add(ptr, CodeInvalid, "fractional takes an optional bucketing value and one or more [variant, weight] buckets")
		return
	}
	first := 0
	if _, isBucket := args[0].([]any); !isBucket {
		first = 1
		switch b := args[0].(type) {
		case string, nil:
		case map[string]any:
			v.checkOperator(b, index(ptr, 0), false, depth)
		default:
			v.add(index(ptr, 0), CodeInvalid, "the bucketing value must be a string or a rule, not %v", b)
		}
	}
	if first == len(args) {
		v.add(ptr, CodeInvalid, "fractional needs at least one [variant, weight] bucket")
		return
	}
	var total float64
	literal := true
	for i := first; i < len(args); i++ {
		w, isLiteral := v.checkBucket(args[i], index(ptr, i), result, depth)
		total += w
		literal = literal && isLiteral
	}
	if literal && total > maxWeightSum {
		v.add(ptr, CodeOutOfRange, "fractional weights sum to %.0f; the maximum is %d", total, maxWeightSum)
	}
	if literal && total == 0 {
		v.add(ptr, CodeOutOfRange, "fractional weights sum to 0, so no bucket can be chosen")
	}
}

// checkBucket checks one [variant, weight] bucket and returns its weight and
// whether the weight is a literal.
func (v *validator) checkBucket(b any, ptr string, result bool, depth int) (float64, bool) {
	pair, ok := b.([]any)
	if !ok || len(pair) == 0 || len(pair) > 2 {
		v.add(ptr, CodeInvalid, "a bucket is [variant] or [variant, weight]")
		return 0, false
	}
	switch name := pair[0].(type) {
	case map[string]any:
		v.checkOperator(name, index(ptr, 0), result, depth)
	case string, bool, float64, nil:
		if result {
			v.checkResultLiteral(name, index(ptr, 0))
		}
	default:
		v.add(index(ptr, 0), CodeInvalid, "a bucket's variant must be a string or a rule")
	}
	if len(pair) == 1 {
		return 1, true
	}
	return v.checkWeight(pair[1], index(ptr, 1), depth)
}

func (v *validator) checkWeight(w any, ptr string, depth int) (float64, bool) {
	switch x := w.(type) {
	case nil:
		return 1, true
	case map[string]any:
		v.checkOperator(x, ptr, false, depth)
		return 0, false
	case float64:
		switch {
		case x != math.Trunc(x):
			v.add(ptr, CodeInvalid, "weights must be whole numbers, not %v", x)
		case x < 0:
			v.add(ptr, CodeOutOfRange, "weights must not be negative, not %v", x)
		case x > maxWeightSum:
			v.add(ptr, CodeOutOfRange, "a weight must be at most %d", maxWeightSum)
		default:
			return x, true
		}
		return 0, false // reported; keep it out of the sum checks
	}
	v.add(ptr, CodeInvalid, "a weight must be a number, not %v", w)
	return 0, false
}

func index(ptr string, i int) string {
	return ptr + "/" + strconv.Itoa(i)
}
