package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acme/platform/api/httpx/problem"
)

type sample struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Nested *struct {
		On bool `json:"on"`
	} `json:"nested"`
}

func TestDecodeJSON_Problems(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		code                    string
	}{
		{"valid", "application/json", `{"name":"a","count":1}`, ""},
		{"charset param", "application/json; charset=utf-8", `{"name":"a"}`, ""},
		{"merge patch type", "application/merge-patch+json", `{"name":"a"}`, ""},
		{"no content type", "", `{"name":"a"}`, problem.UnsupportedMediaType},
		{"text", "text/plain", `{"name":"a"}`, problem.UnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", `name=a`, problem.UnsupportedMediaType},
		{"empty", "application/json", ``, problem.InvalidJSON},
		{"whitespace", "application/json", "  \n", problem.InvalidJSON},
		{"truncated", "application/json", `{"name":`, problem.InvalidJSON},
		{"syntax", "application/json", `{name:1}`, problem.InvalidJSON},
		{"trailing value", "application/json", `{"name":"a"} {"name":"b"}`, problem.InvalidJSON},
		{"trailing garbage", "application/json", `{"name":"a"} x`, problem.InvalidJSON},
		{"unknown field", "application/json", `{"nme":"a"}`, problem.ValidationFailed},
		{"wrong type", "application/json", `{"count":"1"}`, problem.ValidationFailed},
		{"nested wrong type", "application/json", `{"nested":{"on":1}}`, problem.ValidationFailed},
		{"array at top", "application/json", `[1]`, problem.ValidationFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			var v sample
			err := DecodeJSON(r, &v)
			var p *problem.Error
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.code != "" && (!errors.As(err, &p) || p.Code != c.code):
				t.Fatalf("err = %v, want code %s", err, c.code)
			}
		})
	}
}

// TestDecodeJSON_UnknownFieldPointerKeepsItsNesting: a misspelt field inside
// an object points at where it is, not at the top level.
func TestDecodeJSON_UnknownFieldPointerKeepsItsNesting(t *testing.T) {
	type step struct {
		Percent int `json:"percent"`
	}
	type body struct {
		Name   string `json:"name"`
		Nested *struct {
			On bool `json:"on"`
		} `json:"nested"`
		Steps  []step          `json:"steps"`
		ByName map[string]step `json:"by_name"`
	}
	for doc, want := range map[string]string{
		`{"nme":"a"}`:                         "#/nme",
		`{"nested":{"on":true,"off":false}}`:  "#/nested/off",
		`{"steps":[{"percent":1},{"pct":2}]}`: "#/steps/1/pct",
		`{"by_name":{"a/b":{"percentt":1}}}`:  "#/by_name/a~1b/percentt",
		`{"NAME":"case folds as json does"}`:  "",
	} {
		var v body
		err := DecodeJSONBytes([]byte(doc), &v)
		var p *problem.Error
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", doc, err)
			}
			continue
		}
		if !errors.As(err, &p) || len(p.Errors) != 1 || p.Errors[0].Pointer != want {
			t.Errorf("%s: err = %v, want pointer %s", doc, err, want)
		}
	}
}

func TestDecodeJSON_OversizedBodyIs413(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"`+strings.Repeat("x", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	var p *problem.Error
	if err := DecodeJSON(r, &sample{}); !errors.As(err, &p) || p.Code != problem.PayloadTooLarge {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecodeJSON feeds arbitrary bodies to the decoder: it never panics and
// every failure is a 4xx problem.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{}`, `{"name":"a","count":1,"tags":["x"],"labels":{"k":"v"},"nested":{"on":true}}`,
		`{"count":1e400}`, `{"name":"\ud800"}`, `[`, `null`, `{"a":1}`, "\xff\xfe", `{"tags":[1,2]}`, `{"count":-0}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v sample
		err := DecodeJSONBytes(body, &v)
		if err == nil {
			return
		}
		var p *problem.Error
		if !errors.As(err, &p) {
			t.Fatalf("non-problem error %v for %q", err, body)
		}
		if s := p.Status(); s < 400 || s > 499 {
			t.Fatalf("status %d for %q", s, body)
		}
	})
}
