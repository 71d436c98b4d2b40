package flags

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// exampleFlags gathers the examples of flagd's documentation (flag
// definitions, custom operations, shared evaluators) and the edge cases of
// its conformance suite.
const exampleFlags = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"team": "growth", "flagSetId": "shop"},
  "flags": {
    "myBoolFlag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "myStringFlag": {"state": "ENABLED", "variants": {"key1": "val1", "key2": "val2"}, "defaultVariant": "key1"},
    "myFloatFlag": {"state": "ENABLED", "variants": {"one": 1.23, "two": 2.34}, "defaultVariant": "one"},
    "myIntFlag": {"state": "ENABLED", "variants": {"one": 1, "two": 2}, "defaultVariant": "one"},
    "myObjectFlag": {"state": "ENABLED", "variants": {"object1": {"key": "val"}, "object2": {"key": true}}, "defaultVariant": "object1"},
    "disabledFlag": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "new-welcome-banner": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
      "metadata": {"version": "17", "team": "web"}
    },
    "boolean-shorthand": {
      "state": "ENABLED",
      "variants": {"true": true, "false": false},
      "defaultVariant": "false",
      "targeting": {"ends_with": [{"var": "email"}, "@example.com"]}
    },
    "color": {
      "state": "ENABLED",
      "variants": {"red": "#FF0000", "blue": "#0000FF", "green": "#00FF00", "yellow": "#FFFF00"},
      "defaultVariant": "red",
      "targeting": {"if": [{"$ref": "emailWithFaas"}, {"fractional": [{"var": "email"}, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]]}, null]}
    },
    "fibAlgo": {
      "state": "ENABLED",
      "variants": {"recursive": "recursive", "memo": "memo", "loop": "loop", "binet": "binet"},
      "defaultVariant": "recursive",
      "targeting": {"if": [{"$ref": "emailWithFaas"}, "binet", null]}
    },
    "privileged": {
      "state": "ENABLED",
      "variants": {"privileged": "privileged", "standard": "standard", "none": "none"},
      "defaultVariant": "none",
      "targeting": {"if": [{"$ref": "isPrivileged"}, "privileged", "standard"]}
    },
    "starts-ends-flag": {
      "state": "ENABLED",
      "variants": {"prefix": "prefix", "postfix": "postfix", "none": "none"},
      "defaultVariant": "none",
      "targeting": {"if": [{"starts_with": [{"var": "id"}, "abc"]}, "prefix",
        {"if": [{"ends_with": [{"var": "id"}, "xyz"]}, "postfix", "none"]}]}
    },
    "version-flag": {
      "state": "ENABLED",
      "variants": {"equal": "equal", "greater": "greater", "lesser": "lesser", "none": "none"},
      "defaultVariant": "none",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "2.0.0"]}, "equal",
        {"if": [{"sem_ver": [{"var": "version"}, ">", "2.0.0"]}, "greater",
          {"if": [{"sem_ver": [{"var": "version"}, "<", "2.0.0"]}, "lesser", "none"]}]}]}
    },
    "major-minor-flag": {
      "state": "ENABLED",
      "variants": {"minor": "minor", "major": "major", "none": "none"},
      "defaultVariant": "none",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "~", "3.0.0"]}, "minor",
        {"if": [{"sem_ver": [{"var": "version"}, "^", "3.0.0"]}, "major", "none"]}]}
    },
    "semver-v-prefix": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "v1.0.0"]}, "match", "no-match"]}},
    "semver-partial": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "^", "1"]}, "match", "no-match"]}},
    "semver-build": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "1.0.0+build"]}, "match", "no-match"]}},
    "semver-invalid": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "1.0.0"]}, "true", "false"]}},
    "semver-bad-operator": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "===", "1.0.0"]}, "true", "false"]}},
    "starts-with-number": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"starts_with": [{"var": "num"}, "abc"]}, "true", "false"]}},
    "ends-with-one-arg": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"ends_with": ["xyz"]}, "true", "false"]}},
    "targeting-key-flag": {
      "state": "ENABLED",
      "variants": {"miss": "miss", "hit": "hit"},
      "defaultVariant": "miss",
      "targeting": {"if": [{"==": [{"var": "targetingKey"}, "5c3d8535-f81a-4478-a6d3-afaa4d51199e"]}, "hit", null]}
    },
    "flagd-context-aware": {
      "state": "ENABLED",
      "variants": {"INTERNAL": "INTERNAL", "EXTERNAL": "EXTERNAL"},
      "defaultVariant": "EXTERNAL",
      "targeting": {"if": [{"==": [{"var": "$flagd.flagKey"}, "flagd-context-aware"]}, "INTERNAL", "EXTERNAL"]}
    },
    "timestamp-flag": {
      "state": "ENABLED",
      "variants": {"past": -1, "future": 1, "none": 0},
      "defaultVariant": "none",
      "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, {"var": "time"}]}, "past",
        {"if": [{"<": [{"var": "$flagd.timestamp"}, {"var": "time"}]}, "future", "none"]}]}
    },
    "targeting-null-variant-flag": {"state": "ENABLED", "variants": {"one": 1, "two": 2}, "defaultVariant": "two",
      "targeting": {"if": [true, null, "one"]}},
    "error-targeting-flag": {"state": "ENABLED", "variants": {"one": 1, "two": 2}, "defaultVariant": "two",
      "targeting": {"invalid": ["this is not valid targeting"]}},
    "missing-variant-targeting-flag": {"state": "ENABLED", "variants": {"one": 1, "two": 2}, "defaultVariant": "two",
      "targeting": {"if": [true, "three", "one"]}},
    "non-string-variant-targeting-flag": {"state": "ENABLED", "variants": {"false": 1, "true": 2}, "defaultVariant": "false",
      "targeting": {"if": [true, true, false]}},
    "empty-targeting-flag": {"state": "ENABLED", "variants": {"false": 1, "true": 2}, "defaultVariant": "false", "targeting": {}},
    "ref-to-nonexistent-evaluator-flag": {"state": "ENABLED", "variants": {"hit": "hit", "miss": "miss"}, "defaultVariant": "miss",
      "targeting": {"if": [{"$ref": "nonexistent_evaluator"}, "hit", "miss"]}},
    "null-default-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
    "undefined-default-flag": {"state": "ENABLED", "variants": {"small": 10, "big": 1000}},
    "no-default-targeted": {"state": "ENABLED", "variants": {"normal": "CFO", "special": "CEO"},
      "targeting": {"if": [{"==": ["jobs@orange.com", {"var": ["email"]}]}, "special", null]}},
    "disabled-no-default": {"state": "DISABLED", "variants": {"on": true, "off": false}}
  },
  "$evaluators": {
    "emailWithFaas": {"in": ["@faas.com", {"var": ["email"]}]},
    "isBallmer": {"==": ["ballmer@macrosoft.com", {"var": ["email"]}]},
    "isPrivileged": {"or": [{"$ref": "isBallmer"}, {"==": ["admin", {"var": ["role"]}]}]}
  }
}`

// TestEvaluateFollowsFlagdSemantics runs every example on both paths: the
// fast path and the JSONLogic library.
func TestEvaluateFollowsFlagdSemantics(t *testing.T) {
	noMeta := cmpopts.IgnoreFields(Result{}, "ErrorMessage", "FlagMetadata")
	email := func(e string) EvalContext { return EvalContext{Attributes: attrs("email", e)} }
	version := func(v any) EvalContext { return EvalContext{Attributes: attrs("version", v)} }
	ok := func(value any, variant, reason string) Result {
		return Result{Value: value, Variant: variant, Reason: reason}
	}
	fail := func(code string) Result { return Result{Reason: ReasonError, ErrorCode: code} }
	tests := []struct {
		name string
		flag string
		ctx  EvalContext
		want Result
	}{
		{"static boolean flag", "myBoolFlag", EvalContext{}, ok(true, "on", ReasonStatic)},
		{"static string flag", "myStringFlag", EvalContext{}, ok("val1", "key1", ReasonStatic)},
		{"static float flag", "myFloatFlag", EvalContext{}, ok(1.23, "one", ReasonStatic)},
		{"static object flag", "myObjectFlag", EvalContext{}, ok(map[string]any{"key": "val"}, "object1", ReasonStatic)},
		{"unknown flag", "nope", EvalContext{}, fail(ErrorFlagNotFound)},
		{"disabled flag defers to the code default", "disabledFlag", EvalContext{}, Result{Reason: ReasonDisabled}},
		{"disabled flag without default", "disabled-no-default", EvalContext{}, Result{Reason: ReasonDisabled}},
		{"ends_with matches", "new-welcome-banner", email("me@example.com"), ok(true, "on", ReasonTargetingMatch)},
		{"ends_with misses", "new-welcome-banner", email("me@example.org"), ok(false, "off", ReasonTargetingMatch)},
		{"ends_with without the attribute", "new-welcome-banner", EvalContext{}, ok(false, "off", ReasonDefault)},
		{"boolean result selects the true variant", "boolean-shorthand", email("a@example.com"), ok(true, "true", ReasonTargetingMatch)},
		{"boolean result selects the false variant", "boolean-shorthand", email("a@b.org"), ok(false, "false", ReasonTargetingMatch)},
		{"$ref and fractional give SPLIT", "color", email("someone@faas.com"), ok("#FFFF00", "yellow", ReasonSplit)},
		{"$ref condition false returns null", "color", email("someone@other.com"), ok("#FF0000", "red", ReasonDefault)},
		{"$ref match", "fibAlgo", email("x@faas.com"), ok("binet", "binet", ReasonTargetingMatch)},
		{"$ref miss", "fibAlgo", email("x@y.com"), ok("recursive", "recursive", ReasonDefault)},
		{"nested $ref", "privileged", email("ballmer@macrosoft.com"), ok("privileged", "privileged", ReasonTargetingMatch)},
		{"nested $ref other branch", "privileged", EvalContext{Attributes: attrs("role", "admin")}, ok("privileged", "privileged", ReasonTargetingMatch)},
		{"nested $ref miss", "privileged", EvalContext{Attributes: attrs("role", "dev")}, ok("standard", "standard", ReasonTargetingMatch)},
		{"starts_with", "starts-ends-flag", EvalContext{Attributes: attrs("id", "abcdef")}, ok("prefix", "prefix", ReasonTargetingMatch)},
		{"ends_with", "starts-ends-flag", EvalContext{Attributes: attrs("id", "uvwxyz")}, ok("postfix", "postfix", ReasonTargetingMatch)},
		{"starts_with first", "starts-ends-flag", EvalContext{Attributes: attrs("id", "abcxyz")}, ok("prefix", "prefix", ReasonTargetingMatch)},
		{"neither", "starts-ends-flag", EvalContext{Attributes: attrs("id", "lmnopq")}, ok("none", "none", ReasonTargetingMatch)},
		{"sem_ver equal", "version-flag", version("2.0.0"), ok("equal", "equal", ReasonTargetingMatch)},
		{"sem_ver greater", "version-flag", version("2.1.0"), ok("greater", "greater", ReasonTargetingMatch)},
		{"sem_ver lesser", "version-flag", version("1.9.0"), ok("lesser", "lesser", ReasonTargetingMatch)},
		{"sem_ver pre-release is lesser", "version-flag", version("2.0.0-alpha"), ok("lesser", "lesser", ReasonTargetingMatch)},
		{"sem_ver four parts is not a version", "version-flag", version("2.0.0.0"), ok("none", "none", ReasonDefault)},
		{"sem_ver ~ same minor", "major-minor-flag", version("3.0.1"), ok("minor", "minor", ReasonTargetingMatch)},
		{"sem_ver ^ same major", "major-minor-flag", version("3.1.0"), ok("major", "major", ReasonTargetingMatch)},
		{"sem_ver other major", "major-minor-flag", version("4.0.0"), ok("none", "none", ReasonTargetingMatch)},
		{"sem_ver v prefix", "semver-v-prefix", version("v1.0.0"), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver V prefix", "semver-v-prefix", version("V1.0.0"), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver bare version against v prefix", "semver-v-prefix", version("1.0.0"), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver partial version", "semver-partial", version("1.0"), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver numeric version", "semver-partial", version(1), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver partial version other major", "semver-partial", version("2.0.0"), ok("no-match", "no-match", ReasonTargetingMatch)},
		{"sem_ver ignores build metadata", "semver-build", version("1.0.0+other"), ok("match", "match", ReasonTargetingMatch)},
		{"sem_ver invalid version falls back", "semver-invalid", version("not-a-version"), ok("fallback", "fallback", ReasonDefault)},
		{"sem_ver invalid operator falls back", "semver-bad-operator", version("1.0.0"), ok("fallback", "fallback", ReasonDefault)},
		{"starts_with on a number falls back", "starts-with-number", EvalContext{Attributes: attrs("num", 123)}, ok("fallback", "fallback", ReasonDefault)},
		{"ends_with with one operand falls back", "ends-with-one-arg", EvalContext{}, ok("fallback", "fallback", ReasonDefault)},
		{"targeting key hit", "targeting-key-flag", EvalContext{TargetingKey: "5c3d8535-f81a-4478-a6d3-afaa4d51199e"}, ok("hit", "hit", ReasonTargetingMatch)},
		{"targeting key miss", "targeting-key-flag", EvalContext{TargetingKey: "f20bd32d-703b-48b6-bc8e-79d53c85134a"}, ok("miss", "miss", ReasonDefault)},
		{"targeting key as attribute", "targeting-key-flag", EvalContext{Attributes: attrs("targetingKey", "5c3d8535-f81a-4478-a6d3-afaa4d51199e")}, ok("hit", "hit", ReasonTargetingMatch)},
		{"$flagd.flagKey is injected", "flagd-context-aware", EvalContext{}, ok("INTERNAL", "INTERNAL", ReasonTargetingMatch)},
		{"$flagd.flagKey cannot be overridden", "flagd-context-aware", EvalContext{Attributes: attrs("$flagd", map[string]any{"flagKey": "x"})}, ok("INTERNAL", "INTERNAL", ReasonTargetingMatch)},
		{"$flagd.timestamp after time", "timestamp-flag", EvalContext{Attributes: attrs("time", 1)}, ok(-1.0, "past", ReasonTargetingMatch)},
		{"$flagd.timestamp before time", "timestamp-flag", EvalContext{Attributes: attrs("time", int64(4133980802))}, ok(1.0, "future", ReasonTargetingMatch)},
		{"targeting returns null", "targeting-null-variant-flag", EvalContext{}, ok(2.0, "two", ReasonDefault)},
		{"unknown operator", "error-targeting-flag", EvalContext{}, fail(ErrorParse)},
		{"targeting returns a non-variant", "missing-variant-targeting-flag", EvalContext{}, fail(ErrorGeneral)},
		{"targeting returns true", "non-string-variant-targeting-flag", EvalContext{}, ok(2.0, "true", ReasonTargetingMatch)},
		{"empty targeting is static", "empty-targeting-flag", EvalContext{}, ok(1.0, "false", ReasonStatic)},
		{"unknown $ref", "ref-to-nonexistent-evaluator-flag", EvalContext{}, fail(ErrorParse)},
		{"null default variant", "null-default-flag", EvalContext{}, Result{Reason: ReasonDefault}},
		{"absent default variant", "undefined-default-flag", EvalContext{}, Result{Reason: ReasonDefault}},
		{"no default variant, targeting null", "no-default-targeted", email("wozniak@orange.com"), Result{Reason: ReasonDefault}},
		{"no default variant, targeting match", "no-default-targeted", email("jobs@orange.com"), ok("CEO", "special", ReasonTargetingMatch)},
		{"NaN in the context", "new-welcome-banner", EvalContext{Attributes: attrs("x", math.NaN())}, fail(ErrorInvalidContext)},
		{"unmarshalable context", "new-welcome-banner", EvalContext{Attributes: attrs("x", make(chan int))}, fail(ErrorInvalidContext)},
		{"non-JSON Go values are converted", "new-welcome-banner", EvalContext{Attributes: attrs("email", []byte("x"))}, ok(false, "off", ReasonTargetingMatch)},
	}
	s := newSnapshot(mustFile(t, exampleFlags), clock)
	for name, snap := range map[string]*Snapshot{"fast": s, "library": libraryOnly(s)} {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				got := snap.Evaluate(tt.flag, tt.ctx)
				if diff := cmp.Diff(tt.want, got, noMeta); diff != "" {
					t.Errorf("Evaluate(%q) (-want +got):\n%s\nmessage: %s", tt.flag, diff, got.ErrorMessage)
				}
			})
		}
	}
}

// TestEvaluateMergesFlagSetMetadataUnderFlagMetadata checks flagd's metadata
// rule: the flag's own keys win.
func TestEvaluateMergesFlagSetMetadataUnderFlagMetadata(t *testing.T) {
	s := newSnapshot(mustFile(t, exampleFlags), clock)
	tests := []struct {
		flag string
		want map[string]any
	}{
		{"new-welcome-banner", map[string]any{"team": "web", "flagSetId": "shop", "version": "17"}},
		{"myBoolFlag", map[string]any{"team": "growth", "flagSetId": "shop"}},
		{"disabledFlag", map[string]any{"team": "growth", "flagSetId": "shop"}},
	}
	for _, tt := range tests {
		got := s.Evaluate(tt.flag, EvalContext{}).FlagMetadata
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s metadata (-want +got):\n%s", tt.flag, diff)
		}
	}
}

// TestEvaluateReturnsObjectsTheCallerMayModify checks that object variants
// are copies.
func TestEvaluateReturnsObjectsTheCallerMayModify(t *testing.T) {
	s := newSnapshot(mustFile(t, exampleFlags), clock)
	first := s.Evaluate("myObjectFlag", EvalContext{}).Value.(map[string]any)
	first["key"] = "changed"
	second := s.Evaluate("myObjectFlag", EvalContext{}).Value.(map[string]any)
	if second["key"] != "val" {
		t.Errorf("second evaluation saw the first caller's change: %v", second)
	}
}

// TestTypedHelpersFallBackToTheCodeDefault covers the typed accessors.
func TestTypedHelpersFallBackToTheCodeDefault(t *testing.T) {
	s := newSnapshot(mustFile(t, exampleFlags), clock)
	type got struct {
		Value any
		Code  string
	}
	tests := []struct {
		name string
		run  func() (any, Result)
		want got
	}{
		{"bool", func() (any, Result) { return s.Bool("myBoolFlag", EvalContext{}, false) }, got{true, ""}},
		{"bool from disabled flag", func() (any, Result) { return s.Bool("disabledFlag", EvalContext{}, false) }, got{false, ""}},
		{"bool from null default", func() (any, Result) { return s.Bool("null-default-flag", EvalContext{}, true) }, got{true, ""}},
		{"bool from string flag", func() (any, Result) { return s.Bool("myStringFlag", EvalContext{}, true) }, got{true, ErrorTypeMismatch}},
		{"string", func() (any, Result) { return s.String("myStringFlag", EvalContext{}, "x") }, got{"val1", ""}},
		{"string from missing flag", func() (any, Result) { return s.String("nope", EvalContext{}, "x") }, got{"x", ErrorFlagNotFound}},
		{"float", func() (any, Result) { return s.Float("myFloatFlag", EvalContext{}, 0) }, got{1.23, ""}},
		{"int truncates", func() (any, Result) { return s.Int("myFloatFlag", EvalContext{}, 0) }, got{int64(1), ""}},
		{"int", func() (any, Result) { return s.Int("myIntFlag", EvalContext{}, 0) }, got{int64(1), ""}},
		{"int from bool flag", func() (any, Result) { return s.Int("myBoolFlag", EvalContext{}, 7) }, got{int64(7), ErrorTypeMismatch}},
		{"object", func() (any, Result) { return s.Object("myObjectFlag", EvalContext{}, nil) }, got{map[string]any{"key": "val"}, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, r := tt.run()
			if diff := cmp.Diff(tt.want, got{v, r.ErrorCode}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBrokenDefinitionsEvaluateToParseError checks that NewSnapshot accepts
// anything and reports problems per flag, as flagd does at run time.
func TestBrokenDefinitionsEvaluateToParseError(t *testing.T) {
	f := File{Flags: map[string]Flag{
		"bad-variant":   {State: StateEnabled, Variants: map[string]json.RawMessage{"a": json.RawMessage(`{`)}, DefaultVariant: "a"},
		"bad-targeting": {State: StateEnabled, Variants: map[string]json.RawMessage{"a": json.RawMessage(`1`)}, DefaultVariant: "a", Targeting: json.RawMessage(`{"if": [`)},
		"bad-default":   {State: StateEnabled, Variants: map[string]json.RawMessage{"a": json.RawMessage(`1`)}, DefaultVariant: "b"},
	}}
	s := newSnapshot(f, clock)
	want := map[string]string{"bad-variant": ErrorParse, "bad-targeting": ErrorParse, "bad-default": ErrorGeneral}
	got := map[string]string{}
	for k := range want {
		got[k] = s.Evaluate(k, EvalContext{}).ErrorCode
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestSnapshotIsSafeForConcurrentUse evaluates from many goroutines on both
// paths; run with -race.
func TestSnapshotIsSafeForConcurrentUse(t *testing.T) {
	s := newSnapshot(mustFile(t, exampleFlags), clock)
	lib := libraryOnly(s)
	done := make(chan Result)
	for i := range 8 {
		go func() {
			var last Result
			for j := range 200 {
				ctx := EvalContext{TargetingKey: "u", Attributes: attrs("email", "x@faas.com", "version", "2.1.0", "n", i*j)}
				for _, snap := range []*Snapshot{s, lib} {
					last = snap.Evaluate("color", ctx)
					snap.Evaluate("version-flag", ctx)
				}
			}
			done <- last
		}()
	}
	for range 8 {
		if r := <-done; r.Reason != ReasonSplit {
			t.Errorf("concurrent evaluation = %+v", r)
		}
	}
}
