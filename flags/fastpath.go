package flags

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/murmur3"
)

// The fast path evaluates the targeting shapes flags actually use (if,
// comparisons, in, and/or/!, var, cat and flagd's operators) straight from
// the EvalContext, without building a data map or going through the
// library's reflection. It reproduces the library's semantics exactly,
// quirks included; where the library would panic or where a value needs
// conversion, the node gives up (ok=false) and the whole evaluation falls
// back to the machine (logic.go), which follows the library step by step,
// so the two paths cannot disagree. fastpath_test.go checks them against
// each other. The fast path has no meter: it has no loops, and rules that
// could go over the evaluation budget are not compiled to it.

type nodeKind uint8

const (
	kLit        nodeKind = iota // a JSON primitive
	kList                       // a literal array of primitives (only as the haystack of "in")
	kVar                        // {"var": ...}
	kCat                        // {"cat": [...]}
	kIf                         // {"if": [...]}
	kEq                         // ==
	kNe                         // !=
	kStrictEq                   // ===
	kStrictNe                   // !==
	kLt                         // <
	kGt                         // >
	kLe                         // <=
	kGe                         // >=
	kIn                         // in
	kAnd                        // and
	kOr                         // or
	kNot                        // !
	kNotNot                     // !!
	kOp                         // starts_with, ends_with, sem_ver
	kFractional                 // fractional with literal buckets
)

// node is one compiled JSONLogic expression.
type node struct {
	kind nodeKind
	lit  any     // kLit: the value
	list []any   // kList: the elements
	args []*node // operands, in order

	path []string // kVar: the path, split on dots, empty parts dropped
	def  any      // kVar: the default for a missing value

	bare   bool   // kNot, kNotNot: {"!": x} rather than {"!": [x]}; a null x yields null
	result bool   // kIf: on the result path, where a failed operator exits to the default
	opName string // kOp: starts_with, ends_with or sem_ver

	// kFractional
	bucket     *node // nil: hash flagKey+targetingKey
	dropNull   bool  // the bucketing argument was present and may be null
	dist       distribution
	distBroken bool // the buckets can never parse: fractional always fails
}

// env is the state of one fast evaluation.
type env struct {
	flagKey  string
	tk       string         // EvalContext.TargetingKey
	attrs    map[string]any // EvalContext.Attributes
	now      func() time.Time
	tkAny    any // boxed targeting key, made on first use
	stamp    any // boxed $flagd.timestamp, made on first use
	failures int // operator failures so far
}

// virtual containers for var lookups that the fast path does not build.
type (
	rootRef  struct{}
	flagdRef struct{}
)

// eval returns the node's value, whether it came from fractional on the
// result path, and ok=false when the machine must decide instead.
func (e *env) eval(n *node) (v any, split bool, ok bool) {
	switch n.kind {
	case kLit:
		return n.lit, false, true
	case kVar:
		v, ok = e.lookup(n)
		return v, false, ok
	case kCat:
		return e.cat(n)
	case kIf:
		return e.cond(n)
	case kEq, kNe, kStrictEq, kStrictNe, kLt, kGt, kLe, kGe:
		return e.compare(n)
	case kIn:
		return e.in(n)
	case kAnd, kOr:
		return e.andOr(n)
	case kNot, kNotNot:
		return e.not(n)
	case kOp:
		return e.op(n)
	case kFractional:
		return e.fractional(n)
	}
	return nil, false, false
}

// Operands are always all evaluated, as the library does before applying
// any operator: JSONLogic in this library is eager, even for "if". They are
// collected in fixed arrays local to each operator, which keeps them off the
// heap.

// lookup follows the library's getVar: path parts are looked up in the
// current container, a primitive value leaves the container unchanged, and
// a null value returns the default.
func (e *env) lookup(n *node) (any, bool) {
	var cur any = rootRef{}
	var val any
	for _, part := range n.path {
		next, ok := e.child(cur, part)
		if !ok {
			return nil, false
		}
		if next == nil {
			return n.def, true
		}
		val = next
		switch x := val.(type) {
		case string:
			if !utf8.ValidString(x) {
				return nil, false // the library sees it with U+FFFD replacements
			}
			continue
		case float64, bool:
			continue
		}
		cur = val
	}
	switch val.(type) {
	case nil, string, float64, bool:
		return val, true
	}
	return nil, false // objects and arrays: the library may treat them as rules later
}

func (e *env) child(cur any, part string) (any, bool) {
	switch c := cur.(type) {
	case rootRef:
		return e.root(part)
	case flagdRef:
		switch part {
		case keyFlagKey:
			return e.flagKey, true
		case keyTimestamp:
			if e.stamp == nil {
				e.stamp = float64(e.now().Unix())
			}
			return e.stamp, true
		}
		return nil, true
	case map[string]any:
		return asJSONNumber(c[part]), true
	case []any:
		pos := int(parseNumber(part))
		if pos < 0 {
			return nil, false // the library indexes out of range and panics
		}
		if pos >= len(c) {
			return nil, true
		}
		return asJSONNumber(c[pos]), true
	}
	return nil, false
}

func (e *env) root(part string) (any, bool) {
	switch part {
	case keyFlagd:
		return flagdRef{}, true
	case keyTargetingKey:
		if e.tk != "" {
			if !utf8.ValidString(e.tk) {
				return nil, false // the library sees it with U+FFFD replacements
			}
			if e.tkAny == nil {
				e.tkAny = e.tk
			}
			return e.tkAny, true
		}
	}
	return asJSONNumber(e.attrs[part]), true
}

// cat concatenates like the library: numbers in shortest form, null as "",
// booleans panic, and the result is trimmed.
func (e *env) cat(n *node) (any, bool, bool) {
	var parts [8]any
	for i, a := range n.args {
		v, _, ok := e.eval(a)
		if !ok {
			return nil, false, false
		}
		parts[i] = v
	}
	var buf [128]byte
	b := buf[:0]
	for _, p := range parts[:len(n.args)] {
		switch x := p.(type) {
		case string:
			b = append(b, x...)
		case float64:
			b = strconv.AppendFloat(b, x, 'f', -1, 64)
		case nil:
		default:
			return nil, false, false
		}
	}
	return string(bytes.TrimSpace(b)), false, true
}

// cond is the library's "if" over eagerly evaluated operands. On the result
// path, a condition whose operators failed exits with null, so the flag
// serves its default variant rather than the else branch.
func (e *env) cond(n *node) (any, bool, bool) {
	var vals [8]any
	var splits [8]bool
	var failed [8]bool
	if len(n.args) > len(vals) {
		return nil, false, false
	}
	for i, a := range n.args {
		before := e.failures
		v, split, ok := e.eval(a)
		if !ok {
			return nil, false, false
		}
		vals[i], splits[i], failed[i] = v, split, e.failures > before
	}
	last := len(n.args) - 1
	for i := 0; i < last; i += 2 {
		if truthy(vals[i]) {
			return vals[i+1], n.result && splits[i+1], true
		}
		if n.result && failed[i] {
			return nil, false, true
		}
	}
	if len(n.args)%2 == 1 {
		return vals[last], n.result && splits[last], true
	}
	return nil, false, true
}

func (e *env) compare(n *node) (any, bool, bool) {
	a, _, okA := e.eval(n.args[0])
	if !okA {
		return nil, false, false
	}
	b, _, okB := e.eval(n.args[1])
	if !okB {
		return nil, false, false
	}
	switch n.kind {
	case kEq, kNe:
		eq, ok := looseEquals(a, b)
		return eq == (n.kind == kEq), false, ok
	case kStrictEq, kStrictNe:
		eq, ok := strictEquals(a, b)
		return eq == (n.kind == kStrictEq), false, ok
	case kLt:
		return less(a, b), false, true
	case kGt:
		return less(b, a), false, true
	case kLe:
		if less(a, b) {
			return true, false, true
		}
		eq, ok := looseEquals(a, b)
		return eq, false, ok
	default: // kGe
		if less(b, a) {
			return true, false, true
		}
		eq, ok := looseEquals(a, b)
		return eq, false, ok
	}
}

// in is the library's "in": substring for a string haystack, membership
// for an array.
func (e *env) in(n *node) (any, bool, bool) {
	needle, _, ok := e.eval(n.args[0])
	if !ok {
		return nil, false, false
	}
	var hay any
	if n.args[1].kind == kList {
		hay = n.args[1].list
	} else if hay, _, ok = e.eval(n.args[1]); !ok {
		return nil, false, false
	}
	if needle == nil || hay == nil {
		return false, false, true
	}
	switch h := hay.(type) {
	case string:
		s, ok := needle.(string)
		if !ok {
			return nil, false, false
		}
		return strings.Contains(h, s), false, true
	case []any:
		found, ok := inList(needle, h)
		return found, false, ok
	}
	return nil, false, false
}

func inList(needle any, list []any) (bool, bool) {
	num, isNum := needle.(float64)
	for _, el := range list {
		if !isNum {
			if el == needle {
				return true, true
			}
			continue
		}
		switch x := el.(type) {
		case float64:
			if x == num {
				return true, true
			}
		case string:
			if parseNumber(x) == num {
				return true, true
			}
		default:
			return false, false // the library's toNumber panics
		}
	}
	return false, true
}

// andOr reproduces the library's "and" (the first false or empty string, else
// the largest number, else true) and "or" (the first truthy value, else false).
func (e *env) andOr(n *node) (any, bool, bool) {
	var vals [8]any
	for i, a := range n.args {
		v, _, ok := e.eval(a)
		if !ok {
			return nil, false, false
		}
		vals[i] = v
	}
	args := vals[:len(n.args)]
	if n.kind == kOr {
		for _, v := range args {
			if truthy(v) {
				return v, false, true
			}
		}
		return false, false, true
	}
	max, sawNumber := 0.0, false
	for _, v := range args {
		switch x := v.(type) {
		case bool:
			if !x {
				return false, false, true
			}
		case string:
			if x == "" {
				return x, false, true
			}
		case float64:
			sawNumber = true
			if x > max {
				max = x
			}
		}
	}
	if !sawNumber {
		return true, false, true
	}
	return max, false, true
}

func (e *env) not(n *node) (any, bool, bool) {
	v, _, ok := e.eval(n.args[0])
	if !ok {
		return nil, false, false
	}
	if n.bare && v == nil {
		return nil, false, true // the library returns null for {"!": null-valued rule}
	}
	return truthy(v) == (n.kind == kNotNot), false, true
}

func (e *env) op(n *node) (any, bool, bool) {
	var vals [4]any
	for i, a := range n.args {
		v, _, ok := e.eval(a)
		if !ok {
			return nil, false, false
		}
		vals[i] = v
	}
	args := vals[:len(n.args)]
	var v any
	var good bool
	switch n.opName { // direct calls, so args can stay on the stack
	case opStartsWith:
		v, good = startsWith(args)
	case opEndsWith:
		v, good = endsWith(args)
	default:
		v, good = semVer(args)
	}
	if !good {
		e.failures++
	}
	return v, false, true
}

// fractional hashes the bucketing value. The default key, flagKey +
// targetingKey, is assembled in a stack buffer so that the common case does
// not allocate.
func (e *env) fractional(n *node) (any, bool, bool) {
	explicit, useDefault := "", n.bucket == nil
	if !useDefault {
		v, _, ok := e.eval(n.bucket)
		if !ok {
			return nil, false, false
		}
		switch x := v.(type) {
		case string:
			explicit = x
		case nil:
			if !n.dropNull {
				return nil, false, false
			}
			useDefault = true
		default:
			return nil, false, false // a number or boolean: let the library report it
		}
	}
	if n.distBroken {
		e.failures++
		return nil, true, true
	}
	if !useDefault {
		return n.dist.pick(murmur3.StringSum32(explicit)), true, true
	}
	tk, found := e.targetingKey()
	if !found {
		e.failures++
		return nil, true, true
	}
	if !utf8.ValidString(tk) {
		return nil, false, false
	}
	var buf [256]byte
	key := append(append(buf[:0], e.flagKey...), tk...)
	return n.dist.pick(murmur3.Sum32(key)), true, true
}

func (e *env) targetingKey() (string, bool) {
	if e.tk != "" {
		return e.tk, true
	}
	tk, ok := e.attrs[keyTargetingKey].(string)
	return tk, ok
}

// truthy is the library's isTrue for JSON values.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return false
}

// looseEquals is the library's "==". ok=false where the library panics
// (comparing a number or string with a boolean).
func looseEquals(a, b any) (eq bool, ok bool) {
	if a == nil || b == nil {
		return a == nil && b == nil, true
	}
	switch x := a.(type) {
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y, true
		case string:
			return x == parseNumber(y), true
		}
		return false, false
	case bool:
		y, isBool := b.(bool)
		return isBool && x == y, true
	case string:
		switch y := b.(type) {
		case string:
			return x == y, true
		case float64:
			return x == strconv.FormatFloat(y, 'f', -1, 64), true
		}
	}
	return false, false
}

// strictEquals is the library's "===": same kind, then "==".
func strictEquals(a, b any) (bool, bool) {
	switch a.(type) {
	case nil:
		return b == nil, true
	case float64:
		if _, same := b.(float64); !same {
			return false, true
		}
	case string:
		if _, same := b.(string); !same {
			return false, true
		}
	case bool:
		if _, same := b.(bool); !same {
			return false, true
		}
	}
	return looseEquals(a, b)
}

// less is the library's "<": strings compare as strings, anything else as
// JavaScript numbers.
func less(a, b any) bool {
	as, aStr := a.(string)
	bs, bStr := b.(string)
	if aStr && bStr {
		return as < bs
	}
	return jsNumber(a) < jsNumber(b)
}

func jsNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		n, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return math.NaN()
		}
		return n
	}
	return math.NaN()
}

// parseNumber is the library's toNumber for strings: unparsable means 0.
func parseNumber(s string) float64 {
	n, _ := strconv.ParseFloat(s, 64)
	return n
}
