package flags

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/validation"
)

// flagView is a flag as the API shows it: the flagd definition with key,
// version and updated_at added. The definition keeps flagd's field names
// (defaultVariant), so a GET body can be PUT back or written to a flagd file.
type flagView struct {
	Key            string                     `json:"key"`
	State          string                     `json:"state"`
	Variants       map[string]json.RawMessage `json:"variants"`
	DefaultVariant string                     `json:"defaultVariant,omitempty"`
	Targeting      json.RawMessage            `json:"targeting,omitempty"`
	Metadata       map[string]any             `json:"metadata,omitempty"`
	Version        int64                      `json:"version"`
	UpdatedAt      time.Time                  `json:"updated_at"`

	createdAt time.Time // the page cursor's sort key
}

func toView(r store.Record) flagView {
	return flagView{
		Key: r.Key, State: r.Def.State, Variants: r.Def.Variants, DefaultVariant: r.Def.DefaultVariant,
		Targeting: r.Def.Targeting, Metadata: r.Def.Metadata, Version: r.Version,
		UpdatedAt: r.UpdatedAt.UTC(), createdAt: r.CreatedAt,
	}
}

// The fields of a flag definition, and the fields a GET adds, which a PUT or
// PATCH may carry back and which are then ignored (key must match the path).
var (
	definitionFields = []string{"state", "variants", "defaultVariant", "targeting", "metadata"}
	readOnlyFields   = []string{"key", "version", "updated_at"}
)

// parseDefinition turns a request document into a flag definition for key,
// collecting every problem with a JSON pointer into the document.
func parseDefinition(key string, doc []byte) (flags.Flag, error) {
	var top map[string]json.RawMessage
	if err := web.DecodeJSONBytes(doc, &top); err != nil {
		return flags.Flag{}, err
	}
	if top == nil {
		return flags.Flag{}, problem.Validation(validation.FieldError{Pointer: "#", Code: "invalid_type", Detail: "must be a flag definition object"})
	}
	errs := checkFields(key, top)
	for _, name := range readOnlyFields {
		delete(top, name)
	}
	def, err := json.Marshal(top)
	if err != nil {
		return flags.Flag{}, err
	}
	if verr := flags.ValidateRaw(key, def, nil); verr != nil {
		errs = append(errs, fieldErrors(verr)...)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b validation.FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
		return flags.Flag{}, problem.Validation(errs...)
	}
	var out flags.Flag
	if err := json.Unmarshal(def, &out); err != nil {
		return flags.Flag{}, problem.Validation(validation.FieldError{Pointer: "#", Code: "invalid", Detail: "is not a flag definition"})
	}
	out.Key = key
	return out, nil
}

func checkFields(key string, top map[string]json.RawMessage) []validation.FieldError {
	var errs []validation.FieldError
	for name, raw := range top {
		switch {
		case name == "key":
			var k string
			if json.Unmarshal(raw, &k) != nil || k != key {
				errs = append(errs, validation.FieldError{Pointer: "#/key", Code: "invalid", Detail: "must be the key in the path, " + strconv.Quote(key)})
			}
		case slices.Contains(definitionFields, name), slices.Contains(readOnlyFields, name):
		default:
			errs = append(errs, validation.FieldError{Pointer: "#/" + pointerToken(name), Code: "unknown_field", Detail: "is not a field of a flag definition"})
		}
	}
	return errs
}

func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// fieldErrors converts the evaluator's validation errors; their pointers
// are relative to the definition, which is the request document itself.
func fieldErrors(err error) []validation.FieldError {
	ve, ok := err.(*flags.ValidationError)
	if !ok {
		return []validation.FieldError{{Pointer: "#", Code: "invalid", Detail: err.Error()}}
	}
	out := make([]validation.FieldError, len(ve.Errors))
	for i, fe := range ve.Errors {
		out[i] = validation.FieldError{Pointer: fe.Pointer, Code: fe.Code, Detail: fe.Detail}
	}
	return out
}

// conditions reads If-Match and If-None-Match. If-Match uses the strong
// comparison RFC 9110 prescribes: a weak tag never matches, so it fails
// the precondition rather than the request.
func conditions(r *http.Request) (store.Cond, error) {
	var c store.Cond
	if v := strings.TrimSpace(r.Header.Get("If-Match")); v != "" {
		if v == "*" {
			c.MustExist = true
		} else {
			c.IfMatch = parseETags(v)
		}
	}
	if v := strings.TrimSpace(r.Header.Get("If-None-Match")); v != "" {
		if v != "*" {
			return store.Cond{}, problem.Validation(validation.FieldError{Pointer: "#/If-None-Match", Code: "invalid",
				Detail: `only "*" (create, never replace) is supported on writes`})
		}
		c.MustNotExist = true
	}
	return c, nil
}

// parseETags returns the versions named by a list of strong entity tags.
// Tags that name no version become -1, which matches nothing.
func parseETags(v string) []int64 {
	var out []int64
	for _, tag := range strings.Split(v, ",") {
		tag = strings.TrimSpace(tag)
		n, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
		if err != nil || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) {
			n = -1
		}
		out = append(out, n)
	}
	return out
}

// maxReasonLen bounds the audit's "why".
const maxReasonLen = 500

// changeReason is the audit's why: the X-Change-Reason header, else the
// reason query parameter.
func changeReason(r *http.Request) (string, error) {
	reason := r.Header.Get("X-Change-Reason")
	if reason == "" {
		reason = r.URL.Query().Get("reason")
	}
	if len(reason) > maxReasonLen {
		return "", problem.Validation(validation.FieldError{Pointer: "#/reason", Code: "too_long",
			Detail: "must be at most " + strconv.Itoa(maxReasonLen) + " characters"})
	}
	return reason, nil
}

// mediaType checks the request's Content-Type against the accepted ones.
func mediaType(r *http.Request, accepted ...string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(accepted, mt) {
		return problem.Newf(problem.UnsupportedMediaType, "Content-Type must be %s, not %q", strings.Join(accepted, " or "), ct)
	}
	return nil
}
