package auth

import (
	"net/url"

	"github.com/acme/platform/internal/validation"
)

// ParamPrincipal is the admin-only filter every list of owned resources knows.
const ParamPrincipal = "principal"

// PrincipalFilter reads a list's ?principal= filter for caller and returns
// whose resources to list ("" meaning every principal's) and the filter
// value a cursor must be bound to.
//
// An admin sees every principal's resources, or one principal's when it
// names one. Any other caller sees only its own, and naming a principal,
// even its own, is a validation error: a client that thinks it can filter
// by principal learns at once that it cannot, rather than getting a list
// that silently ignores what it asked.
func PrincipalFilter(q url.Values, caller Principal) (principal, bound string, errs []validation.FieldError) {
	vs, asked := q[ParamPrincipal]
	switch {
	case asked && !caller.IsAdmin():
		errs = append(errs, validation.FieldError{Pointer: "#/" + ParamPrincipal, Code: "forbidden",
			Detail: "only admin keys may filter by principal"})
		return caller.Name, "", errs
	case !caller.IsAdmin():
		return caller.Name, "", nil
	case !asked:
		return "", "", nil
	case len(vs) != 1 || vs[0] == "":
		errs = append(errs, validation.FieldError{Pointer: "#/" + ParamPrincipal, Code: "invalid",
			Detail: "must name one principal, once"})
		return "", "", errs
	}
	return vs[0], vs[0], nil
}
