package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/validation"
)

// DecodeJSON reads the request body into v with the contract's checks:
// application/json only (415), the size limit set by the body-limit
// middleware (413), valid JSON (400 invalid_json), no unknown fields and no
// trailing data (400 validation_failed).
func DecodeJSON(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	data, err := ReadBody(r)
	if err != nil {
		return err
	}
	return DecodeJSONBytes(data, v)
}

// ReadBody reads the whole request body within the cap the body-limit
// middleware installed: past it, 413 payload_too_large.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, problem.Newf(problem.PayloadTooLarge, "request body is larger than %d bytes", tooLarge.Limit)
		}
		return nil, problem.New(problem.InvalidJSON, "request body could not be read")
	}
	return data, nil
}

// DecodeJSONBytes decodes data into v with the same checks as DecodeJSON.
func DecodeJSONBytes(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return problem.New(problem.InvalidJSON, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err, data, v)
	}
	if dec.More() {
		return problem.New(problem.InvalidJSON, "request body has data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(problem.InvalidJSON, "request body has data after the JSON value")
	}
	return nil
}

func decodeProblem(err error, data []byte, v any) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return problem.Newf(problem.InvalidJSON, "request body is not valid JSON at byte %d", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(problem.InvalidJSON, "request body ends in the middle of a JSON value")
	case errors.As(err, &typeErr):
		ptr := "#/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		if typeErr.Field == "" {
			ptr = "#"
		}
		return problem.Validation(validation.FieldError{Pointer: ptr, Code: "invalid_type",
			Detail: fmt.Sprintf("must be %s, not %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		ptr := unknownFieldPointer(data, v)
		if ptr == "" {
			ptr = "#/" + pointerToken(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		}
		return problem.Validation(validation.FieldError{Pointer: ptr, Code: "unknown_field", Detail: "is not a known field"})
	}
	return problem.New(problem.InvalidJSON, "request body is not valid JSON")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "ptr", "interface":
		return "a value of another type"
	}
	return "a number"
}

func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return problem.New(problem.UnsupportedMediaType, "Content-Type must be application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return problem.Newf(problem.UnsupportedMediaType, "Content-Type must be application/json, not %q", ct)
	}
	return nil
}
