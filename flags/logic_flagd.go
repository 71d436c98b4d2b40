package flags

import (
	"github.com/twmb/murmur3"
)

// flagd's operators and result rules in the machine.

// semVerSteps is what one sem_ver costs: parsing a version runs a regular
// expression, slower per byte than the reads that other steps pay for.
// parseVersion refuses versions longer than maxVersionLength, so this
// bounds it.
const semVerSteps = 16

// flagdOperator runs sem_ver, starts_with or ends_with, which return null
// and count a failure on malformed operands.
func (m *machine) flagdOperator(op string, values, data any) any {
	args, _ := values.([]any)
	var v any
	var ok bool
	switch op {
	case opSemVer:
		m.charge(semVerSteps, 0)
		v, ok = semVer(args)
	case opStartsWith:
		m.readAffix(args)
		v, ok = startsWith(args)
	default:
		m.readAffix(args)
		v, ok = endsWith(args)
	}
	if !ok {
		m.fail(data)
	}
	return v
}

// readAffix charges for comparing a prefix or suffix.
func (m *machine) readAffix(args []any) {
	if len(args) == 2 {
		if s, ok := args[1].(string); ok {
			m.read(len(s))
		}
	}
}

// fractional is flagd's fractional; its buckets may hold rules, which it
// evaluates itself.
func (m *machine) fractional(values, data any) any {
	v, ok := m.fractionalArgs(values, data)
	if !ok {
		m.fail(data)
	}
	return v
}

func (m *machine) fractionalArgs(values, data any) (any, bool) {
	args, ok := values.([]any)
	dataMap, isMap := data.(map[string]any)
	if !ok || !isMap || len(args) == 0 {
		return nil, false
	}
	m.charge(len(args), sliceBytes(len(args)))
	bucketBy, rest, ok := m.bucketingValue(args, dataMap)
	if !ok {
		return nil, false
	}
	m.read(len(bucketBy))
	d, ok := parseDistribution(rest, func(rule any) (any, bool) { return m.evalPart(rule, data) })
	if !ok {
		return nil, false
	}
	return d.pick(murmur3.StringSum32(bucketBy)), true
}

// bucketingValue picks the string that fractional hashes. A string first
// argument is used as is; otherwise flagd hashes flagKey+targetingKey, and a
// null first argument (a missing custom property) is dropped first. The
// default key is built once per evaluation.
func (m *machine) bucketingValue(args []any, data map[string]any) (string, []any, bool) {
	if s, ok := args[0].(string); ok {
		return s, args[1:], true
	}
	if args[0] == nil {
		args = args[1:]
	}
	tk, ok := data[keyTargetingKey].(string)
	if !ok {
		return "", nil, false
	}
	flagd, _ := data[keyFlagd].(map[string]any)
	flagKey, _ := flagd[keyFlagKey].(string)
	m.read(len(tk))
	if m.key == "" || flagKey != m.keyFlag || tk != m.keyTarget {
		m.charge(0, len(flagKey)+len(tk))
		m.keyFlag, m.keyTarget, m.key = flagKey, tk, flagKey+tk
	}
	return m.key, args, true
}

// evalPart evaluates a rule inside a bucket. A failing rule fails the
// bucket, not the evaluation, as with the library's ApplyInterface; the
// budget still stops everything.
func (m *machine) evalPart(rule, data any) (v any, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if r == errOverBudget {
				panic(r)
			}
			v, ok = nil, false
		}
	}()
	return m.applyInterface(rule, data), true
}

// evaluate runs a targeting rule and applies flagd's result rules, which
// the fast path applies too: split reports that fractional chose the
// value, and exit that a condition on the result path failed inside a
// flagd operator, so the flag serves its default variant instead of the
// "if"'s else branch.
func (m *machine) evaluate(rule any, data map[string]any) (out any, split, exit bool, err error) {
	m.root = data
	defer func() {
		if r := recover(); r != nil {
			out, split, exit, err = nil, false, false, asError(r)
		}
	}()
	out, split, exit = m.result(rule, data)
	return out, split, exit, nil
}

// result evaluates a rule whose value is the targeting result: the rule
// itself, and the branches of an "if" that is a result.
func (m *machine) result(rule, data any) (any, bool, bool) {
	args, ok := ifOperands(rule)
	if !ok {
		return m.applyInterface(rule, data), isFractional(rule), false
	}
	m.charge(1+len(args), sliceBytes(len(args)))
	parsed := make([]any, len(args))
	split := make([]bool, len(args))
	exit := make([]bool, len(args))
	failed := make([]bool, len(args))
	for i, a := range args {
		before := m.failures
		switch {
		case isResultBranch(i, len(args)) && isMap(a):
			parsed[i], split[i], exit[i] = m.result(a, data)
		case isMap(a):
			parsed[i] = m.apply(a, data)
		default:
			parsed[i] = a
		}
		failed[i] = m.failures > before
	}
	out := m.conditional(parsed, data)
	return pickBranch(out, parsed, split, exit, failed)
}

// pickBranch follows the branch "if" chose: its split and exit flags, or an
// exit when a condition before it failed.
func pickBranch(out any, conds []any, split, exit, failed []bool) (any, bool, bool) {
	last := len(conds) - 1
	for i := 0; i < last; i += 2 {
		if truthy(conds[i]) {
			return out, split[i+1], exit[i+1]
		}
		if failed[i] {
			return nil, false, true
		}
	}
	if len(conds)%2 == 1 {
		return out, split[last], exit[last]
	}
	return out, false, false
}

// ifOperands returns the operands of {"if": [...]}.
func ifOperands(rule any) ([]any, bool) {
	m, ok := rule.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	args, ok := m["if"].([]any)
	return args, ok
}

// isResultBranch reports whether operand i of an "if" with n operands is a
// value rather than a condition.
func isResultBranch(i, n int) bool {
	return i%2 == 1 || (i == n-1 && n%2 == 1)
}

func isFractional(rule any) bool {
	m, ok := rule.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	_, ok = m[opFractional]
	return ok
}
