package flags

import "fmt"

// Bool evaluates a boolean flag. It returns def whenever the result carries
// no value (errors, disabled flags, no default variant), and a TYPE_MISMATCH
// error when the flag's variants are not booleans.
func (s *Snapshot) Bool(key string, ctx EvalContext, def bool) (bool, Result) {
	return typed(s.Evaluate(key, ctx), def, "boolean")
}

// String evaluates a string flag; see Bool for the fallbacks.
func (s *Snapshot) String(key string, ctx EvalContext, def string) (string, Result) {
	return typed(s.Evaluate(key, ctx), def, "string")
}

// Float evaluates a numeric flag; see Bool for the fallbacks.
func (s *Snapshot) Float(key string, ctx EvalContext, def float64) (float64, Result) {
	return typed(s.Evaluate(key, ctx), def, "number")
}

// Int evaluates a numeric flag as an integer, truncating the variant value
// as flagd does; see Bool for the fallbacks.
func (s *Snapshot) Int(key string, ctx EvalContext, def int64) (int64, Result) {
	f, r := typed(s.Evaluate(key, ctx), float64(def), "number")
	if r.Value == nil {
		return def, r
	}
	return int64(f), r
}

// Object evaluates an object flag; see Bool for the fallbacks. The returned
// map is the caller's to modify.
func (s *Snapshot) Object(key string, ctx EvalContext, def map[string]any) (map[string]any, Result) {
	return typed(s.Evaluate(key, ctx), def, "object")
}

func typed[T any](r Result, def T, want string) (T, Result) {
	if r.Value == nil {
		return def, r
	}
	v, ok := r.Value.(T)
	if !ok {
		msg := fmt.Sprintf("variant %q is %T, not a %s", r.Variant, r.Value, want)
		return def, Result{Reason: ReasonError, ErrorCode: ErrorTypeMismatch, ErrorMessage: msg, FlagMetadata: r.FlagMetadata}
	}
	return v, r
}
