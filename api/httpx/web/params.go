package web

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/validation"
)

// UnknownParams returns a field error for every query parameter not in known,
// in name order, so that a typo in a filter never silently widens a list.
func UnknownParams(q url.Values, known ...string) []validation.FieldError {
	var names []string
	for name := range q {
		if !slices.Contains(known, name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	errs := make([]validation.FieldError, 0, len(names))
	for _, name := range names {
		errs = append(errs, validation.FieldError{Pointer: "#/" + name, Code: "unknown_parameter", Detail: "is not a known query parameter"})
	}
	return errs
}

// RejectUnknownParams answers 400 validation_failed when the query has a
// parameter not in known.
func RejectUnknownParams(q url.Values, known ...string) error {
	if errs := UnknownParams(q, known...); len(errs) > 0 {
		return problem.Validation(errs...)
	}
	return nil
}

// EnumParam reads list filter name from q: absent is "", one of allowed is
// that value (and is set in filters, which a cursor is bound to); repeated
// or any other value is a field error naming the parameter.
func EnumParam(q url.Values, name string, allowed []string, filters url.Values) (string, *validation.FieldError) {
	vs, ok := q[name]
	switch {
	case !ok:
		return "", nil
	case len(vs) != 1:
		return "", &validation.FieldError{Pointer: "#/" + name, Code: "repeated", Detail: "must be given once"}
	case !slices.Contains(allowed, vs[0]):
		return "", &validation.FieldError{Pointer: "#/" + name, Code: "invalid", Detail: "must be one of " + strings.Join(allowed, ", ")}
	}
	filters.Set(name, vs[0])
	return vs[0], nil
}
