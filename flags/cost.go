package flags

import (
	"fmt"
	"strconv"
	"strings"
)

// The estimator bounds, without evaluating it, the work the machine can do
// for a rule with any context within the OFREP context limits: it charges
// what the machine charges (logic*.go), with the largest operands such a
// context allows. Validation refuses rules whose bound is over the budget;
// compilation keeps such rules (written before the limits) off the fast
// path, so that the machine's meter stops them. FuzzRuleBudget checks
// that no accepted rule goes over its bound.
//
// It does not bound rules that a context smuggles in: JSONLogic evaluates
// an object that "var" returns into an "if" branch or a collection body as
// a rule. The machine meters those like any other work.

// unbounded is the ceiling of the estimator's arithmetic.
const unbounded = int64(1) << 50

func add(a, b int64) int64 {
	if a >= unbounded-b {
		return unbounded
	}
	return a + b
}

func mul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a >= unbounded/b {
		return unbounded
	}
	return a * b
}

func reads(n int64) int64 { return n / readChunk }

// cost is work in the machine's units.
type cost struct{ steps, bytes int64 }

func (c cost) plus(d cost) cost { return cost{add(c.steps, d.steps), add(c.bytes, d.bytes)} }

func (c cost) times(n int64) cost { return cost{mul(c.steps, n), mul(c.bytes, n)} }

func (c cost) over() bool { return c.steps > MaxEvalSteps || c.bytes > MaxEvalBytes }

// shape bounds a value.
type shape struct {
	text  int64 // its text as a scalar: a string's bytes, a number's digits
	elems int64 // its elements as a list, nested lists included
	strs  int64 // the bytes of all strings inside it together
	nodes int64 // the JSON values inside it, itself included
}

func (a shape) join(b shape) shape {
	return shape{max(a.text, b.text), max(a.elems, b.elems), max(a.strs, b.strs), max(a.nodes, b.nodes)}
}

func (a shape) plus(b shape) shape {
	return shape{add(a.text, b.text), add(a.elems, b.elems), add(a.strs, b.strs), add(a.nodes, b.nodes)}
}

// maxNumberText is the longest text of a float64 in the form the library
// formats numbers ('f', shortest): 5e-324 has 326 characters.
const maxNumberText = 350

var (
	numberShape = shape{text: maxNumberText, nodes: 1}
	boolShape   = shape{text: 5, nodes: 1}
	// contextShape bounds anything read from a context within the OFREP
	// limits, the $flagd properties included. A JSON value takes at least
	// two bytes but for the last.
	contextShape = shape{text: MaxContextBytes, elems: MaxContextArray, strs: MaxContextBytes, nodes: MaxContextBytes/2 + 1}
)

// literalShape is the exact shape of a literal value.
func literalShape(v any) shape {
	switch x := v.(type) {
	case string:
		return shape{text: int64(len(x)), strs: int64(len(x)), nodes: 1}
	case float64:
		return shape{text: int64(len(toString(x))), nodes: 1}
	case bool:
		return boolShape
	case []any:
		s := shape{elems: int64(len(x)), nodes: 1}
		for _, e := range x {
			es := literalShape(e)
			s.text, s.elems = max(s.text, es.text), max(s.elems, es.elems)
			s.strs, s.nodes = add(s.strs, es.strs), add(s.nodes, es.nodes)
		}
		return s
	case map[string]any:
		s := shape{nodes: 1}
		for _, e := range x {
			es := literalShape(e)
			s.elems = max(s.elems, es.elems)
			s.strs, s.nodes = add(s.strs, es.strs), add(s.nodes, es.nodes)
		}
		return s
	}
	return shape{nodes: 1}
}

// estimate is a bound on one expression: its cost and its value.
type estimate struct {
	cost cost
	out  shape
	over bool // it, or an expression in it, was reported over the budget
}

// scope is what an expression sees: what "var" can return, what "var" of
// "" (the data itself) returns, whether the library rewrote the enclosing
// collection body with solveVars, and whether the data is the evaluation's
// own rather than a collection element.
type scope struct {
	data   shape
	self   shape
	solved bool
	top    bool
}

// estimator walks a rule whose $refs are expanded. report receives the
// deepest operation whose bound is over the budget.
type estimator struct {
	report func(ptr, detail string)
	keyed  bool // a fractional may build the default bucketing key
}

// defaultKeyBytes bounds fractional's default bucketing key: a flag key
// (ValidKey) and a targeting key from the context.
const defaultKeyBytes = 128 + MaxContextBytes

// estimateRule bounds a whole targeting rule.
func (e *estimator) estimateRule(rule any, ptr string) estimate {
	est := e.node(rule, scope{data: contextShape, self: contextShape, top: true}, ptr)
	if e.keyed { // the machine builds it once per evaluation
		est.cost.bytes = add(est.cost.bytes, defaultKeyBytes)
		est = e.checked(est, ptr)
	}
	return est
}

// node bounds a value in a rule: an operation, or a literal whose nested
// rules "if" and a few others may evaluate.
func (e *estimator) node(v any, sc scope, ptr string) estimate {
	switch x := v.(type) {
	case map[string]any:
		if len(x) != 1 {
			return estimate{cost: cost{steps: 1}, out: literalShape(x)}
		}
		for op, arg := range x {
			return e.checked(e.operation(op, arg, sc, ptr), pointer(ptr, op))
		}
	case []any:
		return e.list(x, sc, ptr)
	}
	return estimate{out: literalShape(v)}
}

// checked reports an estimate that is over the budget, unless something in
// it already was.
func (e *estimator) checked(est estimate, ptr string) estimate {
	if est.over || !est.cost.over() {
		return est
	}
	est.over = true
	if e.report != nil {
		e.report(ptr, overDetail(est.cost))
	}
	return est
}

func overDetail(c cost) string {
	if c.steps > MaxEvalSteps {
		return fmt.Sprintf("this may take %s steps to evaluate for a context within the OFREP limits; the budget is %d",
			quantity(c.steps), MaxEvalSteps)
	}
	return fmt.Sprintf("this may allocate %s bytes to evaluate for a context within the OFREP limits; the budget is %d",
		quantity(c.bytes), MaxEvalBytes)
}

func quantity(n int64) string {
	if n >= unbounded {
		return "unboundedly many"
	}
	return "up to " + strconv.FormatInt(n, 10)
}

// list bounds a literal list: walking it, and the rules in it, which the
// library evaluates at most once when it evaluates the list again.
func (e *estimator) list(x []any, sc scope, ptr string) estimate {
	n := int64(len(x))
	est := estimate{cost: cost{steps: 2 * n, bytes: mul(32, n)}, out: shape{elems: n, nodes: 1}}
	for i, el := range x {
		es := e.node(el, sc, index(ptr, i))
		if isMap(el) {
			es.out = es.out.join(literalShape(el))
		}
		est.cost, est.over = est.cost.plus(es.cost), est.over || es.over
		est.out.text, est.out.elems = max(est.out.text, es.out.text), max(est.out.elems, es.out.elems)
		est.out.strs, est.out.nodes = add(est.out.strs, es.out.strs), add(est.out.nodes, es.out.nodes)
	}
	return est
}

// operation bounds {op: arg}: applying it, evaluating its operands, and
// the operator's own work.
func (e *estimator) operation(op string, arg any, sc scope, ptr string) estimate {
	p := pointer(ptr, op)
	if isCollection(op) {
		return e.collection(op, arg, sc, p)
	}
	ops, est := e.operands(arg, sc, p)
	if op == opFractional {
		e.keyed = true
	}
	own, out := operatorCost(op, arg, ops, sc)
	est.cost = est.cost.plus(cost{steps: 1}).plus(own)
	est.out = out
	return est
}

func isCollection(op string) bool {
	switch op {
	case "map", "filter", "reduce", "all", "none", "some":
		return true
	}
	return false
}

// operands describes the list an operator receives after parseValues.
type operands struct {
	count int64   // its elements (1 for a single value)
	items []shape // each element, when the operand is a literal list
	each  shape   // any element (a list's shape bounds its elements too)
	sum   shape   // all elements together
}

func (o operands) at(i int) shape {
	if o.count == 0 {
		return shape{}
	}
	if i < len(o.items) {
		return o.items[i]
	}
	return o.each
}

// operands bounds parseValues on an operation's operand.
func (e *estimator) operands(arg any, sc scope, ptr string) (operands, estimate) {
	switch x := arg.(type) {
	case []any:
		return e.literalOperands(x, sc, ptr)
	case map[string]any:
		est := e.node(x, sc, ptr)
		if sc.solved && isVarRule(x) {
			// solveVars put the value itself here: parseValues walks a list.
			est.cost = est.cost.plus(cost{steps: 2*est.out.elems + 1, bytes: mul(32, est.out.elems)})
		}
		return operands{count: est.out.elems, each: est.out, sum: sumShape(est.out)}, est
	}
	s := literalShape(arg)
	return operands{count: 1, items: []shape{s}, each: s, sum: s}, estimate{out: s}
}

func (e *estimator) literalOperands(x []any, sc scope, ptr string) (operands, estimate) {
	n := int64(len(x))
	o := operands{count: n, items: make([]shape, len(x))}
	est := estimate{cost: cost{steps: n, bytes: mul(32, n)}}
	for i, el := range x {
		es := e.node(el, sc, index(ptr, i))
		if isList(el) {
			es.out = es.out.join(literalShape(el)) // left as it is, or evaluated again
		}
		est.cost, est.over = est.cost.plus(es.cost), est.over || es.over
		o.items[i] = es.out
		o.each, o.sum = o.each.join(es.out), o.sum.plus(es.out)
	}
	return o, est
}

func isList(v any) bool { _, ok := v.([]any); return ok }

// sumShape bounds all elements of a list of shape s together: any scalar
// element's text, numbers' digits included.
func sumShape(s shape) shape {
	return shape{text: add(s.strs, mul(maxNumberText, s.elems)), elems: s.nodes, strs: s.strs, nodes: s.nodes}
}

// isVarRule reports a {"var": path} that solveVars may replace by a value:
// the library keeps "" and paths starting with a dot.
func isVarRule(m map[string]any) bool {
	path, ok := m["var"]
	if !ok || len(m) != 1 {
		return false
	}
	s, isString := path.(string)
	return !isString || (s != "" && !strings.HasPrefix(s, "."))
}
