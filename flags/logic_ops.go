package flags

import (
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// The library's operators on evaluated operands. Type assertions are kept
// where the library has them, so the machine panics (PARSE_ERROR) on the
// same inputs.

func (m *machine) unary(op string, value any) any {
	switch op {
	case "+", "*", "/":
		return m.toNumber(value)
	case "-":
		return -1 * m.toNumber(value)
	case "!!":
		return !m.unary("!", value).(bool)
	case "abs":
		return math.Abs(m.toNumber(value))
	}
	b := isTrue(value)
	if op == "!" {
		return !b
	}
	return b
}

// and returns the first list, false or empty string, else the largest
// number (at least 0), else true.
func (m *machine) and(values []any) any {
	m.charge(len(values), 0)
	var largest float64
	isBoolExpression := true
	for _, value := range values {
		if isSlice(value) {
			return value
		}
		if b, ok := value.(bool); ok && !b {
			return false
		}
		if s, ok := value.(string); ok && s == "" {
			return value
		}
		if !isNumber(value) {
			continue
		}
		isBoolExpression = false
		if n := m.toNumber(value); n > largest {
			largest = n
		}
	}
	if isBoolExpression {
		return true
	}
	return largest
}

func (m *machine) or(values []any) any {
	m.charge(len(values), 0)
	for _, value := range values {
		if isTrue(value) {
			return value
		}
	}
	return false
}

func (m *machine) max(values any) any {
	return m.extreme(values, func(a, b float64) bool { return a > b })
}

func (m *machine) min(values any) any {
	return m.extreme(values, func(a, b float64) bool { return b > a })
}

func (m *machine) extreme(values any, better func(a, b float64) bool) any {
	list := values.([]any)
	m.charge(len(list), 0)
	if len(list) == 0 {
		return nil
	}
	best := m.toNumber(list[0])
	for _, v := range list[1:] {
		if n := m.toNumber(v); better(n, best) {
			best = n
		}
	}
	return best
}

func (m *machine) sum(values []any) any {
	m.charge(len(values), 0)
	total := float64(0)
	for _, v := range values {
		total += m.toNumber(v)
	}
	return total
}

func (m *machine) mult(values []any) any {
	m.charge(len(values), 0)
	product := float64(1)
	for _, v := range values {
		product *= m.toNumber(v)
	}
	return product
}

// minus and div convert every operand before computing, as the library
// does; converting in order panics on the same operand.
func (m *machine) minus(values []any) any {
	m.charge(len(values), 0)
	result := m.toNumber(values[0])
	for _, v := range values[1:] {
		result -= m.toNumber(v)
	}
	return result
}

func (m *machine) div(values []any) any {
	m.charge(len(values), 0)
	result := m.toNumber(values[0])
	for _, v := range values[1:] {
		result /= m.toNumber(v)
	}
	return result
}

func (m *machine) mod(a, b any) any {
	return math.Mod(m.toNumber(a), m.toNumber(b))
}

// in is substring search in a string, or membership in a list, where a
// nested [low, high] pair is a range.
func (m *machine) in(value, values any) bool {
	if value == nil || values == nil {
		return false
	}
	if hay, ok := values.(string); ok {
		m.read(len(hay))
		return strings.Contains(hay, value.(string))
	}
	list := values.([]any)
	m.charge(len(list), 0)
	for _, element := range list {
		if isSlice(element) {
			if m.inRange(value, element) {
				return true
			}
			continue
		}
		if isNumber(value) {
			if m.toNumber(element) == value {
				return true
			}
			continue
		}
		if m.same(element, value) {
			return true
		}
	}
	return false
}

// same is Go's == on two interface values (it panics on two maps or two
// lists, as the library's does), charging for a string comparison.
func (m *machine) same(a, b any) bool {
	if s, ok := a.(string); ok {
		if t, ok := b.(string); ok && len(s) == len(t) {
			m.read(len(s))
		}
	}
	return a == b
}

func (m *machine) inRange(value, values any) bool {
	v := values.([]any)
	i, j := v[0], v[1]
	if isNumber(value) {
		return m.toNumber(value) >= m.toNumber(i) && m.toNumber(j) >= m.toNumber(value)
	}
	return m.atLeast(toString(value), toString(i)) && m.atLeast(toString(j), toString(value))
}

// atLeast is a >= b on strings, charging for the comparison.
func (m *machine) atLeast(a, b string) bool {
	m.read(min(len(a), len(b)))
	return a >= b
}

// inSorted is in_sorted: binary search in a list sorted as strings, where
// a nested [low, high] pair is a range.
func (m *machine) inSorted(value, values any) bool {
	list := values.([]any)
	m.charge(len(list), 0)
	i := sort.Search(len(list), func(i int) bool { return m.sortedAtOrAfter(list[i], value) })
	if i >= len(list) {
		return false
	}
	if pair, ok := list[i].([]any); ok {
		return m.atLeast(toString(value), toString(pair[0])) && m.atLeast(toString(pair[1]), toString(value))
	}
	return m.strEqual(toString(list[i]), toString(value))
}

func (m *machine) sortedAtOrAfter(element, value any) bool {
	if pair, ok := element.([]any); ok {
		start, end := toString(pair[0]), toString(pair[1])
		v := toString(value)
		return (m.atLeast(v, start) && m.atLeast(end, v)) || m.greater(end, v)
	}
	return m.atLeast(toString(element), toString(value))
}

func (m *machine) greater(a, b string) bool {
	m.read(min(len(a), len(b)))
	return a > b
}

func (m *machine) strEqual(a, b string) bool {
	if len(a) == len(b) {
		m.read(len(a))
	}
	return a == b
}

// between is the three-operand form of the comparisons; the library
// evaluates its operands once more.
func (m *machine) between(op string, values []any, data any) any {
	a := m.parseValues(values[0], data)
	b := m.parseValues(values[1], data)
	c := m.parseValues(values[2], data)
	switch op {
	case "<":
		return m.less(a, b) && m.less(b, c)
	case "<=":
		return (m.less(a, b) || m.equals(a, b)) && (m.less(b, c) || m.equals(b, c))
	case ">=":
		return (m.less(c, b) || m.equals(c, b)) && (m.less(b, a) || m.equals(b, a))
	}
	return m.less(c, b) && m.less(b, a)
}

// less compares strings as strings and anything else as JavaScript numbers.
func (m *machine) less(a, b any) bool {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			return m.greater(bs, as)
		}
	}
	return m.lessNumber(b) > m.lessNumber(a)
}

func (m *machine) lessNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case undefined:
		return math.NaN()
	case float64:
		return x
	case int:
		return float64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		m.read(len(x))
		n, err := strconv.ParseFloat(x, 64)
		switch err { // the library compares with ErrRange, which a *NumError never is
		case strconv.ErrRange, nil:
			return n
		}
	}
	return math.NaN()
}

func (m *machine) equals(a, b any) bool {
	if a == nil || b == nil {
		return a == b
	}
	if isNumber(a) {
		return m.toNumber(a) == m.toNumber(b)
	}
	if isBool(a) {
		if !isBool(b) {
			return false
		}
		return isTrue(a) == isTrue(b)
	}
	return m.strEqual(toString(a), toString(b))
}

func (m *machine) hardEquals(a, b any) bool {
	if reflect.ValueOf(a).Kind() != reflect.ValueOf(b).Kind() {
		return false
	}
	return m.equals(a, b)
}

// concat is "cat": the operands' text joined and trimmed. It measures the
// result before building it.
func (m *machine) concat(values any) any {
	if isString(values) {
		return values
	}
	list := values.([]any)
	m.charge(len(list), sliceBytes(len(list)))
	parts := make([]string, len(list))
	total, formatted := 0, 0
	for i, v := range list {
		parts[i] = toString(v)
		total += len(parts[i])
		if isNumber(v) {
			formatted += len(parts[i])
		}
	}
	m.charge(total/readChunk, total+formatted)
	return strings.TrimSpace(strings.Join(parts, ""))
}

// substr cuts by runes; the library converts the whole string to runes.
func (m *machine) substr(values any) any {
	parsed := values.([]any)
	s := toString(parsed[0])
	m.charge(len(s)/readChunk, 7*len(s)) // 4 bytes a rune, and up to 3 a rune back
	runes := []rune(s)
	from := int(m.toNumber(parsed[1]))
	length := len(runes)
	if from < 0 {
		from = length + from
	}
	if from < 0 || from > length {
		return string(runes)
	}
	if len(parsed) == 3 {
		length = int(m.toNumber(parsed[2]))
	}
	var to int
	if length < 0 {
		length = len(runes) + length
		to = length
	} else {
		to = from + length
	}
	if to > len(runes) {
		to = len(runes)
	}
	return string(runes[from:to])
}

// merge flattens one level of lists.
func (m *machine) merge(values any, level int8) any {
	m.charge(1, mergeCallBytes)
	result := make([]any, 0)
	if isPrimitive(values) || level > 1 {
		return append(result, values)
	}
	if list, ok := values.([]any); ok {
		for _, value := range list {
			part := m.merge(value, level+1).([]any)
			m.charge(0, sliceBytes(len(part)))
			result = append(result, part...)
		}
	}
	return result
}

// mergeCallBytes is what one merge call allocates before appending.
const mergeCallBytes = 48

func (m *machine) missing(values, data any) any {
	if isString(values) {
		values = []any{values}
	}
	list := values.([]any)
	m.charge(len(list), sliceBytes(len(list)))
	missing := make([]any, 0)
	for _, v := range list {
		if m.getVar(v, data) == nil {
			missing = append(missing, v)
		}
	}
	return missing
}

func (m *machine) missingSome(values, data any) any {
	parsed := values.([]any)
	number := int(m.toNumber(parsed[0]))
	vars := parsed[1].([]any)
	m.charge(len(vars), sliceBytes(len(vars)))
	missing, found := make([]any, 0), make([]any, 0)
	for _, v := range vars {
		if m.getVar(v, data) == nil {
			missing = append(missing, v)
		} else {
			found = append(found, v)
		}
	}
	if number > len(found) {
		return missing
	}
	return make([]any, 0)
}

// setProperty is "set": a deep copy of an object with one property set to
// a value that the library evaluates once more.
func (m *machine) setProperty(values, data any) any {
	parsed := values.([]any)
	object := parsed[0]
	if !isMap(object) {
		return object
	}
	property := parsed[1].(string)
	modified := m.deepCopy(object).(map[string]any)
	modified[property] = m.parseValues(parsed[2], data)
	return modified
}

// deepCopy copies like github.com/barkimedes/go-deepcopy, which the library
// uses: it drops properties whose value is null.
func (m *machine) deepCopy(v any) any {
	m.charge(1, 0)
	switch x := v.(type) {
	case map[string]any:
		m.charge(0, mapBytes(len(x)))
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e != nil {
				out[k] = m.deepCopy(e)
			}
		}
		return out
	case []any:
		m.charge(0, sliceBytes(len(x)))
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.deepCopy(e)
		}
		return out
	}
	return v
}

// Value helpers, as the library defines them for JSON values.

// undefined is what "<" and ">" compare when an operand is missing: NaN.
type undefined struct{}

func at(values []any, i int) any {
	if i >= 0 && i < len(values) {
		return values[i]
	}
	return undefined{}
}

func isBool(v any) bool   { _, ok := v.(bool); return ok }
func isString(v any) bool { _, ok := v.(string); return ok }
func isMap(v any) bool    { _, ok := v.(map[string]any); return ok }
func isSlice(v any) bool  { _, ok := v.([]any); return ok }

func isNumber(v any) bool {
	switch v.(type) {
	case int, float64:
		return true
	}
	return false
}

func isPrimitive(v any) bool { return isBool(v) || isString(v) || isNumber(v) }

func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		return len(x) > 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return false
}

// toNumber parses strings (unparsable is 0) and panics on anything but a
// number or a string.
func (m *machine) toNumber(v any) float64 {
	if s, ok := v.(string); ok {
		m.read(len(s))
		n, _ := strconv.ParseFloat(s, 64)
		return n
	}
	if n, ok := v.(int); ok {
		return float64(n)
	}
	return v.(float64)
}

// toString formats numbers in their shortest form, makes null "", and
// panics on anything but a string.
func toString(v any) string {
	switch x := v.(type) {
	case int:
		return strconv.FormatInt(int64(x), 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	return v.(string)
}
