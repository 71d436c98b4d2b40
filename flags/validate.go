package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/acme/platform/internal/validation"
)

// Field error codes.
const (
	CodeRequired       = "required"        // a required field is missing or empty
	CodeInvalid        = "invalid"         // wrong type, wrong shape or not allowed
	CodeOutOfRange     = "out_of_range"    // a number outside its allowed range
	CodeTypeMismatch   = "type_mismatch"   // a variant whose type differs from the others
	CodeUnknownVariant = "unknown_variant" // a name that is not one of the flag's variants
	CodeUnknownRef     = "unknown_ref"     // a $ref to an evaluator that does not exist
	CodeTooLarge       = "too_large"       // over a size limit (limits.go)
	CodeTooDeep        = "too_deep"        // nested deeper than a limit (limits.go)
	CodeTooComplex     = "too_complex"     // may go over the evaluation budget
)

// ValidationError lists everything wrong with a flag definition or file.
type ValidationError struct {
	// Key is the flag key, or empty for a whole file.
	Key string `json:"key,omitempty"`
	// Errors are sorted by pointer.
	Errors []validation.FieldError `json:"errors"`
}

// Error lists every field error on one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	if e.Key == "" {
		return "invalid flag file: " + strings.Join(parts, "; ")
	}
	return fmt.Sprintf("invalid flag %q: %s", e.Key, strings.Join(parts, "; "))
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// maxSafeInteger is the largest integer a JSON number holds exactly in every
// provider language; flagd's schema refuses larger numeric variants.
const maxSafeInteger = 1<<53 - 1

// Validate checks a flag definition against flagd's rules and the platform's
// key format. The definition may not use $ref, since it has no evaluators;
// use ValidateRaw or File.Validate for that. It returns nil or a
// *ValidationError.
func Validate(key string, def Flag) error {
	raw, errs := flagJSON(def)
	if len(errs) > 0 {
		return newValidationError(key, errs)
	}
	return ValidateRaw(key, raw, nil)
}

// ValidateRaw checks a flag definition given as JSON, with the evaluators
// its targeting may reference. Pointers are relative to the definition.
// The evaluators' own bodies are checked by ValidateFile.
func ValidateRaw(key string, raw []byte, evaluators map[string]json.RawMessage) error {
	v := validator{evaluators: decodeEvaluators(evaluators), known: names(evaluators), work: new(int)}
	v.checkKey(key, "#")
	if v.checkSize(raw, "#") {
		v.checkFlag(raw, "#")
	}
	return newValidationError(key, v.errs)
}

// Validate checks every flag, evaluator and the metadata of the file.
// Pointers are relative to the file.
func (f File) Validate() error {
	raw, err := f.Marshal()
	if err != nil {
		return &ValidationError{Errors: []validation.FieldError{{Pointer: "#", Code: CodeInvalid, Detail: err.Error()}}}
	}
	return ValidateFile(raw)
}

// ValidateFile checks a flagd file given as JSON, so that every problem,
// including a field of the wrong JSON type, comes back with a pointer.
func ValidateFile(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return &ValidationError{Errors: []validation.FieldError{{Pointer: "#", Code: CodeInvalid, Detail: "a flag file must be a JSON object"}}}
	}
	var evaluators map[string]json.RawMessage
	v := validator{work: new(int)}
	if raw, ok := top["$evaluators"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &evaluators) != nil {
			v.add("#/$evaluators", CodeInvalid, "$evaluators must be an object")
		}
	}
	v.evaluators, v.known = decodeEvaluators(evaluators), names(evaluators)
	v.checkEvaluators(evaluators)
	v.checkMetadata(top["metadata"], "#/metadata")
	v.checkFlags(top["flags"])
	return newValidationError("", v.errs)
}

func newValidationError(key string, errs []validation.FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b validation.FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
	return &ValidationError{Key: key, Errors: errs}
}

// flagJSON encodes a Flag for ValidateRaw. Fields at their zero value are
// left out, so that they are reported as missing rather than as invalid.
func flagJSON(def Flag) ([]byte, []validation.FieldError) {
	var errs []validation.FieldError
	fields := map[string]any{}
	if def.State != "" {
		fields["state"] = def.State
	}
	if def.Variants != nil {
		for name, raw := range def.Variants {
			if !json.Valid(raw) {
				errs = append(errs, validation.FieldError{Pointer: pointer("#/variants", name), Code: CodeInvalid, Detail: "variant value is not valid JSON"})
			}
		}
		fields["variants"] = def.Variants
	}
	if def.DefaultVariant != "" {
		fields["defaultVariant"] = def.DefaultVariant
	}
	if t := trimNull(def.Targeting); t != nil {
		if !json.Valid(t) {
			errs = append(errs, validation.FieldError{Pointer: "#/targeting", Code: CodeInvalid, Detail: "targeting is not valid JSON"})
		}
		fields["targeting"] = t
	}
	if def.Metadata != nil {
		fields["metadata"] = def.Metadata
	}
	if len(errs) > 0 {
		return nil, errs
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, []validation.FieldError{{Pointer: "#/metadata", Code: CodeInvalid, Detail: err.Error()}}
	}
	return raw, nil
}

func names(m map[string]json.RawMessage) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// validator accumulates field errors.
type validator struct {
	errs       []validation.FieldError
	evaluators map[string]any  // decoded bodies
	known      map[string]bool // evaluator names, including undecodable ones
	variants   map[string]bool // the current flag's variant names; nil when unknown
	// work counts the operations checked in one targeting rule, shared with
	// the validators that checkRef starts, so that $ref cannot make checking
	// exponential: past maxRefNodes, checkRef stops expanding (the rule is
	// refused for its size anyway).
	work *int
}

func (v *validator) add(ptr, code, format string, args ...any) {
	v.errs = append(v.errs, validation.FieldError{Pointer: ptr, Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (v *validator) checkKey(key, ptr string) {
	if !keyPattern.MatchString(key) {
		v.add(ptr, CodeInvalid, "flag key %q must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'", key)
	}
}

func (v *validator) checkFlags(raw json.RawMessage) {
	if raw == nil || isNull(raw) {
		v.add("#/flags", CodeRequired, "a flag file needs a \"flags\" object")
		return
	}
	var flags map[string]json.RawMessage
	if json.Unmarshal(raw, &flags) != nil {
		v.add("#/flags", CodeInvalid, "\"flags\" must be an object")
		return
	}
	for _, key := range sortedKeys(flags) {
		ptr := pointer("#/flags", key)
		v.checkKey(key, ptr)
		if v.checkSize(flags[key], ptr) {
			v.checkFlag(flags[key], ptr)
		}
	}
}

func (v *validator) checkEvaluators(evaluators map[string]json.RawMessage) {
	v.variants = nil // evaluators are shared: their results are checked where used
	for _, name := range sortedKeys(evaluators) {
		ptr := pointer("#/$evaluators", name)
		rule, err := decodeRule(evaluators[name])
		if err != nil {
			v.add(ptr, CodeInvalid, "evaluator is not valid JSON")
			continue
		}
		if m, ok := rule.(map[string]any); !ok || len(m) == 0 {
			v.add(ptr, CodeInvalid, "an evaluator must be a non-empty JSONLogic object")
			continue
		}
		v.checkRule(rule, ptr, false, 0) // limits: where a flag uses it
	}
}

// checkFlag validates one definition; ptr points at it.
func (v *validator) checkFlag(raw json.RawMessage, ptr string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		v.add(ptr, CodeInvalid, "a flag definition must be a JSON object")
		return
	}
	v.checkState(fields["state"], ptr+"/state")
	v.variants = v.checkVariants(fields["variants"], fields["defaultVariant"], ptr+"/variants")
	v.checkDefaultVariant(fields["defaultVariant"], ptr+"/defaultVariant")
	v.checkMetadata(fields["metadata"], ptr+"/metadata")
	v.checkTargeting(fields["targeting"], ptr+"/targeting")
}

func (v *validator) checkState(raw json.RawMessage, ptr string) {
	if raw == nil {
		v.add(ptr, CodeRequired, "state is required (ENABLED or DISABLED)")
		return
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || (s != StateEnabled && s != StateDisabled) {
		v.add(ptr, CodeInvalid, "state must be \"ENABLED\" or \"DISABLED\", not %s", raw)
	}
}

// checkVariants checks the variants object and returns the variant names,
// or nil when the object is unusable.
func (v *validator) checkVariants(raw, defRaw json.RawMessage, ptr string) map[string]bool {
	if raw == nil || isNull(raw) {
		v.add(ptr, CodeRequired, "variants are required")
		return nil
	}
	var variants map[string]json.RawMessage
	if json.Unmarshal(raw, &variants) != nil {
		v.add(ptr, CodeInvalid, "variants must be an object")
		return nil
	}
	if len(variants) == 0 {
		v.add(ptr, CodeRequired, "a flag needs at least one variant")
		return nil
	}
	kinds := map[string]string{}
	for _, name := range sortedKeys(variants) {
		vp := pointer(ptr, name)
		if name == "" {
			v.add(vp, CodeInvalid, "variant names must not be empty")
		}
		if kind := v.variantKind(variants[name], vp); kind != "" {
			kinds[name] = kind
		}
	}
	v.checkVariantTypes(kinds, defRaw, ptr)
	return names(variants)
}

// variantKind reports a variant's JSON type, or "" after reporting it as
// unusable.
func (v *validator) variantKind(raw json.RawMessage, ptr string) string {
	var val any
	if json.Unmarshal(raw, &val) != nil {
		v.add(ptr, CodeInvalid, "variant value is not valid JSON")
		return ""
	}
	switch x := val.(type) {
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if math.Abs(x) > maxSafeInteger {
			v.add(ptr, CodeOutOfRange, "number %s is outside ±(2^53-1)", raw)
		}
		return "number"
	case map[string]any:
		return "object"
	}
	v.add(ptr, CodeInvalid, "variant values must be booleans, strings, numbers or objects, not %s", raw)
	return ""
}

// checkVariantTypes requires one type for all variants. The default
// variant's type wins; without one, the type of the first variant by name.
func (v *validator) checkVariantTypes(kinds map[string]string, defRaw json.RawMessage, ptr string) {
	names := sortedKeys(kinds)
	if len(names) == 0 {
		return
	}
	want := kinds[names[0]]
	var def string
	if json.Unmarshal(defRaw, &def) == nil && kinds[def] != "" {
		want = kinds[def]
	}
	for _, name := range names {
		if kinds[name] != want {
			v.add(pointer(ptr, name), CodeTypeMismatch,
				"variant is a %s but the flag's variants are %ss; all variants must have one type", kinds[name], want)
		}
	}
}

func (v *validator) checkDefaultVariant(raw json.RawMessage, ptr string) {
	if raw == nil || isNull(raw) {
		return // flagd: no default variant means the caller's code default
	}
	var name string
	if json.Unmarshal(raw, &name) != nil || name == "" {
		v.add(ptr, CodeInvalid, "defaultVariant must be a variant name or null, not %s", raw)
		return
	}
	if v.variants != nil && !v.variants[name] {
		v.add(ptr, CodeUnknownVariant, "defaultVariant %q is not one of the variants", name)
	}
}

func (v *validator) checkMetadata(raw json.RawMessage, ptr string) {
	if raw == nil || isNull(raw) {
		return
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(raw, &meta) != nil {
		v.add(ptr, CodeInvalid, "metadata must be an object")
		return
	}
	for _, k := range sortedKeys(meta) {
		var val any
		_ = json.Unmarshal(meta[k], &val)
		switch val.(type) {
		case string, float64, bool:
		default:
			v.add(pointer(ptr, k), CodeInvalid, "metadata values must be strings, numbers or booleans, not %s", meta[k])
		}
	}
}

func (v *validator) checkTargeting(raw json.RawMessage, ptr string) {
	if raw == nil || isNull(raw) {
		return
	}
	rule, err := decodeRule(raw)
	if err != nil {
		v.add(ptr, CodeInvalid, "targeting is not valid JSON")
		return
	}
	if _, ok := rule.(map[string]any); !ok {
		v.add(ptr, CodeInvalid, "targeting must be a JSONLogic object")
		return
	}
	*v.work = 0
	v.checkRule(rule, ptr, true, 0)
	v.checkLimits(rule, ptr)
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pointer appends one reference token to a JSON pointer, escaped per RFC 6901.
func pointer(base, token string) string {
	token = strings.ReplaceAll(token, "~", "~0")
	token = strings.ReplaceAll(token, "/", "~1")
	return base + "/" + token
}
