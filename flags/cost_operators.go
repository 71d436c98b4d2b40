package flags

import (
	"strings"
)

// The estimator's bounds for each operator, mirroring what logic_ops.go and
// logic_flagd.go charge.

// operatorCost bounds an operator's own work on its evaluated operands, and
// its value.
func operatorCost(op string, arg any, o operands, sc scope) (cost, shape) {
	switch op {
	case "var":
		return varCost(arg, o, sc)
	case "missing":
		return missingCost(o)
	case "missing_some":
		return missingSomeCost(o)
	case "set":
		return setCost(o)
	case "cat":
		return catCost(arg, o, sc)
	case "substr":
		return substrCost(o)
	case "merge":
		return mergeCost(o)
	case "if":
		return ifCost(o)
	case opFractional:
		return fractionalCost(o, sc)
	}
	return simpleCost(op, o)
}

// varCost: a path of n parts costs n steps. A computed path is as long as
// its text allows.
func varCost(arg any, o operands, sc scope) (cost, shape) {
	path, literal := literalPath(arg)
	if !literal {
		t := o.at(0).text
		return cost{steps: add(t+1, reads(t))}, sc.data.join(sc.self).join(o.each)
	}
	out := sc.data
	switch {
	case strings.Trim(path, ".") == "":
		out = sc.self
	case sc.top:
		out = topVarShape(path)
	}
	parts := int64(strings.Count(path, ".") + 1)
	return cost{steps: parts + reads(int64(len(path)))}, out.join(o.each) // the value, or a default
}

// topVarShape bounds a var of the evaluation's data: a context value, or one
// of the $flagd properties.
func topVarShape(path string) shape {
	switch path {
	case "$flagd.flagKey":
		return shape{text: 128, strs: 128, nodes: 1}
	case "$flagd.timestamp":
		return numberShape
	}
	return contextShape
}

// attribute returns the name of the context attribute a var reads, for a
// var of the evaluation's data with a one-part path and no computed
// default. Distinct attributes are distinct values of one context, so
// their strings together fit in MaxContextBytes. (A longer path can read
// the same value as another: getVar skips primitives on its way and
// indexes lists with any part.)
func attribute(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	path, ok := literalPath(m["var"])
	if list, isList := m["var"].([]any); isList && len(list) == 2 && isMap(list[1]) {
		return "", false
	}
	name := strings.Trim(path, ".")
	if !ok || name == "" || strings.Contains(name, ".") || strings.HasPrefix(name, keyFlagd) {
		return "", false
	}
	return name, true
}

// literalPath returns the path of a var whose path is written in the rule.
func literalPath(arg any) (string, bool) {
	switch x := arg.(type) {
	case string:
		return x, true
	case float64:
		return toString(x), true
	case []any:
		if len(x) > 0 {
			if s, ok := x[0].(string); ok {
				return s, true
			}
		}
	case nil:
		return "", true
	}
	return "", false
}

func missingCost(o operands) (cost, shape) {
	k := o.count
	steps := add(mul(2, k), add(o.sum.text, reads(o.sum.text)))
	out := shape{text: o.each.text, elems: k, strs: o.sum.strs, nodes: add(k, 1)}
	return cost{steps: steps, bytes: mul(32, k)}, out
}

func missingSomeCost(o operands) (cost, shape) {
	names := o.at(1)
	all := sumShape(names)
	steps := add(mul(3, names.elems), add(all.text, reads(add(all.text, o.at(0).text))))
	out := shape{text: names.text, elems: names.elems, strs: names.strs, nodes: add(names.elems, 1)}
	return cost{steps: steps, bytes: mul(64, names.elems)}, out
}

// setCost: a deep copy of the object, and its new value evaluated again.
func setCost(o operands) (cost, shape) {
	object, value := o.at(0), o.at(2)
	c := cost{steps: add(object.nodes, reparseSteps(value)), bytes: add(mul(copyBytes, object.nodes), mul(32, value.elems))}
	out := shape{elems: max(object.elems, value.elems), strs: add(object.strs, value.strs), nodes: add(add(object.nodes, value.nodes), 1)}
	return c, out
}

// reparseSteps bounds evaluating a value again: walking it if it is a list,
// and applying each object in it.
func reparseSteps(s shape) int64 { return add(mul(2, s.elems), 1) }

// catCost: the result, and the text of numbers formatted on the way.
func catCost(arg any, o operands, sc scope) (cost, shape) {
	if s, ok := arg.(string); ok {
		return cost{}, literalShape(s)
	}
	t, formatted := catText(arg, o, sc)
	c := cost{steps: add(o.count, reads(t)), bytes: add(mul(32, o.count), add(t, formatted))}
	return c, shape{text: t, strs: t, nodes: 1}
}

// catText bounds the text cat joins, and the part of it that is numbers
// formatted on the way (a literal string never is). At the top, operands
// that read distinct attributes share one context's worth of strings, plus
// their numbers' digits and their defaults.
func catText(arg any, o operands, sc scope) (text, formatted int64) {
	list, ok := arg.([]any)
	if !ok {
		return o.sum.text, mul(maxNumberText, o.count)
	}
	seen := map[string]bool{}
	var pooled int64
	for i, item := range list {
		s := o.at(i)
		if _, isString := item.(string); !isString {
			formatted = add(formatted, min(s.text, maxNumberText))
		}
		name, ok := attribute(item)
		if !sc.top || !ok || seen[name] {
			text = add(text, s.text)
			continue
		}
		seen[name] = true
		pooled = add(pooled, 1)
		text = add(text, add(maxNumberText, defaultText(item)))
	}
	return add(text, min(mul(pooled, MaxContextBytes), MaxContextBytes)), formatted
}

// defaultText is the text of a var's literal default.
func defaultText(v any) int64 {
	if list, ok := v.(map[string]any)["var"].([]any); ok && len(list) == 2 {
		return literalShape(list[1]).text
	}
	return 0
}

func substrCost(o operands) (cost, shape) {
	t := o.at(0).text
	c := cost{steps: reads(add(t, add(o.at(1).text, o.at(2).text))), bytes: mul(7, t)}
	return c, shape{text: mul(3, t), strs: mul(3, t), nodes: 1}
}

// mergeCost: one call per operand and per element of a list operand.
func mergeCost(o operands) (cost, shape) {
	elems := add(o.count, o.sum.elems)
	calls := add(1, elems)
	c := cost{steps: calls, bytes: add(mul(mergeCallBytes, calls), mul(64, elems))}
	return c, shape{text: o.each.text, elems: elems, strs: o.sum.strs, nodes: add(o.sum.nodes, 1)}
}

// ifCost: a look at each operand, and the chosen value evaluated again.
func ifCost(o operands) (cost, shape) {
	value := o.each // operands from a rule: any may be chosen
	if o.items != nil {
		value = shape{}
		for i, s := range o.items {
			if isResultBranch(i, len(o.items)) {
				value = value.join(s)
			}
		}
	}
	c := cost{steps: add(o.count, reparseSteps(value)), bytes: mul(32, value.elems)}
	return c, value
}

// fractionalCost: the buckets, and hashing the bucketing key, which is
// flagKey+targetingKey unless given. The machine builds that key once per
// evaluation (see estimateRule), or once per element in a collection body.
func fractionalCost(o operands, sc scope) (cost, shape) {
	key := max(o.at(0).text, int64(defaultKeyBytes))
	c := cost{steps: add(mul(2, o.count), mul(2, reads(key))), bytes: mul(32, o.count)}
	if !sc.top {
		c.bytes = add(c.bytes, defaultKeyBytes)
	}
	return c, o.each.join(boolShape)
}

// simpleCost bounds every other operator: a walk of its operands, the
// strings it reads, a list operand for "in", evaluating the operands again
// for the three-operand comparisons, and sem_ver's parser.
func simpleCost(op string, o operands) (cost, shape) {
	c := cost{steps: add(mul(2, o.count), reads(stringReads(op, o)))}
	switch op {
	case "in", "in_sorted":
		c.steps = add(c.steps, o.at(1).elems)
	case opSemVer:
		c.steps = add(c.steps, semVerSteps)
	}
	if o.count >= 3 && reachesBetween(op) {
		for i := range 3 {
			c = c.plus(cost{steps: reparseSteps(o.at(i)), bytes: mul(32, o.at(i).elems)})
		}
	}
	return c, simpleShape(op, o)
}

// reachesBetween reports whether three operands make op the library's
// "between", which evaluates them again.
func reachesBetween(op string) bool {
	switch op {
	case "and", "or", "max", "min", "?:", "+", "-", "*", "/", "in", "in_sorted", "%",
		opFractional, opSemVer, opStartsWith, opEndsWith:
		return false
	}
	return true
}

// simpleShape bounds an operator's value: one of its operands for "and",
// "or" and "?:", else a boolean or a number.
func simpleShape(op string, o operands) shape {
	switch op {
	case "and", "or", "?:":
		return o.each.join(numberShape)
	case opStartsWith, opEndsWith, opSemVer:
		return boolShape
	}
	return numberShape
}

// stringReads bounds the bytes of string an operator reads: equality
// compares one operand's bytes at most, or parses the second as a number;
// order may parse both, and "<=" also compares; "in" scans its haystack
// and may compare the ends of each range in it twice.
func stringReads(op string, o operands) int64 {
	a, b := o.at(0), o.at(1)
	if o.count >= 3 && reachesBetween(op) { // up to four comparisons of three operands
		return mul(4, o.sum.strs)
	}
	switch op {
	case "==", "!=", "===", "!==":
		return max(a.text, b.text)
	case "<", ">":
		return add(a.text, b.text)
	case "<=", ">=":
		return mul(2, add(a.text, b.text))
	case "in", "in_sorted":
		return mul(3, b.strs)
	case opStartsWith, opEndsWith:
		return b.text
	case "and", "or", "!", "!!", "?:", opSemVer:
		return 0
	}
	return mul(2, o.sum.strs)
}
