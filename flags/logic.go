package flags

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// The machine evaluates targeting rules that the fast path does not cover.
// It follows github.com/diegoholiveira/jsonlogic/v3 v3.5.1, the library flagd
// evaluates with, step by step: the same operators, the same eager
// evaluation, the same conversions, and the same panics where the library
// panics (they become PARSE_ERROR). oracle_test.go checks it against the
// library.
//
// It exists because the library cannot be metered: its collection
// operators and its recursion are not reachable through AddOperator, so a
// 0.1 KB rule could make it allocate without bound (H1). The machine counts
// every step and every large allocation as it goes (see the budget in
// limits.go) and stops with errOverBudget before it would go over.

// machine is the state of one evaluation.
type machine struct {
	steps    int // work so far, see MaxEvalSteps
	bytes    int // bytes allocated for built strings and arrays, see MaxEvalBytes
	failures int // flagd operators that failed so far, on the root data
	root     map[string]any

	// fractional's default bucketing key, flagKey+targetingKey, built once
	// per evaluation rather than once per fractional.
	keyFlag, keyTarget, key string
}

// errOverBudget is the panic value that stops an evaluation over budget.
var errOverBudget = errors.New("evaluation budget exceeded")

// charge accounts for work about to be done, and stops the evaluation when
// it would go over the budget.
func (m *machine) charge(steps, bytes int) {
	m.steps += steps
	m.bytes += bytes
	if m.steps > MaxEvalSteps || m.bytes > MaxEvalBytes {
		panic(errOverBudget)
	}
}

// read accounts for reading, comparing or copying n bytes of string.
func (m *machine) read(n int) {
	if n >= readChunk {
		m.charge(n/readChunk, 0)
	}
}

// sliceBytes is what a slice of n interface values costs, growth included.
func sliceBytes(n int) int { return 32 * n }

// fail counts a flagd operator's failure. Only failures on the evaluation's
// own data count: inside a collection body the data is an element, where
// this package never saw them (it kept its failure counter in the data).
func (m *machine) fail(data any) {
	if d, ok := data.(map[string]any); ok && len(d) == len(m.root) &&
		reflect.ValueOf(d).UnsafePointer() == reflect.ValueOf(m.root).UnsafePointer() {
		m.failures++
	}
}

// asError turns a recovered panic into an error, as the library does.
func asError(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("jsonlogic: %v", r)
}

// applyInterface is the library's ApplyInterface without its recover.
func (m *machine) applyInterface(rule, data any) any {
	switch r := rule.(type) {
	case map[string]any:
		return m.apply(r, data)
	case []any:
		m.charge(len(r), sliceBytes(len(r)))
		var parsed []any
		for _, v := range r {
			parsed = append(parsed, m.parseValues(v, data))
		}
		return parsed
	}
	return rule
}

// apply evaluates one operation. A map of several keys is a value, as in
// the library, and rules panics when it is not a map at all.
func (m *machine) apply(rules, data any) any {
	ruleMap := rules.(map[string]any)
	m.charge(1, 0)
	if len(ruleMap) > 1 {
		return ruleMap
	}
	for op, values := range ruleMap {
		switch op {
		case "filter":
			return m.filter(values, data)
		case "map":
			return m.mapOp(values, data)
		case "reduce":
			return m.reduce(values, data)
		case "all":
			return m.all(values, data)
		case "none":
			return m.none(values, data)
		case "some":
			return m.some(values, data)
		}
		return m.operation(op, m.parseValues(values, data), data)
	}
	return map[string]any{}
}

// parseValues evaluates operands: a rule is applied, a list has its rules
// applied (nested lists are left as they are), anything else is a value.
func (m *machine) parseValues(values, data any) any {
	if values == nil || isPrimitive(values) {
		return values
	}
	if isMap(values) {
		return m.apply(values, data)
	}
	list := values.([]any)
	m.charge(len(list), sliceBytes(len(list)))
	parsed := make([]any, 0, len(list))
	for _, v := range list {
		if isMap(v) {
			v = m.apply(v, data)
		}
		parsed = append(parsed, v)
	}
	return parsed
}

// operation applies an operator to evaluated operands, in the library's
// order of checks.
func (m *machine) operation(op string, values, data any) any {
	switch op {
	case opFractional:
		return m.fractional(values, data)
	case opSemVer, opStartsWith, opEndsWith:
		return m.flagdOperator(op, values, data)
	case "missing":
		return m.missing(values, data)
	case "missing_some":
		return m.missingSome(values, data)
	case "var":
		return m.getVar(values, data)
	case "set":
		return m.setProperty(values, data)
	case "cat":
		return m.concat(values)
	case "substr":
		return m.substr(values)
	case "merge":
		return m.merge(values, 0)
	case "if":
		return m.conditional(values, data)
	}
	if isPrimitive(values) {
		return m.unary(op, values)
	}
	return m.listOperation(op, values, data)
}

func (m *machine) listOperation(op string, values, data any) any {
	switch op {
	case "max":
		return m.max(values)
	case "min":
		return m.min(values)
	}
	if values == nil {
		return nil
	}
	parsed := values.([]any)
	switch op {
	case "and":
		return m.and(parsed)
	case "or":
		return m.or(parsed)
	}
	if len(parsed) == 1 {
		return m.unary(op, parsed[0])
	}
	return m.arithmetic(op, parsed, data)
}

func (m *machine) arithmetic(op string, parsed []any, data any) any {
	switch op {
	case "?:":
		if parsed[0].(bool) {
			return parsed[1]
		}
		return parsed[2]
	case "+":
		return m.sum(parsed)
	case "-":
		return m.minus(parsed)
	case "*":
		return m.mult(parsed)
	case "/":
		return m.div(parsed)
	case "in":
		return m.in(parsed[0], parsed[1])
	case "in_sorted":
		return m.inSorted(parsed[0], parsed[1])
	case "%":
		return m.mod(parsed[0], parsed[1])
	}
	if len(parsed) == 3 {
		return m.between(op, parsed, data)
	}
	return m.comparison(op, parsed)
}

func (m *machine) comparison(op string, parsed []any) any {
	switch op {
	case "<":
		return m.less(at(parsed, 0), at(parsed, 1))
	case ">":
		return m.less(at(parsed, 1), at(parsed, 0))
	case "<=":
		return m.less(parsed[0], parsed[1]) || m.equals(parsed[0], parsed[1])
	case ">=":
		return m.less(parsed[1], parsed[0]) || m.equals(parsed[0], parsed[1])
	case "===":
		return m.hardEquals(parsed[0], parsed[1])
	case "!=":
		return !m.equals(parsed[0], parsed[1])
	case "!==":
		return !m.hardEquals(parsed[0], parsed[1])
	case "==":
		return m.equals(parsed[0], parsed[1])
	}
	panic(invalidOperator(op))
}

// invalidOperator is the library's ErrInvalidOperator.
type invalidOperator string

func (e invalidOperator) Error() string {
	return fmt.Sprintf("The operator \"%s\" is not supported", string(e))
}

// getVar follows a dotted path from data, with the library's quirks: a
// primitive on the way leaves the container unchanged, null gives the
// default, and a path into a list must be a number.
func (m *machine) getVar(value, data any) any {
	if value == nil || value == "" {
		return data
	}
	if isNumber(value) {
		value = toString(value)
	}
	var def any
	if v, ok := value.([]any); ok {
		if len(v) == 0 {
			return data
		}
		if len(v) == 2 {
			def = v[1]
		}
		value = v[0].(string)
	}
	if data == nil {
		return def
	}
	path := value.(string)
	m.read(len(path))
	m.charge(strings.Count(path, ".")+1, 0)
	return m.followPath(path, data, def)
}

func (m *machine) followPath(path string, data, def any) any {
	var val any
	for part := range strings.SplitSeq(path, ".") {
		if part == "" {
			continue
		}
		if obj, ok := data.(map[string]any); ok {
			val = obj[part]
		}
		if list, ok := data.([]any); ok {
			pos := int(m.toNumber(part))
			if pos >= len(list) {
				return def
			}
			val = list[pos]
		}
		if val == nil {
			return def
		}
		if isPrimitive(val) {
			continue
		}
		data = val
	}
	return val
}

// conditional is "if": the first truthy condition's value, evaluated once
// more, or the last operand (not evaluated again) when the count is odd.
func (m *machine) conditional(values, data any) any {
	if isPrimitive(values) {
		return values
	}
	parsed := values.([]any)
	length := len(parsed)
	if length == 0 {
		return nil
	}
	m.charge(length, 0)
	for i := 0; i < length-1; i += 2 {
		v := parsed[i]
		if isMap(v) {
			v = m.getVar(parsed[i], data)
		}
		if isTrue(v) {
			return m.parseValues(parsed[i+1], data)
		}
	}
	if length%2 == 1 {
		return parsed[length-1]
	}
	return nil
}

// solveVars replaces each "var" in a rule that data answers with its value;
// the library does this to collection bodies before applying them. The
// library copies the whole rule; this copies only the objects and lists on
// the way to a replaced "var" and shares the rest, which gives equal values
// (nothing modifies them) without copying a large value the body took from
// the data.
func (m *machine) solveVars(values, data any) any {
	v, _ := m.solve(values, data)
	return v
}

// solve returns values with vars replaced, and whether anything was.
func (m *machine) solve(values, data any) (any, bool) {
	m.charge(1, 0)
	switch x := values.(type) {
	case map[string]any:
		return m.solveObject(x, data)
	case []any:
		return m.solveList(x, data)
	}
	return values, false
}

func (m *machine) solveObject(obj map[string]any, data any) (any, bool) {
	var logic map[string]any // a copy, made at the first replacement
	for key, value := range obj {
		if key == "var" {
			if s, ok := value.(string); ok && (s == "" || strings.HasPrefix(s, ".")) {
				continue
			}
			if val := m.getVar(value, data); val != nil {
				return val, true
			}
			continue
		}
		v, changed := m.solve(value, data)
		if !changed {
			continue
		}
		if logic == nil {
			m.charge(0, mapBytes(len(obj)))
			logic = make(map[string]any, len(obj))
			for k, e := range obj {
				logic[k] = e
			}
		}
		logic[key] = v
	}
	if logic == nil {
		return obj, false
	}
	return logic, true
}

func (m *machine) solveList(list []any, data any) (any, bool) {
	var logic []any // a copy, made at the first replacement
	for i, value := range list {
		v, changed := m.solve(value, data)
		if !changed {
			continue
		}
		if logic == nil {
			m.charge(0, sliceBytes(len(list)))
			logic = append([]any(nil), list...)
		}
		logic[i] = v
	}
	if logic == nil {
		return list, false
	}
	return logic, true
}

// mapBytes bounds what a map of n entries allocates.
func mapBytes(n int) int { return 64 + 48*n }
