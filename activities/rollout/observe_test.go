package rollout

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/internal/testenv"
)

func TestExpandPromQL_EscapesTheVariant(t *testing.T) {
	got := expandPromQL(`rate(x{variant="{{variant}}",flag="{{flag}}"}[{{window}}])`, `a"b\c`, "checkout", 90)
	want := `rate(x{variant="a\"b\\c",flag="checkout"}[90s])`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestPromValue_ReadsOneNumberOrSaysWhyNot(t *testing.T) {
	tests := []struct {
		name, answer string
		value        float64
		note         bool
	}{
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"0.25"]}}`, 0.25, false},
		{"one series", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}`, 12.5, false},
		{"no data", `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, true},
		{"two series", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, 0, true},
		{"NaN", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}`, 0, true},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pr promResponse
			if err := json.Unmarshal([]byte(tt.answer), &pr); err != nil {
				t.Fatal(err)
			}
			v, note, err := promValue(pr)
			if err != nil || v != tt.value || (note != "") != tt.note {
				t.Errorf("got %v %q %v", v, note, err)
			}
		})
	}
}

// TestInstantQuery_ReducesFailuresToCategories checks that what reaches a
// tenant (the error's text, the notes) is a category, never a transport
// error, a response body or where a redirect pointed.
func TestInstantQuery_ReducesFailuresToCategories(t *testing.T) {
	const secret = "SECRET-7f3a"
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed to %s", r.URL)
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)
	}))
	defer target.Close()
	big := `{"status":"success","data":{"resultType":"scalar","result":[1,"` + strings.Repeat("1", 2<<20) + `"]}}`
	answers := map[string]func(w http.ResponseWriter){
		"redirect": func(w http.ResponseWriter) {
			w.Header().Set("Location", target.URL+"/"+secret)
			w.WriteHeader(http.StatusFound)
		},
		"5xx":       func(w http.ResponseWriter) { http.Error(w, secret, http.StatusBadGateway) },
		"4xx":       func(w http.ResponseWriter) { http.Error(w, secret, http.StatusNotFound) },
		"not json":  func(w http.ResponseWriter) { _, _ = io.WriteString(w, "SSH-2.0-OpenSSH "+secret) },
		"too large": func(w http.ResponseWriter) { _, _ = io.WriteString(w, big) },
		"refused": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"parse error near `+secret+`"}`)
		},
		"slow": func(w http.ResponseWriter) { time.Sleep(time.Second) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answers[r.URL.Query().Get("query")](w)
	}))
	defer srv.Close()
	a, err := New(nil, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := telemetry.BaseTransport(a.HTTP.Transport).(*http.Transport); !ok || tr.Proxy != nil {
		t.Error("the Prometheus client uses a proxy from the environment")
	}
	tests := []struct{ query, base, err, note string }{
		{"redirect", srv.URL, "http_status_3xx", ""},
		{"5xx", srv.URL, "http_status_5xx", ""},
		{"4xx", srv.URL, "http_status_4xx", ""},
		{"not json", srv.URL, "bad_response", ""},
		{"too large", srv.URL, "bad_response", ""},
		{"refused", srv.URL, "", "prometheus refused the query (bad_data)"},
		{"slow", srv.URL, "timeout", ""},
		{"unreachable", "http://" + closedAddr(t), "unreachable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, note, err := instantQuery(ctx, a.HTTP, tt.base, tt.query, time.Now())
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err || note != tt.note {
				t.Errorf("error %q, note %q; want %q, %q", got, note, tt.err, tt.note)
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
