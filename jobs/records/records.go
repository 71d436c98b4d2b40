// Package records judges an uploaded file: it detects the file's type and,
// for CSV and NDJSON, validates and counts its records, stopping at the first
// error with its line number. It reads a stream once and keeps nothing but
// counters, so files of any size take constant memory.
package records

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Format is how a file's records are laid out.
type Format string

// Formats.
const (
	CSV    Format = "csv"
	NDJSON Format = "ndjson"
	Other  Format = "other" // not a record format: counted as bytes only
)

// SniffLen is how many leading bytes Detect looks at.
const SniffLen = 512

// MaxLineBytes bounds one NDJSON line.
const MaxLineBytes = 1 << 20

// MismatchError says that the declared type and the content disagree.
type MismatchError struct {
	Declared, Detected string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("declared %s but the content looks like %s", e.Declared, e.Detected)
}

// Detect returns the content type sniffed from head (the first SniffLen
// bytes, per http.DetectContentType) and the record format: the declared
// one when the declared media type names CSV or NDJSON, else a guess from
// the content. A declared record format whose content is not text is a
// *MismatchError.
func Detect(head []byte, declared string) (detected string, f Format, err error) {
	detected = http.DetectContentType(head)
	text := strings.HasPrefix(detected, "text/plain")
	if df := formatOf(declared); df != Other {
		if !text {
			return detected, df, &MismatchError{Declared: declared, Detected: detected}
		}
		return detected, df, nil
	}
	if !text {
		return detected, Other, nil
	}
	return detected, guess(head), nil
}

func formatOf(mediaType string) Format {
	mt, _, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return Other
	}
	switch mt {
	case "text/csv", "application/csv":
		return CSV
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return NDJSON
	}
	return Other
}

// guess tells NDJSON (a line starting with '{') from CSV (a first line with
// a comma) in text of undeclared type.
func guess(head []byte) Format {
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("{")) {
		return NDJSON
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	if bytes.Contains(first, []byte(",")) {
		return CSV
	}
	return Other
}

// LineError is the first invalid record of a file.
type LineError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// Summary is what Scan learns of a file. For CSV the first record is the
// header: Columns is its width and Rows counts the records after it. For
// NDJSON Rows counts the objects and Columns the keys of the first one.
type Summary struct {
	Format     Format     `json:"format"`
	Rows       int        `json:"rows"`
	Columns    int        `json:"columns"`
	FirstError *LineError `json:"first_error"`
}

// Scan reads r in format f until the end or the first invalid record, which
// it reports in Summary.FirstError. The error result is for reading
// failures only. Scan may stop before the end of r: a caller that needs all
// of it (for a checksum) reads the rest.
func Scan(r io.Reader, f Format) (Summary, error) {
	switch f {
	case CSV:
		return scanCSV(r)
	case NDJSON:
		return scanNDJSON(r)
	}
	return Summary{Format: f}, nil
}

func scanCSV(r io.Reader) (Summary, error) {
	s := Summary{Format: CSV}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	for records := 0; ; records++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			if records == 0 {
				s.FirstError = &LineError{Line: 1, Message: "the file has no header line"}
			}
			return s, nil
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			s.FirstError = &LineError{Line: parseErr.Line, Message: csvMessage(parseErr, s.Columns)}
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("read csv: %w", err)
		}
		if i := invalidUTF8(rec); i >= 0 {
			line, _ := cr.FieldPos(i)
			s.FirstError = &LineError{Line: line, Message: fmt.Sprintf("field %d is not valid UTF-8", i+1)}
			return s, nil
		}
		if records == 0 {
			s.Columns = len(rec)
			continue
		}
		s.Rows++
	}
}

func csvMessage(e *csv.ParseError, columns int) string {
	if errors.Is(e.Err, csv.ErrFieldCount) {
		return fmt.Sprintf("wrong number of fields (the header has %d)", columns)
	}
	return e.Err.Error()
}

func invalidUTF8(rec []string) int {
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return i
		}
	}
	return -1
}

func scanNDJSON(r io.Reader) (Summary, error) {
	s := Summary{Format: NDJSON}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue // blank lines, such as a trailing one, hold no record
		}
		keys, msg := object(b)
		if msg != "" {
			s.FirstError = &LineError{Line: line, Message: msg}
			return s, nil
		}
		if s.Rows == 0 {
			s.Columns = keys
		}
		s.Rows++
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		s.FirstError = &LineError{Line: line + 1, Message: fmt.Sprintf("the line is longer than %d bytes", MaxLineBytes)}
		return s, nil
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read ndjson: %w", err)
	}
	if s.Rows == 0 {
		s.FirstError = &LineError{Line: 1, Message: "the file has no records"}
	}
	return s, nil
}

// object returns the number of keys of the JSON object in b, or why b is not
// one.
func object(b []byte) (int, string) {
	if !utf8.Valid(b) {
		return 0, "not valid UTF-8"
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, fmt.Sprintf("a JSON %s, not an object", kind(v))
	}
	return len(m), ""
}

func kind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}
