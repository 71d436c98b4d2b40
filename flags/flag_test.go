package flags

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseFileReadsFlagdFiles checks the model against a flagd file.
func TestParseFileReadsFlagdFiles(t *testing.T) {
	f := mustFile(t, `{
	  "$schema": "https://flagd.dev/schema/v0/flags.json",
	  "flags": {
	    "banner": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
	      "targeting": {"if": [{"$ref": "beta"}, "on", null]}, "metadata": {"owner": "web"}},
	    "codeDefault": {"state": "DISABLED", "variants": {"a": 1.50}, "defaultVariant": null, "targeting": null}
	  },
	  "$evaluators": {"beta": {"in": [{"var": "email"}, ["a@b.c"]]}},
	  "metadata": {"flagSetId": "web"}
	}`)
	want := File{
		Schema: "https://flagd.dev/schema/v0/flags.json",
		Flags: map[string]Flag{
			"banner": {
				Key: "banner", State: StateEnabled, DefaultVariant: "off",
				Variants:  map[string]json.RawMessage{"on": json.RawMessage(`true`), "off": json.RawMessage(`false`)},
				Targeting: json.RawMessage(`{"if": [{"$ref": "beta"}, "on", null]}`),
				Metadata:  map[string]any{"owner": "web"},
			},
			"codeDefault": {Key: "codeDefault", State: StateDisabled, Variants: map[string]json.RawMessage{"a": json.RawMessage(`1.50`)}},
		},
		Evaluators: map[string]json.RawMessage{"beta": json.RawMessage(`{"in": [{"var": "email"}, ["a@b.c"]]}`)},
		Metadata:   map[string]any{"flagSetId": "web"},
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFileMarshalRoundTrips checks that export(import(x)) is stable and
// keeps numbers as written.
func TestFileMarshalRoundTrips(t *testing.T) {
	f := mustFile(t, exampleFlags)
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(t, f), normalize(t, again)); diff != "" {
		t.Errorf("round trip changed the file (-before +after):\n%s", diff)
	}
	out2, _ := again.Marshal()
	if string(out) != string(out2) {
		t.Errorf("second export differs from the first")
	}
	g := mustFile(t, `{"flags": {"f": {"state": "ENABLED", "variants": {"x": 1.50, "y": 1e3}}}}`)
	b, _ := g.Marshal()
	if want := "{\n  \"flags\": {\n    \"f\": {\n      \"state\": \"ENABLED\",\n      \"variants\": {\n        \"x\": 1.50,\n        \"y\": 1e3\n      }\n    }\n  }\n}\n"; string(b) != want {
		t.Errorf("export =\n%s\nwant\n%s", b, want)
	}
}

// TestMarshalOfEmptyFileHasFlagsObject checks that flagd's required "flags"
// is always written.
func TestMarshalOfEmptyFileHasFlagsObject(t *testing.T) {
	b, err := File{}.Marshal()
	if err != nil || string(b) != "{\n  \"flags\": {}\n}\n" {
		t.Errorf("Marshal = %q, %v", b, err)
	}
}

// TestParseFileRejectsMalformedJSON checks the error path.
func TestParseFileRejectsMalformedJSON(t *testing.T) {
	for _, src := range []string{`{`, `{"flags": []}`, `{"flags": {"f": {"state": 1}}}`} {
		if _, err := ParseFile([]byte(src)); err == nil {
			t.Errorf("ParseFile(%s) succeeded", src)
		}
	}
}

// normalize re-encodes raw JSON fields so formatting differences vanish.
func normalize(t *testing.T, f File) any {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
