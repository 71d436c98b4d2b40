package web

import (
	"net/url"
	"slices"
	"sort"

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
