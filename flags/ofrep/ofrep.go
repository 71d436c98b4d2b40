// Package ofrep evaluates flags for the OpenFeature Remote Evaluation
// Protocol (https://github.com/open-feature/protocol, service/openapi.yaml):
// the request and response shapes of the single and bulk evaluation
// endpoints, their statuses, and the bulk ETag. It knows nothing of HTTP
// routing or authentication; api/ofrep serves it.
//
// Choices where the protocol leaves room:
//   - A flag that yields no value (DISABLED, or a DEFAULT without a default
//     variant) is a success without "value", as the protocol's ADR 0006
//     (codeDefaultFlag) proposes: the provider then uses the code default.
//     It is not an error, because nothing went wrong.
//   - The bulk ETag covers the store revision and the request's context, so
//     a client that changes its context never gets a 304 for evaluations of
//     the old one. Rules reading $flagd.timestamp can change their result
//     without a new revision; such flags should not be polled with ETags.
//   - A body that is not JSON, or a context that is not an object or whose
//     targetingKey is not a string, is 400 INVALID_CONTEXT. So is a context
//     over the limits of flags.CheckContext or larger than
//     flags.MaxContextBytes as sent: evaluation costs grow with the context.
package ofrep

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

// Request is the body of both evaluation endpoints.
type Request struct {
	Context map[string]any `json:"context"`
}

// Success is one flag's successful evaluation. Value is absent when the
// code default applies.
type Success struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata map[string]any  `json:"metadata,omitempty"`
}

// Failure is one flag's failed evaluation.
type Failure struct {
	Key          string `json:"key"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// BulkFailure is the body of a bulk request that could not be evaluated at all.
type BulkFailure struct {
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// Bulk is the body of a successful bulk evaluation: a Success or a Failure
// per flag, ordered by key.
type Bulk struct {
	Flags []any `json:"flags"`
}

// ParseContext reads a request body. An empty body is an empty context.
// On failure it returns the OFREP error code and details.
func ParseContext(body []byte) (ctx flags.EvalContext, canonical []byte, code, details string) {
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if strings.TrimSpace(string(body)) != "" {
		if err := json.Unmarshal(body, &req); err != nil {
			return flags.EvalContext{}, nil, flags.ErrorInvalidContext, "the request body is not a JSON object"
		}
	}
	if len(req.Context) > flags.MaxContextBytes {
		return flags.EvalContext{}, nil, flags.ErrorInvalidContext,
			fmt.Sprintf("the context is %d bytes; the limit is %d", len(req.Context), flags.MaxContextBytes)
	}
	attrs := map[string]any{}
	if len(req.Context) > 0 && string(req.Context) != "null" {
		if err := json.Unmarshal(req.Context, &attrs); err != nil || attrs == nil {
			return flags.EvalContext{}, nil, flags.ErrorInvalidContext, "context must be a JSON object"
		}
	}
	if err := flags.CheckContext(attrs); err != nil {
		return flags.EvalContext{}, nil, flags.ErrorInvalidContext, err.Error()
	}
	tk, isString := attrs["targetingKey"].(string)
	if _, present := attrs["targetingKey"]; present && !isString {
		return flags.EvalContext{}, nil, flags.ErrorInvalidContext, "context.targetingKey must be a string"
	}
	canonical, err := json.Marshal(attrs) // sorted keys: one spelling per context
	if err != nil {
		return flags.EvalContext{}, nil, flags.ErrorInvalidContext, "context cannot be encoded"
	}
	return flags.EvalContext{TargetingKey: tk, Attributes: attrs}, canonical, "", ""
}

// Evaluate evaluates one flag and returns the HTTP status and body the
// protocol prescribes (200 Success, 404 or 400 Failure), with the evaluator's
// result for metrics.
func Evaluate(set *store.FlagSet, key string, ctx flags.EvalContext) (int, any, flags.Result) {
	r := set.Snapshot.Evaluate(key, ctx)
	body := response(key, r)
	switch {
	case r.ErrorCode == flags.ErrorFlagNotFound:
		return http.StatusNotFound, body, r
	case r.ErrorCode != "":
		return http.StatusBadRequest, body, r
	}
	return http.StatusOK, body, r
}

// EvaluateAll evaluates every flag in key order, preparing the context
// once for all of them. observe, when not nil, is called with each result.
func EvaluateAll(set *store.FlagSet, ctx flags.EvalContext, observe func(key string, r flags.Result)) Bulk {
	keys := set.Keys()
	out := Bulk{Flags: make([]any, 0, len(keys))}
	prepared := flags.Prepare(ctx)
	for _, key := range keys {
		r := set.Snapshot.EvaluatePrepared(key, prepared)
		if observe != nil {
			observe(key, r)
		}
		out.Flags = append(out.Flags, response(key, r))
	}
	return out
}

func response(key string, r flags.Result) any {
	if r.ErrorCode != "" {
		return Failure{Key: key, ErrorCode: r.ErrorCode, ErrorDetails: r.ErrorMessage}
	}
	s := Success{Key: key, Reason: r.Reason, Variant: r.Variant, Metadata: r.FlagMetadata}
	if len(s.Metadata) == 0 {
		s.Metadata = nil
	}
	if r.Value != nil {
		v, err := json.Marshal(r.Value)
		if err != nil {
			return Failure{Key: key, ErrorCode: flags.ErrorGeneral, ErrorDetails: "the variant's value cannot be encoded"}
		}
		s.Value = v
	}
	return s
}

// ETag is the entity tag of a bulk evaluation: the store revision and a
// hash of the canonical context.
func ETag(set *store.FlagSet, canonicalContext []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(canonicalContext)
	return fmt.Sprintf(`"%d-%016x"`, set.Revision, h.Sum64())
}

// NotModified reports whether an If-None-Match header value matches etag,
// with the weak comparison RFC 9110 prescribes for If-None-Match.
func NotModified(ifNoneMatch, etag string) bool {
	if strings.TrimSpace(ifNoneMatch) == "*" {
		return true
	}
	for _, candidate := range strings.Split(ifNoneMatch, ",") {
		if strings.TrimPrefix(strings.TrimSpace(candidate), "W/") == etag {
			return true
		}
	}
	return false
}
