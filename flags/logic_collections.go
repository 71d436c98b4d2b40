package flags

import "fmt"

// The library's collection operators. Their operands are not evaluated
// first: the first is the collection (a literal list, or a rule giving
// one), the second the body applied to each element, which becomes the
// data inside the body. Each charges one step per element before looping,
// so a collection that would go over the budget is refused before any of
// its work is done.

// subject evaluates a collection operand the way map, filter and reduce do.
func (m *machine) subject(operand, data any) any {
	var subject any
	if isSlice(operand) {
		subject = operand
	}
	if isMap(operand) {
		subject = m.apply(operand, data)
	}
	return subject
}

// predicateSubject is subject for all, none and some, which check the
// operand in the other order.
func (m *machine) predicateSubject(operand, data any) any {
	var subject any
	if isMap(operand) {
		subject = m.apply(operand, data)
	}
	if isSlice(operand) {
		subject = operand
	}
	return subject
}

// elements charges for looping over a collection and returns it; like the
// library, it panics when the collection is not a list.
func (m *machine) elements(subject any, bytesEach int) []any {
	list := subject.([]any)
	m.charge(len(list), bytesEach*len(list))
	return list
}

func (m *machine) filter(values, data any) any {
	parsed := values.([]any)
	subject := m.subject(parsed[0], data)
	result := make([]any, 0)
	if subject == nil {
		return result
	}
	logic := m.solveVars(parsed[1], data)
	for _, value := range m.elements(subject, sliceBytes(1)) {
		if isTrue(m.parseValues(logic, value)) {
			result = append(result, value)
		}
	}
	return result
}

func (m *machine) mapOp(values, data any) any {
	parsed := values.([]any)
	subject := m.subject(parsed[0], data)
	result := make([]any, 0)
	if subject == nil {
		return result
	}
	logic := m.solveVars(parsed[1], data)
	for _, value := range m.elements(subject, sliceBytes(1)) {
		v := m.parseValues(logic, value)
		if isTrue(v) || isNumber(v) {
			result = append(result, v)
		}
	}
	return result
}

// reduceTypeError is the library's ErrReduceDataType.
type reduceTypeError string

func (e reduceTypeError) Error() string {
	return fmt.Sprintf("The type \"%s\" is not supported", string(e))
}

func (m *machine) reduce(values, data any) any {
	parsed := values.([]any)
	subject := m.subject(parsed[0], data)
	if subject == nil {
		return float64(0)
	}
	context := map[string]any{"current": float64(0)}
	switch initial := parsed[2]; {
	case isBool(initial):
		context["accumulator"], context["valueType"] = isTrue(initial), "bool"
	case isNumber(initial):
		context["accumulator"], context["valueType"] = m.toNumber(initial), "number"
	case isString(initial):
		context["accumulator"], context["valueType"] = toString(initial), "string"
	default:
		panic(reduceTypeError(fmt.Sprintf("%T", initial)))
	}
	for _, value := range m.elements(subject, 0) {
		if value == nil {
			continue
		}
		context["current"] = value
		context["accumulator"] = m.accumulate(context["valueType"], m.apply(parsed[1], context))
	}
	return context["accumulator"]
}

// accumulate converts a reduce body's value to the accumulator's type.
func (m *machine) accumulate(valueType, v any) any {
	switch valueType {
	case "bool":
		return isTrue(v)
	case "number":
		return m.toNumber(v)
	}
	s := toString(v)
	m.charge(0, len(s))
	return s
}

func (m *machine) all(values, data any) any {
	parsed := values.([]any)
	subject := m.predicateSubject(parsed[0], data)
	if !isTrue(subject) {
		return false
	}
	for _, value := range m.elements(subject, 0) {
		conditions := m.solveVars(parsed[1], value)
		if !isTrue(m.apply(conditions, value)) {
			return false
		}
	}
	return true
}

func (m *machine) none(values, data any) any {
	parsed := values.([]any)
	subject := m.predicateSubject(parsed[0], data)
	if !isTrue(subject) {
		return true
	}
	conditions := m.solveVars(parsed[1], data)
	for _, value := range m.elements(subject, 0) {
		if isTrue(m.apply(conditions, value)) {
			return false
		}
	}
	return true
}

func (m *machine) some(values, data any) any {
	parsed := values.([]any)
	subject := m.predicateSubject(parsed[0], data)
	if !isTrue(subject) {
		return false
	}
	for _, value := range m.elements(subject, 0) {
		conditions := m.solveVars(m.solveVars(parsed[1], value), data)
		if isTrue(m.apply(conditions, value)) {
			return true
		}
	}
	return false
}
