// Package flags holds the platform's feature-flag model and an in-process
// evaluator that behaves like flagd (https://flagd.dev): the same flag-definition
// JSON, the same JSONLogic targeting with flagd's custom operators
// (fractional, sem_ver, starts_with, ends_with), and the same resolution
// reasons and error codes.
//
// A File is what `platform flags import|export FILE` reads and writes;
// ValidateFile and Validate check definitions with JSON-pointer errors. A
// Snapshot is an immutable, precompiled set of flags that answers Evaluate
// calls without parsing anything. SetFractionalSplit, ResetTo and Disable
// rewrite a flag for rollouts.
//
// JSONLogic is evaluated with the semantics of
// github.com/diegoholiveira/jsonlogic/v3, the library flagd uses, by a
// machine that follows it step by step and meters the work (logic.go):
// every evaluation runs within a budget, and validation refuses rules that
// could exceed it (limits.go). Common rule shapes also have a compiled fast
// path that gives the same results without allocating.
//
// Where this package departs from flagd, on purpose:
//   - a result chosen by fractional has reason SPLIT (flagd says
//     TARGETING_MATCH), so rollouts can tell assignment from targeting;
//   - nested $ref in $evaluators are always expanded (flagd's text
//     substitution expands them only in some evaluator orders);
//   - "targeting": null is the same as no targeting;
//   - rules are refused, and evaluations stopped, beyond the limits in
//     limits.go; a version string longer than 256 bytes is not a version.
package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
)

// Flag states as flagd spells them.
const (
	StateEnabled  = "ENABLED"
	StateDisabled = "DISABLED"
)

// Flag is one flagd flag definition. Key is not part of the JSON object: in a
// flagd file the key is the name under "flags".
type Flag struct {
	// Key is the flag key; it is filled in from the map key by ParseFile.
	Key string `json:"-"`
	// State is StateEnabled or StateDisabled.
	State string `json:"state"`
	// Variants maps variant names to their values, kept as raw JSON so that
	// an import followed by an export does not rewrite numbers.
	Variants map[string]json.RawMessage `json:"variants"`
	// DefaultVariant names the variant served when targeting does not pick
	// one. Empty means flagd's null default: the caller's code default is used.
	// (An empty string can never be a variant name, so the two cannot clash.)
	DefaultVariant string `json:"defaultVariant,omitempty"`
	// Targeting is a JSONLogic rule, or nil for none.
	Targeting json.RawMessage `json:"targeting,omitempty"`
	// Metadata is free-form flag metadata, returned with every evaluation.
	Metadata map[string]any `json:"metadata,omitempty"`
}

// File is a flagd flag-definition file: {"$schema", "flags", "$evaluators",
// "metadata"}.
type File struct {
	// Schema is the optional "$schema" URL.
	Schema string `json:"$schema,omitempty"`
	// Flags maps flag keys to definitions.
	Flags map[string]Flag `json:"flags"`
	// Evaluators are shared targeting rules referenced as {"$ref": "name"}.
	Evaluators map[string]json.RawMessage `json:"$evaluators,omitempty"`
	// Metadata is flag-set metadata, merged under every flag's own metadata.
	Metadata map[string]any `json:"metadata,omitempty"`
}

// ParseFile decodes a flagd file. It checks only that the JSON has the right
// shape; call File.Validate for flagd's rules.
func ParseFile(data []byte) (File, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return File{}, fmt.Errorf("parse flag file: %w", err)
	}
	for key, def := range f.Flags {
		def.Key = key
		def.Targeting = trimNull(def.Targeting)
		f.Flags[key] = def
	}
	return f, nil
}

// Marshal encodes the file as indented JSON. Map keys are sorted by
// encoding/json, so the same file always produces the same bytes.
func (f File) Marshal() ([]byte, error) {
	out := f
	if out.Flags == nil {
		out.Flags = map[string]Flag{} // flagd requires "flags" to be an object
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "<" and ">" readable in JSONLogic rules
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("marshal flag file: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a flag definition, treating "targeting": null as no
// targeting. Member names match exactly, as in flagd: encoding/json would
// otherwise take "Targeting" or "tArgetinG" for "targeting", which the
// validator (working on exact names) never checked.
func (f *Flag) UnmarshalJSON(data []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return err
	}
	out := Flag{Key: f.Key}
	fields := []struct {
		name string
		dst  any
	}{
		{"state", &out.State}, {"variants", &out.Variants}, {"defaultVariant", &out.DefaultVariant},
		{"targeting", &out.Targeting}, {"metadata", &out.Metadata},
	}
	for _, fd := range fields {
		raw, ok := members[fd.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, fd.dst); err != nil {
			return fmt.Errorf("flag member %q: %w", fd.name, err)
		}
	}
	out.Targeting = trimNull(out.Targeting)
	*f = out
	return nil
}

// Clone returns a copy of the flag that shares no maps with f, so the copy
// can be edited without touching f.
func (f Flag) Clone() Flag {
	out := f
	out.Variants = maps.Clone(f.Variants)
	out.Metadata = maps.Clone(f.Metadata)
	out.Targeting = bytes.Clone(f.Targeting)
	return out
}

func trimNull(raw json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return raw
}
