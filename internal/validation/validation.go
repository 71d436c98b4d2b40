// Package validation holds the one shape every layer uses to say which field
// of an input is wrong: flag definitions, rollout guards and the API's
// problem responses all report a FieldError, so a pointer found deep in the
// flag compiler reaches the client unchanged.
package validation

// FieldError is one invalid field or parameter.
type FieldError struct {
	// Pointer is a JSON pointer (RFC 6901, in URI fragment form) to the
	// offending value, e.g. "#/variants/on" or "#/guard/min_samples".
	Pointer string `json:"pointer"`
	// Detail explains the problem to a person.
	Detail string `json:"detail"`
	// Code is a stable snake_case identifier such as "required",
	// "invalid" or "out_of_range".
	Code string `json:"code"`
}

// String formats the error as "pointer: code: detail".
func (e FieldError) String() string {
	return e.Pointer + ": " + e.Code + ": " + e.Detail
}
