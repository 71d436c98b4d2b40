package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// EvalContext is what an evaluation is about: the subject's targeting key and
// any attributes the targeting rules may read.
type EvalContext struct {
	// TargetingKey identifies the subject (user, session, tenant...). It is
	// what fractional hashes by default. Empty means "not set": an attribute
	// named "targetingKey" is then used, as in flagd.
	TargetingKey string
	// Attributes are the other context properties. Values should be JSON
	// types; other Go values are converted through encoding/json, as flagd
	// does when it marshals the context.
	Attributes map[string]any
}

// maxContextDepth bounds recursion into nested attribute values, so a
// self-referencing map is an error rather than a stack overflow.
const maxContextDepth = 64

var errContextTooDeep = errors.New("context nests deeper than 64 levels")

// Prepared is an evaluation context checked and converted once, so that
// evaluating many flags for it (OFREP's bulk endpoint) does that work once
// per request rather than once per flag (M5). It is not safe for
// concurrent use.
type Prepared struct {
	ctx EvalContext

	checked bool // fit and fitErr are known
	fit     bool
	fitErr  error

	built   bool // data and dataErr are known
	data    map[string]any
	dataErr error
}

// Prepare makes a context ready for Snapshot.EvaluatePrepared.
func Prepare(ctx EvalContext) *Prepared { return &Prepared{ctx: ctx} }

// fits reports, once, whether the fast path can read the attributes.
func (p *Prepared) fits() (bool, error) {
	if !p.checked {
		p.checked = true
		p.fit, p.fitErr = contextFits(p.ctx.Attributes)
	}
	return p.fit, p.fitErr
}

// dataFor returns the JSONLogic data object for one flag. The attributes
// are converted once; only the $flagd properties change from flag to flag.
// Sharing the object is safe because no operation modifies its data.
func (p *Prepared) dataFor(flagKey string, now time.Time) (map[string]any, error) {
	if !p.built {
		p.built = true
		p.data, p.dataErr = buildData(p.ctx)
	}
	if p.dataErr != nil {
		return nil, p.dataErr
	}
	p.data[keyFlagd] = map[string]any{
		keyFlagKey:   flagKey,
		keyTimestamp: float64(now.Unix()),
	}
	return p.data, nil
}

// buildData makes the JSONLogic data object flagd builds, but for the
// $flagd properties: the attributes in their JSON form, and targetingKey.
func buildData(ctx EvalContext) (map[string]any, error) {
	data := make(map[string]any, len(ctx.Attributes)+2)
	for k, v := range ctx.Attributes {
		nv, err := jsonValue(v, 0)
		if err != nil {
			return nil, fmt.Errorf("context attribute %q: %w", k, err)
		}
		data[jsonString(k)] = nv
	}
	if ctx.TargetingKey != "" {
		data[keyTargetingKey] = jsonString(ctx.TargetingKey)
	}
	return data, nil
}

// jsonValue returns v as encoding/json would decode it after encoding it:
// numbers become float64, strings become valid UTF-8, and other Go types go
// through a real round trip.
func jsonValue(v any, depth int) (any, error) {
	if depth > maxContextDepth {
		return nil, errContextTooDeep
	}
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case string:
		return jsonString(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("unsupported number %v", x)
		}
		return x, nil
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ne, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[jsonString(k)] = ne
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ne, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	}
	return roundTrip(v)
}

func roundTrip(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonString replaces invalid UTF-8 the way encoding/json does, byte by byte.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b, _ := json.Marshal(s) // cannot fail for a string
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// contextFits reports whether the fast path can read the attributes
// directly: every value is a JSON type or a Go integer. It returns an error
// for values that flagd could not marshal at all, so that both paths reject
// the same contexts. Strings are checked for valid UTF-8 only when the fast
// path reads them, and rules that name a key containing U+FFFD (which is
// what invalid UTF-8 in a key becomes) are left to the machine, so invalid
// UTF-8 that the rule never reads costs nothing.
func contextFits(attrs map[string]any) (bool, error) {
	for _, v := range attrs {
		if fits, err := valueFits(v, 0); !fits || err != nil {
			return fits, err
		}
	}
	return true, nil
}

func valueFits(v any, depth int) (bool, error) {
	if depth > maxContextDepth {
		return false, errContextTooDeep
	}
	switch x := v.(type) {
	case nil, bool, string, int, int32, int64, uint32, uint64:
		return true, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false, fmt.Errorf("unsupported number %v", x)
		}
		return true, nil
	case map[string]any:
		for _, e := range x {
			if fits, err := valueFits(e, depth+1); !fits || err != nil {
				return fits, err
			}
		}
		return true, nil
	case []any:
		for _, e := range x {
			if fits, err := valueFits(e, depth+1); !fits || err != nil {
				return fits, err
			}
		}
		return true, nil
	}
	return false, nil
}

// asJSONNumber converts the integer types the fast path accepts to float64.
func asJSONNumber(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// CheckContext checks a context's attributes against the OFREP limits:
// MaxContextAttributes, MaxContextArray, MaxContextDepth, and
// MaxContextBytes for its strings once decoded (JSON decodes each byte of
// invalid UTF-8 to three). The caller checks the context's size as sent.
func CheckContext(attrs map[string]any) error {
	if len(attrs) > MaxContextAttributes {
		return fmt.Errorf("the context has %d attributes; the limit is %d", len(attrs), MaxContextAttributes)
	}
	var c contextCheck
	if err := c.object(attrs, 1); err != nil {
		return fmt.Errorf("context%s: %s", err.path, err.msg)
	}
	return nil
}

// contextCheck walks a context, adding up its strings.
type contextCheck struct{ bytes int }

// contextError is a limit a context is over, at a path built on the way
// back up, so that a context within the limits costs no allocation.
type contextError struct{ path, msg string }

func (e *contextError) within(step string) *contextError {
	e.path = step + e.path
	return e
}

func (c *contextCheck) value(v any, depth int) *contextError {
	switch x := v.(type) {
	case string:
		c.bytes += len(x)
	case map[string]any:
		return c.object(x, depth)
	case []any:
		return c.array(x, depth)
	}
	if c.bytes > MaxContextBytes {
		return &contextError{msg: fmt.Sprintf("the context's strings add up to more than %d bytes", MaxContextBytes)}
	}
	return nil
}

func (c *contextCheck) object(obj map[string]any, depth int) *contextError {
	if depth > MaxContextDepth {
		return &contextError{msg: fmt.Sprintf("nests deeper than %d levels", MaxContextDepth)}
	}
	for k, e := range obj {
		c.bytes += len(k)
		if err := c.value(e, depth+1); err != nil {
			return err.within("." + k)
		}
	}
	return nil
}

func (c *contextCheck) array(list []any, depth int) *contextError {
	if depth > MaxContextDepth {
		return &contextError{msg: fmt.Sprintf("nests deeper than %d levels", MaxContextDepth)}
	}
	if len(list) > MaxContextArray {
		return &contextError{msg: fmt.Sprintf("has %d elements; the limit is %d", len(list), MaxContextArray)}
	}
	for i, e := range list {
		if err := c.value(e, depth+1); err != nil {
			return err.within("[" + strconv.Itoa(i) + "]")
		}
	}
	return nil
}
