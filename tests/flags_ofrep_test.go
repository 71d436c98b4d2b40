package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
)

// ofrepFlags are flags of every kind an OFREP client meets.
var ofrepFlags = map[string]map[string]any{
	"banner": {"state": "ENABLED", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
		"metadata": map[string]any{"owner": "web"}},
	"color": {"state": "ENABLED", "variants": map[string]any{"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
		"targeting": map[string]any{"if": []any{map[string]any{"ends_with": []any{map[string]any{"var": "email"}, "@example.com"}}, "blue", nil}}},
	"checkout": {"state": "ENABLED", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
		"targeting": map[string]any{"fractional": []any{[]any{"on", 30}, []any{"off", 70}}}},
	"limit": {"state": "ENABLED", "variants": map[string]any{"low": 10, "high": 100}, "defaultVariant": "low",
		"targeting": map[string]any{"if": []any{map[string]any{"sem_ver": []any{map[string]any{"var": "version"}, ">=", "2.0.0"}}, "high", "low"}}},
	"layout":   {"state": "ENABLED", "variants": map[string]any{"grid": map[string]any{"cols": 3}}, "defaultVariant": "grid"},
	"retired":  {"state": "DISABLED", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "on"},
	"codedflt": {"state": "ENABLED", "variants": map[string]any{"on": true, "off": false}},
}

// ofrepResult is the comparable part of an OFREP evaluation or an in-process one.
type ofrepResult struct {
	Key       string         `json:"key"`
	Value     any            `json:"value"`
	Variant   string         `json:"variant"`
	Reason    string         `json:"reason"`
	Metadata  map[string]any `json:"metadata"`
	ErrorCode string         `json:"errorCode"`
}

// inProcess evaluates key through the provider's OpenFeature client with the
// type the flag has; a result with no value is the code default, which
// OFREP leaves out.
func inProcess(t *testing.T, c *openfeature.Client, key string, ctx map[string]any) ofrepResult {
	t.Helper()
	tk, _ := ctx["targetingKey"].(string)
	attrs := map[string]any{}
	for k, v := range ctx {
		if k != "targetingKey" {
			attrs[k] = v
		}
	}
	ec := openfeature.NewEvaluationContext(tk, attrs)
	bg := context.Background()
	var value any
	var d openfeature.EvaluationDetails
	switch key {
	case "color":
		r, _ := c.StringValueDetails(bg, key, "code-default", ec)
		value, d = r.Value, r.EvaluationDetails
	case "limit":
		r, _ := c.FloatValueDetails(bg, key, -1, ec)
		value, d = r.Value, r.EvaluationDetails
	case "layout":
		r, _ := c.ObjectValueDetails(bg, key, "code-default", ec)
		value, d = r.Value, r.EvaluationDetails
	default:
		r, _ := c.BooleanValueDetails(bg, key, false, ec)
		value, d = r.Value, r.EvaluationDetails
	}
	out := ofrepResult{Key: key, Value: value, Variant: d.Variant, Reason: string(d.Reason), Metadata: d.FlagMetadata, ErrorCode: string(d.ErrorCode)}
	if d.Reason == openfeature.DisabledReason || (d.Reason == openfeature.DefaultReason && d.Variant == "") {
		out.Value = nil
	}
	if len(out.Metadata) == 0 {
		out.Metadata = nil
	}
	return out
}

func TestOFREP_EvaluationEqualsInProcessEvaluation(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	reader := bearer(s.key("web-app", "flags:read"))
	for key, def := range ofrepFlags {
		s.putFlag(writer, key, def)
	}
	s.waitForRevision()
	contexts := []map[string]any{
		{"targetingKey": "user-1", "email": "ann@example.com", "version": "2.1.0"},
		{"targetingKey": "user-2", "email": "bob@other.org", "version": "1.9.9"},
		{"email": "nokey@example.com"},
		{},
	}
	for i := range 20 {
		contexts = append(contexts, map[string]any{"targetingKey": fmt.Sprintf("user-%d", 100+i)})
	}
	for _, ctx := range contexts {
		var bulk struct {
			Flags []ofrepResult `json:"flags"`
		}
		r := s.do("POST", "/ofrep/v1/evaluate/flags", map[string]any{"context": ctx}, reader...)
		if r.Status != 200 {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &bulk)
		if len(bulk.Flags) != len(ofrepFlags) {
			t.Fatalf("bulk answered %d flags, want %d", len(bulk.Flags), len(ofrepFlags))
		}
		for _, remote := range bulk.Flags {
			want := inProcess(t, s.Flags.Client, remote.Key, ctx)
			if diff := cmp.Diff(want, remote); diff != "" {
				t.Errorf("bulk %s for %v (-in process +OFREP):\n%s", remote.Key, ctx, diff)
			}
			var single ofrepResult
			one := s.do("POST", "/ofrep/v1/evaluate/flags/"+remote.Key, map[string]any{"context": ctx}, reader...)
			one.JSON(t, &single)
			if one.Status != 200 || !cmp.Equal(want, single) {
				t.Errorf("single %s for %v: %d %s, want %+v", remote.Key, ctx, one.Status, one.Body, want)
			}
		}
	}
}

func TestOFREP_BulkETagAnd304(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	reader := bearer(s.key("web-app", "flags:read"))
	s.putFlag(writer, "banner", ofrepFlags["banner"])
	s.waitForRevision()
	body := map[string]any{"context": map[string]any{"targetingKey": "user-1"}}
	first := s.do("POST", "/ofrep/v1/evaluate/flags", body, reader...)
	etag := first.Header.Get("ETag")
	if first.Status != 200 || etag == "" {
		t.Fatalf("first: %d etag %q", first.Status, etag)
	}
	if r := s.do("POST", "/ofrep/v1/evaluate/flags", body, with(reader, []string{"If-None-Match", etag})...); r.Status != 304 || len(r.Body) != 0 {
		t.Errorf("same context, same flags: %d %s, want 304", r.Status, r.Body)
	}
	other := map[string]any{"context": map[string]any{"targetingKey": "user-2"}}
	if r := s.do("POST", "/ofrep/v1/evaluate/flags", other, with(reader, []string{"If-None-Match", etag})...); r.Status != 200 {
		t.Errorf("another context: %d, want 200", r.Status)
	}
	s.putFlag(writer, "banner", boolFlagDef("on"))
	s.waitForRevision()
	changed := s.do("POST", "/ofrep/v1/evaluate/flags", body, with(reader, []string{"If-None-Match", etag})...)
	if changed.Status != 200 || changed.Header.Get("ETag") == etag {
		t.Errorf("after a change: %d etag %q, want 200 and a new ETag", changed.Status, changed.Header.Get("ETag"))
	}
}

func TestOFREP_ErrorsFollowTheProtocol(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	reader := bearer(s.key("web-app", "flags:read"))
	s.putFlag(writer, "banner", ofrepFlags["banner"])
	s.waitForRevision()
	tests := []struct {
		name   string
		path   string
		body   any
		header []string
		status int
		want   map[string]any
	}{
		{"unknown flag", "/ofrep/v1/evaluate/flags/nope", `{"context": {}}`, reader, 404,
			map[string]any{"key": "nope", "errorCode": "FLAG_NOT_FOUND"}},
		{"body is not JSON", "/ofrep/v1/evaluate/flags/banner", `{"context":`, reader, 400,
			map[string]any{"key": "banner", "errorCode": "INVALID_CONTEXT"}},
		{"targetingKey is not a string", "/ofrep/v1/evaluate/flags/banner", `{"context": {"targetingKey": 7}}`, reader, 400,
			map[string]any{"key": "banner", "errorCode": "INVALID_CONTEXT"}},
		{"bulk with a bad context", "/ofrep/v1/evaluate/flags", `{"context": [1]}`, reader, 400,
			map[string]any{"errorCode": "INVALID_CONTEXT"}},
		{"no body is an empty context", "/ofrep/v1/evaluate/flags/banner", nil, reader, 200,
			map[string]any{"key": "banner", "reason": "STATIC", "variant": "off", "value": false, "metadata": map[string]any{"owner": "web"}}},
		{"no key", "/ofrep/v1/evaluate/flags/banner", `{}`, nil, 401, map[string]any{"code": "unauthenticated"}},
		{"wrong scope", "/ofrep/v1/evaluate/flags/banner", `{}`, bearer(s.key("acme", "rollouts:read")), 403,
			map[string]any{"code": "insufficient_scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("POST", tt.path, tt.body, tt.header...)
			got := map[string]any{}
			_ = json.Unmarshal(r.Body, &got)
			for k := range got {
				if _, keep := tt.want[k]; !keep {
					delete(got, k) // errorDetails, problem fields
				}
			}
			if r.Status != tt.status || !cmp.Equal(tt.want, got) {
				t.Errorf("%d %s, want %d %v", r.Status, r.Body, tt.status, tt.want)
			}
		})
	}
}
