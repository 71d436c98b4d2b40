package records

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDetect_DeclaredFormatGuessAndMismatch(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	cases := []struct {
		name, head, declared string
		format               Format
		mismatch             bool
	}{
		{"declared csv", "a,b\n1,2\n", "text/csv; charset=utf-8", CSV, false},
		{"declared ndjson", `{"a":1}`, "application/x-ndjson", NDJSON, false},
		{"guessed ndjson", "\n {\"a\":1}\n", "application/octet-stream", NDJSON, false},
		{"guessed csv", "name,age\nann,3\n", "", CSV, false},
		{"plain text", "hello world\n", "text/plain", Other, false},
		{"binary undeclared", png, "application/octet-stream", Other, false},
		{"binary declared as csv", png, "text/csv", CSV, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, f, err := Detect([]byte(c.head), c.declared)
			var mm *MismatchError
			if f != c.format || errors.As(err, &mm) != c.mismatch {
				t.Errorf("Detect = %s, %v; want %s, mismatch %v", f, err, c.format, c.mismatch)
			}
		})
	}
}

func TestScan_CountsRecordsAndReportsTheFirstError(t *testing.T) {
	cases := []struct {
		name   string
		format Format
		in     string
		want   Summary
	}{
		{"csv", CSV, "id,name,age\n1,ann,3\n2,\"bob, jr\",4\n", Summary{Format: CSV, Rows: 2, Columns: 3}},
		{"csv header only", CSV, "id,name\n", Summary{Format: CSV, Columns: 2}},
		{"csv ragged row", CSV, "id,name\n1,ann\n2\n3,cy\n", Summary{Format: CSV, Rows: 1, Columns: 2,
			FirstError: &LineError{Line: 3, Message: "wrong number of fields (the header has 2)"}}},
		{"csv bare quote", CSV, "id,name\n1,an\"n\n", Summary{Format: CSV, Columns: 2,
			FirstError: &LineError{Line: 2, Message: `bare " in non-quoted-field`}}},
		{"csv invalid utf-8", CSV, "id,name\n1,\xff\n", Summary{Format: CSV, Columns: 2,
			FirstError: &LineError{Line: 2, Message: "field 2 is not valid UTF-8"}}},
		{"csv empty", CSV, "", Summary{Format: CSV, FirstError: &LineError{Line: 1, Message: "the file has no header line"}}},
		{"ndjson", NDJSON, "{\"a\":1,\"b\":2}\n\n{\"a\":3}\n", Summary{Format: NDJSON, Rows: 2, Columns: 2}},
		{"ndjson bad line", NDJSON, "{\"a\":1}\n{\"a\":\n{\"a\":2}\n", Summary{Format: NDJSON, Rows: 1, Columns: 1,
			FirstError: &LineError{Line: 2, Message: "not valid JSON: unexpected end of JSON input"}}},
		{"ndjson not an object", NDJSON, "{\"a\":1}\n[1,2]\n", Summary{Format: NDJSON, Rows: 1, Columns: 1,
			FirstError: &LineError{Line: 2, Message: "a JSON array, not an object"}}},
		{"ndjson too long", NDJSON, "{\"a\":1}\n{\"b\":\"" + strings.Repeat("x", MaxLineBytes) + "\"}\n", Summary{Format: NDJSON, Rows: 1, Columns: 1,
			FirstError: &LineError{Line: 2, Message: "the line is longer than 1048576 bytes"}}},
		{"other", Other, "\x00\x01", Summary{Format: Other}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Scan(strings.NewReader(c.in), c.format)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}
