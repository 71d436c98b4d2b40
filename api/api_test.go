package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/config"
)

func testServer(t *testing.T) *Server {
	t.Helper()
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(Deps{Config: cfg, Redis: rdb, Keys: "test:", Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenAPI_MatchesRouter fails when a route is registered without being
// described, or described without being registered.
func TestOpenAPI_MatchesRouter(t *testing.T) {
	s := testServer(t)
	var registered []string
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			if m != http.MethodHead { // HEAD rides along with GET
				registered = append(registered, strings.ToLower(m)+" "+path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	doc := OpenAPI("http://localhost:8080")
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			described = append(described, method+" "+path)
		}
	}
	sort.Strings(registered)
	sort.Strings(described)
	if diff := cmp.Diff(registered, described); diff != "" {
		t.Errorf("router (-) and OpenAPI (+) differ:\n%s", diff)
	}
}

func TestOpenAPI_ServedAsJSON(t *testing.T) {
	s := testServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("status %d, openapi %v, err %v", rec.Code, doc["openapi"], err)
	}
}

func TestRecoverPanic_Answers500WithoutInternals(t *testing.T) {
	h := chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret internal state") }),
		requestID("http://localhost:8080", slog.New(slog.DiscardHandler)), recoverPanic)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 500 || strings.Contains(string(body), "secret") || !strings.Contains(string(body), `"code":"internal"`) {
		t.Errorf("status %d body %s", rec.Code, body)
	}
	var p map[string]any
	_ = json.Unmarshal(body, &p)
	if p["request_id"] != rec.Header().Get("X-Request-Id") {
		t.Errorf("request id %v vs %q", p["request_id"], rec.Header().Get("X-Request-Id"))
	}
}
