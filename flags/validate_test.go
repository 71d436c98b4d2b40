package flags

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// codes returns "pointer code" pairs from a validation error.
func codes(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var out []string
	for _, fe := range ve.Errors {
		out = append(out, fe.Pointer+" "+fe.Code)
	}
	return out
}

var evaluators = map[string]json.RawMessage{
	"isAdmin": json.RawMessage(`{"==": [{"var": "role"}, "admin"]}`),
	"pick":    json.RawMessage(`{"if": [{"var": "x"}, "on", "purple"]}`),
}

// TestValidateRawReportsPointers checks each rule with a minimal bad
// definition.
func TestValidateRawReportsPointers(t *testing.T) {
	tests := []struct {
		name string
		key  string
		def  string
		want []string
	}{
		{"valid boolean flag", "ok", `{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}`, nil},
		{"valid with targeting and metadata", "ok", `{"state": "DISABLED", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a",
			"metadata": {"owner": "me", "version": 3, "beta": true},
			"targeting": {"if": [{"$ref": "isAdmin"}, {"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]}, null]}}`, nil},
		{"null default variant is allowed", "ok", `{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": null}`, nil},
		{"absent default variant is allowed", "ok", `{"state": "ENABLED", "variants": {"on": true}}`, nil},
		{"empty targeting is allowed", "ok", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {}}`, nil},
		{"not an object", "ok", `[1]`, []string{"# invalid"}},
		{"bad key", "no spaces", `{"state": "ENABLED", "variants": {"on": true}}`, []string{"# invalid"}},
		{"key too long", strings.Repeat("k", 129), `{"state": "ENABLED", "variants": {"on": true}}`, []string{"# invalid"}},
		{"missing state", "f", `{"variants": {"on": true}}`, []string{"#/state required"}},
		{"wrong state", "f", `{"state": "ON", "variants": {"on": true}}`, []string{"#/state invalid"}},
		{"missing variants", "f", `{"state": "ENABLED"}`, []string{"#/variants required"}},
		{"empty variants", "f", `{"state": "ENABLED", "variants": {}}`, []string{"#/variants required"}},
		{"variants not an object", "f", `{"state": "ENABLED", "variants": [true]}`, []string{"#/variants invalid"}},
		{"mixed variant types", "f", `{"state": "ENABLED", "variants": {"on": true, "off": "false"}, "defaultVariant": "on"}`, []string{"#/variants/off type_mismatch"}},
		{"array variant", "f", `{"state": "ENABLED", "variants": {"list": [1]}}`, []string{"#/variants/list invalid"}},
		{"null variant", "f", `{"state": "ENABLED", "variants": {"n": null}}`, []string{"#/variants/n invalid"}},
		{"unsafe integer variant", "f", `{"state": "ENABLED", "variants": {"big": 9007199254740993}}`, []string{"#/variants/big out_of_range"}},
		{"variant name with slash is escaped", "f", `{"state": "ENABLED", "variants": {"a/b": 1, "c": "x"}, "defaultVariant": "c"}`, []string{"#/variants/a~1b type_mismatch"}},
		{"default variant not a variant", "f", `{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "off"}`, []string{"#/defaultVariant unknown_variant"}},
		{"default variant not a string", "f", `{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": 1}`, []string{"#/defaultVariant invalid"}},
		{"metadata not primitive", "f", `{"state": "ENABLED", "variants": {"on": true}, "metadata": {"o": {"x": 1}}}`, []string{"#/metadata/o invalid"}},
		{"targeting not an object", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": "on"}`, []string{"#/targeting invalid"}},
		{"unknown operator", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"nope": [1]}, "on", null]}}`, []string{"#/targeting/if/0 invalid"}},
		{"two keys in an operation", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [], "var": "x"}}`, []string{"#/targeting invalid"}},
		{"unknown $ref", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"$ref": "missing"}, "on", null]}}`, []string{"#/targeting/if/0/$ref unknown_ref"}},
		{"targeting returns an unknown variant", "f", `{"state": "ENABLED", "variants": {"on": true, "off": false}, "targeting": {"if": [{"var": "x"}, "on", "of"]}}`, []string{"#/targeting/if/2 unknown_variant"}},
		{"boolean result without a true variant", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"var": "x"}, true, null]}}`, []string{"#/targeting/if/1 unknown_variant"}},
		{"strings in conditions are not results", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"==": [{"var": "x"}, "zzz"]}, "on", null]}}`, nil},
		{"evaluator returns an unknown variant", "f", `{"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "pick"}}`, []string{"#/targeting/$ref unknown_variant"}},
		{"fractional unknown variant", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"fractional": [["a", 50], ["z", 50]]}}`, []string{"#/targeting/fractional/1/0 unknown_variant"}},
		{"fractional decimal weight", "f", `{"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [["a", 50.5], ["b", 49.5]]}}`,
			[]string{"#/targeting/fractional/0/1 invalid", "#/targeting/fractional/1/1 invalid"}},
		{"fractional negative weight", "f", `{"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [["a", -1], ["b", 1]]}}`, []string{"#/targeting/fractional/0/1 out_of_range"}},
		{"fractional zero weights", "f", `{"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [["a", 0], ["b", 0]]}}`, []string{"#/targeting/fractional out_of_range"}},
		{"fractional weight sum too large", "f", `{"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [["a", 2147483647], ["b", 1]]}}`, []string{"#/targeting/fractional out_of_range"}},
		{"fractional bad bucketing", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"fractional": [1, ["a", 1]]}}`, []string{"#/targeting/fractional/0 invalid"}},
		{"fractional without buckets", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"fractional": [{"var": "email"}]}}`, []string{"#/targeting/fractional invalid"}},
		{"fractional bucket too long", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"fractional": [["a", 1, 2]]}}`, []string{"#/targeting/fractional/0 invalid"}},
		{"fractional nested rules are allowed", "f", `{"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [[{"var": "v"}, 1], ["b", {"if": [true, 1, 0]}]]}}`, nil},
		{"fractional as a condition may use booleans", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"fractional": [[false, 0], [true, 100]]}, "a", null]}}`, nil},
		{"sem_ver bad operator", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"sem_ver": [{"var": "v"}, "===", "1.0.0"]}, "a", null]}}`, []string{"#/targeting/if/0/sem_ver/1 invalid"}},
		{"sem_ver bad version", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"sem_ver": [{"var": "v"}, ">", "1.0.0.0"]}, "a", null]}}`, []string{"#/targeting/if/0/sem_ver/2 invalid"}},
		{"sem_ver arity", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"sem_ver": [{"var": "v"}, ">"]}, "a", null]}}`, []string{"#/targeting/if/0/sem_ver invalid"}},
		{"starts_with number", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"starts_with": [{"var": "v"}, 3]}, "a", null]}}`, []string{"#/targeting/if/0/starts_with/1 invalid"}},
		{"ends_with arity", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"ends_with": ["x"]}, "a", null]}}`, []string{"#/targeting/if/0/ends_with invalid"}},
		{"unknown $flagd property", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"var": "$flagd.user"}, "a", null]}}`, []string{"#/targeting/if/0/var invalid"}},
		{"if without operands", "f", `{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": []}}`, []string{"#/targeting/if invalid"}},
		{"several problems at once", "f", `{"state": "on", "variants": {"a": 1, "b": "x"}, "defaultVariant": "c"}`,
			[]string{"#/defaultVariant unknown_variant", "#/state invalid", "#/variants/b type_mismatch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codes(t, ValidateRaw(tt.key, []byte(tt.def), evaluators))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateChecksFlagStructs covers the Flag form, where zero values mean
// "absent".
func TestValidateChecksFlagStructs(t *testing.T) {
	good := Flag{State: StateEnabled, Variants: map[string]json.RawMessage{"on": raw(t, true), "off": raw(t, false)}, DefaultVariant: "on"}
	tests := []struct {
		name string
		def  Flag
		want []string
	}{
		{"valid", good, nil},
		{"zero state is missing", Flag{Variants: good.Variants}, []string{"#/state required"}},
		{"nil variants are missing", Flag{State: StateEnabled}, []string{"#/variants required"}},
		{"invalid raw variant", Flag{State: StateEnabled, Variants: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}, []string{"#/variants/x invalid"}},
		{"invalid raw targeting", Flag{State: StateEnabled, Variants: good.Variants, Targeting: json.RawMessage(`{"if"`)}, []string{"#/targeting invalid"}},
		{"$ref without evaluators", Flag{State: StateEnabled, Variants: good.Variants, Targeting: json.RawMessage(`{"$ref": "x"}`)}, []string{"#/targeting/$ref unknown_ref"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, codes(t, Validate("f", tt.def))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateFileReportsFilePointers checks whole files, including the
// evaluators and flag-set metadata.
func TestValidateFileReportsFilePointers(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"documentation examples are valid", exampleFlagsWithoutEdgeCases, nil},
		{"not an object", `[]`, []string{"# invalid"}},
		{"missing flags", `{}`, []string{"#/flags required"}},
		{"flags not an object", `{"flags": []}`, []string{"#/flags invalid"}},
		{"bad flag inside the file", `{"flags": {"a b": {"state": "ENABLED", "variants": {}}}}`, []string{"#/flags/a b invalid", "#/flags/a b/variants required"}},
		{"bad evaluator", `{"flags": {}, "$evaluators": {"e": {"nope": 1}, "empty": {}}}`, []string{"#/$evaluators/e invalid", "#/$evaluators/empty invalid"}},
		{"bad set metadata", `{"flags": {}, "metadata": {"x": [1]}}`, []string{"#/metadata/x invalid"}},
		{"wrong field type", `{"flags": {"f": {"state": 1, "variants": {"a": 1}}}}`, []string{"#/flags/f/state invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, codes(t, ValidateFile([]byte(tt.file)))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// exampleFlagsWithoutEdgeCases is a valid file in flagd's documented style.
const exampleFlagsWithoutEdgeCases = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"team": "growth"},
  "flags": {
    "myBoolFlag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "headerColor": {
      "state": "ENABLED",
      "variants": {"red": "#FF0000", "blue": "#0000FF", "green": "#00FF00", "yellow": "#FFFF00"},
      "defaultVariant": "red",
      "targeting": {"if": [{"$ref": "emailWithFaas"}, {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]]}, null]}
    },
    "app-version": {
      "state": "ENABLED",
      "variants": {"new": true, "old": false},
      "defaultVariant": "old",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "1.0.0"]}, "new", "old"]}
    }
  },
  "$evaluators": {"emailWithFaas": {"in": ["@faas.com", {"var": ["email"]}]}}
}`

// TestValidationErrorMessageNamesTheFlag checks the error text.
func TestValidationErrorMessageNamesTheFlag(t *testing.T) {
	err := ValidateRaw("f", []byte(`{"variants": {"on": true}}`), nil)
	want := `invalid flag "f": #/state: required: state is required (ENABLED or DISABLED)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// FuzzValidate feeds arbitrary definitions to the validator and the
// compiler; neither may panic, and a definition that validates must
// evaluate without PARSE_ERROR.
func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}`,
		`{"state": "ENABLED", "variants": {"a": "x"}, "targeting": {"fractional": [["a", 1]]}}`,
		`{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"sem_ver": [{"var": "v"}, "^", "1"]}, "a", null]}}`,
		`{"state": "ENABLED", "variants": {"a": 1}, "targeting": {"$ref": "isAdmin"}}`,
		`{"targeting": {"if": [{"$ref": "pick"}, {"fractional": [[{"if": []}, {"var": 1}]]}]}}`,
		`{"variants": {"": [], "~/": {"a": null}}, "metadata": [], "defaultVariant": {}}`,
		`null`, `[]`, `{"state": "DISABLED", "variants": {"a": 1e400}}`,
	}
	for _, s := range seeds {
		f.Add("flag", []byte(s))
	}
	f.Fuzz(func(t *testing.T, key string, def []byte) {
		err := ValidateRaw(key, def, evaluators)
		var parsed Flag
		if json.Unmarshal(def, &parsed) != nil {
			return
		}
		s := newSnapshot(File{Flags: map[string]Flag{key: parsed}, Evaluators: evaluators}, clock)
		r := s.Evaluate(key, EvalContext{TargetingKey: "u", Attributes: attrs("v", "1.2.3", "x", 1.0)})
		if err == nil && r.ErrorCode == ErrorParse {
			t.Errorf("valid definition %s evaluates to PARSE_ERROR: %s", def, r.ErrorMessage)
		}
	})
}
