package flags

import (
	"strings"
)

// The estimator's bounds for the collection operators, mirroring what
// logic_collections.go charges.

// collection bounds map, filter, reduce, all, none and some: the subject,
// rewriting the body, and the body once per element.
//
// The elements of one list share that list's strings and values, so a body
// is not charged for a whole list's worth at every element: it is bounded
// once with the smallest element, for each element, and once more with an
// element holding everything in the list. That is sound because a body's
// cost grows at least as fast as its element does (sums and products of
// sizes), so the elements together cost no more than one element with all
// of them. Values from outside the element are charged at every element.
func (e *estimator) collection(op string, arg any, sc scope, ptr string) estimate {
	parsed, ok := arg.([]any)
	if !ok || len(parsed) == 0 {
		return estimate{cost: cost{steps: 1}} // the library panics at once
	}
	subject, subj := e.subject(parsed[0], sc, index(ptr, 0))
	if len(parsed) == 1 { // it panics, or returns, once it has the subject
		c := subject.cost.plus(cost{steps: 1})
		if op == "all" || op == "some" { // after charging for the elements
			c.steps = add(c.steps, subj.elems)
		}
		return estimate{cost: c, out: boolShape, over: subject.over}
	}
	small, whole := elementBounds(subj)
	report := e.report
	e.report = nil // reported with the whole element below
	each := e.iteration(op, parsed, sc, small, ptr)
	e.report = report
	all := e.iteration(op, parsed, sc, whole, ptr)
	n := subj.elems
	total := subject.cost.plus(cost{steps: 1}).plus(each.cost.times(n)).plus(minus(all.cost, each.cost))
	switch op {
	case "map", "filter", "none": // solveVars once, over any list
		total = total.plus(solveCost(parsed[1], sc))
	case "some": // the second solveVars walks values taken from the elements
		total = total.plus(cost{steps: mul(varNodes(parsed[1]), subj.nodes)})
	}
	return estimate{cost: total, out: collectionShape(op, subj, each.out, all.out), over: subject.over || all.over}
}

func minus(a, b cost) cost {
	return cost{max(a.steps-b.steps, 0), max(a.bytes-b.bytes, 0)}
}

// elementBounds bounds an element of a list: small is below every element
// but for its strings and nested values, whole holds all of the list's.
func elementBounds(list shape) (small, whole shape) {
	small = shape{text: maxNumberText, nodes: 1}
	whole = shape{text: add(maxNumberText, list.strs), elems: list.nodes, strs: list.strs, nodes: add(list.nodes, 1)}
	return small, whole
}

// iteration bounds what a collection costs for one element (solveVars
// included, once per element or once in all), and its value.
func (e *estimator) iteration(op string, parsed []any, sc scope, elem shape, ptr string) estimate {
	if op == "reduce" {
		return e.reduceIteration(parsed, elem, ptr)
	}
	body := e.body(parsed[1], bodyScope(op, sc, elem), index(ptr, 1))
	solve := solveCost(parsed[1], sc)
	iter := estimate{cost: cost{steps: 1}.plus(body.cost), over: body.over}
	switch op {
	case "map", "filter":
		iter.cost = iter.cost.plus(cost{bytes: 32})
	case "all":
		iter.cost = iter.cost.plus(solve)
	case "some": // solveVars twice
		iter.cost = iter.cost.plus(solve).plus(solve)
	}
	iter.out = body.out
	return iter
}

// subject bounds a collection operand: a literal list, not evaluated, or a
// rule giving one.
func (e *estimator) subject(v any, sc scope, ptr string) (estimate, shape) {
	switch x := v.(type) {
	case []any:
		return estimate{}, literalShape(x)
	case map[string]any:
		est := e.node(x, sc, ptr)
		return est, est.out
	}
	return estimate{}, shape{}
}

// bodyScope: in all, vars read the element; elsewhere solveVars may first
// put in values of the enclosing data.
func bodyScope(op string, sc scope, elem shape) scope {
	if op == "all" {
		return scope{data: elem, self: elem, solved: true}
	}
	return scope{data: sc.data.join(sc.self).join(elem), self: elem, solved: true}
}

// body bounds a collection body; a body that solveVars replaced by a list
// is walked.
func (e *estimator) body(v any, sc scope, ptr string) estimate {
	est := e.node(v, sc, ptr)
	if m, ok := v.(map[string]any); ok && isVarRule(m) {
		est.cost = est.cost.plus(cost{steps: reparseSteps(est.out), bytes: mul(32, est.out.elems)})
	}
	return est
}

// collectionShape bounds a collection's value from the subject and the
// body's value for the smallest element (each) and for all together.
func collectionShape(op string, subj, each, all shape) shape {
	n := subj.elems
	switch op {
	case "map":
		return shape{text: all.text, elems: n, strs: add(mul(n, each.strs), all.strs), nodes: add(1, add(mul(n, each.nodes), all.nodes))}
	case "filter":
		return subj
	case "reduce":
		return all
	}
	return boolShape
}

// copyBytes bounds what copying one value costs: at most a map (mapBytes)
// and an entry in its parent.
const copyBytes = 64 + 48 + 32

// solveCost bounds one solveVars over a body: a visit of each value, a
// lookup for each "var", and a copy of the objects and lists above a "var"
// it may replace. (A value solveVars takes from the data is shared, not
// copied, unless the data holds "var" objects: logic in the context, which
// the estimator does not bound.)
//
// In a body that an enclosing collection already rewrote (sc.solved), each
// such "var" may already be a value of the data, which this walk visits.
func solveCost(body any, sc scope) cost {
	var replaced int64
	if sc.solved {
		replaced = sc.data.join(sc.self).nodes
	}
	c, _ := solveWalk(body, replaced)
	return c
}

// solveWalk also reports whether body holds a "var" solveVars may replace;
// each such "var" may stand for a value of replaced nodes.
func solveWalk(body any, replaced int64) (cost, bool) {
	c := cost{steps: 1}
	replaces := false
	switch x := body.(type) {
	case map[string]any:
		if v, ok := x["var"]; ok {
			c = c.plus(lookupCost(v))
			if replaces = isVarRule(x) || len(x) > 1; replaces {
				c.steps = add(c.steps, replaced)
			}
		}
		for k, v := range x {
			if k == "var" {
				continue
			}
			sub, r := solveWalk(v, replaced)
			c, replaces = c.plus(sub), replaces || r
		}
		if replaces {
			c.bytes = add(c.bytes, int64(mapBytes(len(x))))
		}
	case []any:
		for _, v := range x {
			sub, r := solveWalk(v, replaced)
			c, replaces = c.plus(sub), replaces || r
		}
		if replaces {
			c.bytes = add(c.bytes, int64(sliceBytes(len(x))))
		}
	}
	return c, replaces
}

func lookupCost(path any) cost {
	p, ok := literalPath(path)
	if !ok {
		return cost{steps: 1}
	}
	return cost{steps: int64(strings.Count(p, ".")+1) + reads(int64(len(p)))}
}

// varNodes counts the "var" operations in a body that solveVars may
// replace by a value.
func varNodes(body any) int64 {
	var n int64
	switch x := body.(type) {
	case map[string]any:
		if isVarRule(x) {
			n++
		}
		for _, v := range x {
			n = add(n, varNodes(v))
		}
	case []any:
		for _, v := range x {
			n = add(n, varNodes(v))
		}
	}
	return n
}

// reduceIteration bounds one element of a reduce. Its accumulator becomes
// the body's value at each element, so a body that reads a string
// accumulator could double it each time: that is refused outright.
func (e *estimator) reduceIteration(parsed []any, elem shape, ptr string) estimate {
	var initial any
	if len(parsed) > 2 {
		initial = parsed[2]
	}
	acc := literalShape(initial).join(numberShape)
	if isString(initial) && readsAccumulator(parsed[1]) {
		if e.report != nil {
			e.report(ptr, "reduce with a string accumulator must not read the accumulator: the string could double with every element")
		}
		return estimate{cost: cost{unbounded, unbounded}, over: true}
	}
	context := shape{elems: max(elem.elems, acc.elems), strs: add(elem.strs, acc.strs), nodes: add(4, add(elem.nodes, acc.nodes))}
	body := e.node(parsed[1], scope{data: elem.join(acc), self: context}, index(ptr, 1))
	iter := estimate{cost: cost{steps: 1}.plus(body.cost), out: acc, over: body.over}
	if isString(initial) {
		iter.cost.bytes = add(iter.cost.bytes, max(body.out.text, maxNumberText))
		iter.out = acc.join(shape{text: body.out.text, strs: body.out.text, nodes: 1})
	}
	return iter
}

// readsAccumulator reports whether a reduce body may read its accumulator:
// a "var" of accumulator..., of the whole data, or of a computed path.
func readsAccumulator(body any) bool {
	switch x := body.(type) {
	case map[string]any:
		if path, ok := x["var"]; ok && mayNameAccumulator(path) {
			return true
		}
		for _, v := range x {
			if readsAccumulator(v) {
				return true
			}
		}
	case []any:
		for _, v := range x {
			if readsAccumulator(v) {
				return true
			}
		}
	}
	return false
}

func mayNameAccumulator(path any) bool {
	if list, ok := path.([]any); ok {
		if len(list) == 0 {
			return true
		}
		path = list[0]
	}
	if path == nil {
		return true
	}
	s, ok := path.(string)
	if !ok {
		return !isNumber(path)
	}
	for part := range strings.SplitSeq(s, ".") {
		if part != "" {
			return part == "accumulator"
		}
	}
	return true // "" or dots only: the whole data
}
