package flags

import (
	"fmt"

	"github.com/diegoholiveira/jsonlogic/v3"
	"github.com/twmb/murmur3"
)

// The oracle evaluates targeting with github.com/diegoholiveira/jsonlogic/v3
// itself, as this package did before the machine replaced it: flagd's
// operators registered into the library, the whole rule applied, then the
// "if"s on the result path replayed to find fractional and failed
// conditions. Tests compare the machine with it. It has no budget, so only
// cheap rules go to it.

func init() {
	jsonlogic.AddOperator(opFractional, oracleFractional)
	jsonlogic.AddOperator(opSemVer, oracleOp(semVer))
	jsonlogic.AddOperator(opStartsWith, oracleOp(startsWith))
	jsonlogic.AddOperator(opEndsWith, oracleOp(endsWith))
}

// keyRecorder holds the per-evaluation opRecorder. It contains a dot, and
// JSONLogic's "var" splits paths on dots, so no rule can read it.
const keyRecorder = "$flagd.recorder"

// opRecorder counts operator failures during one library evaluation.
type opRecorder struct{ failures int }

func record(data any) {
	if m, ok := data.(map[string]any); ok {
		if r, ok := m[keyRecorder].(*opRecorder); ok {
			r.failures++
		}
	}
}

func oracleOp(op func(args []any) (any, bool)) func(values, data any) any {
	return func(values, data any) any {
		args, _ := values.([]any)
		v, ok := op(args)
		if !ok {
			record(data)
		}
		return v
	}
}

func oracleFractional(values, data any) any {
	v, ok := oracleFractionalArgs(values, data)
	if !ok {
		record(data)
	}
	return v
}

func oracleFractionalArgs(values, data any) (any, bool) {
	args, ok := values.([]any)
	dataMap, isMap := data.(map[string]any)
	if !ok || !isMap || len(args) == 0 {
		return nil, false
	}
	bucketBy, rest, ok := bucketingValue(args, dataMap)
	if !ok {
		return nil, false
	}
	d, ok := parseDistribution(rest, func(rule any) (any, bool) {
		//lint:ignore SA1019 no non-deprecated in-memory entry point in v3.5
		v, err := jsonlogic.ApplyInterface(rule, data)
		return v, err == nil
	})
	if !ok {
		return nil, false
	}
	return d.pick(murmur3.StringSum32(bucketBy)), true
}

// bucketingValue picks the string that fractional hashes. A string first
// argument is used as is; otherwise flagd hashes flagKey+targetingKey, and a
// null first argument (a missing custom property) is dropped first.
func bucketingValue(args []any, data map[string]any) (string, []any, bool) {
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
	return flagKey + tk, args, true
}

// oracle evaluates a flag of s with the library.
func oracle(s *Snapshot, key string, ctx EvalContext) Result {
	c, ok := s.flags[key]
	if !ok || c.disabled || c.brokenReason != "" || c.rule == nil {
		return s.Evaluate(key, ctx)
	}
	data, err := buildData(ctx)
	if err != nil {
		return errorResult(c.metadata, ErrorInvalidContext, err.Error())
	}
	data[keyFlagd] = map[string]any{keyFlagKey: c.key, keyTimestamp: float64(s.now().Unix())}
	rec := &opRecorder{}
	data[keyRecorder] = rec
	out, err := oracleApply(c.rule, data)
	if err != nil {
		return errorResult(c.metadata, ErrorParse, fmt.Sprintf("targeting of flag %q: %v", c.key, err))
	}
	exit, split := walkPath(buildPath(c.rule), data, rec)
	if exit {
		out, split = nil, false
	}
	return c.serve(out, split)
}

func oracleApply(rule, data any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jsonlogic: %v", r)
		}
	}()
	//lint:ignore SA1019 no non-deprecated in-memory entry point in v3.5
	return jsonlogic.ApplyInterface(rule, data)
}

// pathStep is the result-path view of a rule: which "if" branches lead to
// the value, and where fractional sits.
type pathStep struct {
	fractional bool
	ifArgs     []any       // the raw operands of an "if"
	branches   []*pathStep // for each operand of an "if": nil for conditions
}

func buildPath(rule any) *pathStep {
	m, ok := rule.(map[string]any)
	if !ok || len(m) != 1 {
		return &pathStep{}
	}
	if _, ok := m[opFractional]; ok {
		return &pathStep{fractional: true}
	}
	args, ok := m["if"].([]any)
	if !ok {
		return &pathStep{}
	}
	p := &pathStep{ifArgs: args, branches: make([]*pathStep, len(args))}
	last := len(args) - 1
	for i := 1; i <= last; i += 2 {
		p.branches[i] = buildPath(args[i])
	}
	if len(args)%2 == 1 {
		p.branches[last] = buildPath(args[last])
	}
	return p
}

// walkPath replays the "if"s on the result path, whose values the library
// has already computed.
func walkPath(p *pathStep, data map[string]any, rec *opRecorder) (exit, split bool) {
	if p.fractional {
		return false, true
	}
	if p.ifArgs == nil {
		return false, false
	}
	last := len(p.ifArgs) - 1
	for i := 0; i < last; i += 2 {
		rec.failures = 0
		cond, err := condValue(p.ifArgs[i], data)
		if err != nil {
			return false, false
		}
		if truthy(cond) {
			return walkPath(p.branches[i+1], data, rec)
		}
		if rec.failures > 0 {
			return true, false
		}
	}
	if len(p.ifArgs)%2 == 1 {
		return walkPath(p.branches[last], data, rec)
	}
	return false, false
}

func condValue(cond any, data map[string]any) (any, error) {
	if _, isRule := cond.(map[string]any); !isRule {
		return cond, nil
	}
	return oracleApply(cond, data)
}
