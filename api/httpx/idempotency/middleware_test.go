package idempotency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/testenv"
)

// bodyLimit is the MaxBytesReader limit the fake upstream installs.
const bodyLimit = 1024

// answer is what a test compares of a response.
type answer struct {
	Status   int
	Body     string
	Replayed string
}

func answerOf(rec *httptest.ResponseRecorder) answer {
	return answer{Status: rec.Code, Body: rec.Body.String(), Replayed: rec.Header().Get("Idempotent-Replayed")}
}

// problemCode returns the code of a problem response.
func problemCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var p struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %q: %v", rec.Body.String(), err)
	}
	return p.Code
}

// request describes one call; an empty Principal means "acme".
type request struct {
	Method    string
	Path      string
	Key       string
	NoKey     bool
	Body      string
	Principal string
	KeyID     string
	RequestID string
	TraceID   string
	Type      string
}

func (rq request) build(ctx context.Context) *http.Request {
	method, path := rq.Method, rq.Path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/v1/things"
	}
	r := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(rq.Body))
	if !rq.NoKey {
		// Set the map directly so that control characters reach the middleware.
		r.Header[idempotency.Header] = []string{rq.Key}
	}
	r.Header.Set("X-Test-Principal", rq.Principal)
	r.Header.Set("X-Test-Key", rq.KeyID)
	r.Header.Set("X-Request-Id", rq.RequestID)
	r.Header.Set("X-Test-Trace", rq.TraceID)
	if rq.Type != "" {
		r.Header.Set("Content-Type", rq.Type)
	}
	return r
}

func send(h http.Handler, rq request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, rq.build(context.Background()))
	return rec
}

// upstream plays the middleware that runs before ours in the API: request id,
// authentication and the body limit.
func upstream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		w.Header().Set("X-Request-Id", id)
		ctx := web.WithRequestID(r.Context(), id)
		ctx = web.WithTraceID(ctx, r.Header.Get("X-Test-Trace"))
		name := r.Header.Get("X-Test-Principal")
		if name == "" {
			name = "acme"
		}
		keyID := r.Header.Get("X-Test-Key")
		if keyID == "" {
			keyID = "key_a"
		}
		ctx = auth.WithPrincipal(ctx, auth.Principal{Name: name, KeyID: keyID})
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// server routes /v1/things (every method), /v1/others (POST) and
// /v1/items/{id}/abort (POST) through the store's middleware to h.
func server(s *idempotency.Store, h http.Handler) http.Handler {
	r := mux.NewRouter()
	r.Handle("/v1/things", s.Middleware(h)).Methods(http.MethodPost, http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete)
	r.Handle("/v1/others", s.Middleware(h)).Methods(http.MethodPost)
	r.Handle("/v1/items/{id}/abort", s.Middleware(h)).Methods(http.MethodPost)
	return upstream(r)
}

func newStore(t *testing.T) *idempotency.Store {
	t.Helper()
	rdb, keys := testenv.Redis(t)
	return idempotency.New(rdb, keys, time.Hour, testenv.Logger(t))
}

// counter is a handler that counts its runs and answers status with a body
// naming the resource id, the run and the request body it read.
type counter struct {
	status int
	runs   atomic.Int64
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.runs.Add(1)
	body, _ := io.ReadAll(r.Body)
	id := idempotency.ResourceID(r.Context(), "job")
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Location", "/v1/things/"+id)
	h.Set("ETag", `"v1"`)
	h.Set("Set-Cookie", "session=secret")
	h.Set("RateLimit", `"write";r=57;t=1`)
	w.WriteHeader(c.statusOrCreated())
	if c.status != http.StatusNoContent {
		fmt.Fprintf(w, `{"id":%q,"run":%d,"body":%q}`, id, n, body)
	}
}

func (c *counter) statusOrCreated() int {
	if c.status == 0 {
		return http.StatusCreated
	}
	return c.status
}

func TestMiddleware_ReplayReturnsStoredResponseWithoutRunningHandler(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	first := send(srv, request{Key: "k1", Body: `{"a":1}`, RequestID: "req-1"})
	second := send(srv, request{Key: "k1", Body: `{"a":1}`, RequestID: "req-2"})

	want := answer{Status: 201, Body: first.Body.String(), Replayed: "true"}
	if diff := cmp.Diff(want, answerOf(second)); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
	if !strings.Contains(first.Body.String(), `"body":"{\"a\":1}"`) {
		t.Errorf("handler did not read the whole body: %s", first.Body.String())
	}
	if got := h.runs.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}
	if first.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("first response is marked replayed")
	}
	gotHeaders := map[string]string{}
	for _, name := range []string{"Content-Type", "Location", "ETag", "Set-Cookie", "RateLimit", "X-Request-Id"} {
		gotHeaders[name] = second.Header().Get(name)
	}
	wantHeaders := map[string]string{
		"Content-Type": "application/json",
		"Location":     first.Header().Get("Location"),
		"ETag":         `"v1"`,
		"Set-Cookie":   "",
		"RateLimit":    "",
		"X-Request-Id": "req-2",
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("replayed headers (-want +got):\n%s", diff)
	}
}

func TestMiddleware_SameKeyDifferentBodyIs422(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	send(srv, request{Key: "k1", Body: `{"a":1}`})
	got := send(srv, request{Key: "k1", Body: `{"a":2}`})

	if got.Code != 422 || problemCode(t, got) != "idempotency_key_reused" {
		t.Errorf("got %d %s, want 422 idempotency_key_reused", got.Code, got.Body.String())
	}
	if n := h.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestMiddleware_SameKeyOnAnotherRouteIs422(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	send(srv, request{Path: "/v1/things", Key: "k1", Body: `{}`})
	got := send(srv, request{Path: "/v1/others", Key: "k1", Body: `{}`})

	if got.Code != 422 || problemCode(t, got) != "idempotency_key_reused" {
		t.Errorf("got %d %s, want 422 idempotency_key_reused", got.Code, got.Body.String())
	}
	if n := h.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestMiddleware_ReleasedKeyIsFreeOnAnotherRoute(t *testing.T) {
	t.Parallel()
	h := &counter{status: 500}
	srv := server(newStore(t), h)

	send(srv, request{Path: "/v1/things", Key: "k1", Body: `{}`})
	h.status = 201
	got := send(srv, request{Path: "/v1/others", Key: "k1", Body: `{}`})

	if got.Code != 201 {
		t.Errorf("got %d %s, want 201: a released key must not stay bound to its route", got.Code, got.Body.String())
	}
}

func TestMiddleware_InvalidKeyIs400(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  []string
	}{
		{"empty", []string{""}},
		{"256 characters", []string{strings.Repeat("k", 256)}},
		{"quoted 256 characters", []string{`"` + strings.Repeat("k", 256) + `"`}},
		{"non-ASCII", []string{"clé"}},
		{"control character", []string{"a\x01b"}},
		{"tab", []string{"a\tb"}},
		{"DEL", []string{"a\x7fb"}},
		{"empty quoted string", []string{`""`}},
		{"unterminated quote", []string{`"abc`}},
		{"bad escape", []string{`"a\nb"`}},
		{"parameters after the string", []string{`"abc";v=1`}},
		{"two headers", []string{"a", "b"}},
	}
	h := &counter{}
	srv := server(newStore(t), h)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request{Body: `{}`}.build(context.Background())
			r.Header[idempotency.Header] = tc.key
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, r)
			if rec.Code != 400 || problemCode(t, rec) != "invalid_idempotency_key" {
				t.Errorf("got %d %s, want 400 invalid_idempotency_key", rec.Code, rec.Body.String())
			}
		})
	}
	if n := h.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times, want 0", n)
	}
}

func TestMiddleware_QuotedKeyIsSameAsBare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, first, second string
	}{
		{"quoted then bare", `"abc"`, `abc`},
		{"bare then quoted", `xyz`, `"xyz"`},
		{"escaped quote and backslash", `"a\"b\\c"`, `a"b\c`},
		{"inner space", `"a b"`, `a b`},
		{"255 characters quoted", `"` + strings.Repeat("q", 255) + `"`, strings.Repeat("q", 255)},
	}
	srv := server(newStore(t), &counter{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := send(srv, request{Key: tc.first, Body: `{}`})
			second := send(srv, request{Key: tc.second, Body: `{}`})
			want := answer{Status: 201, Body: first.Body.String(), Replayed: "true"}
			if diff := cmp.Diff(want, answerOf(second)); diff != "" {
				t.Errorf("second request (-want +got):\n%s", diff)
			}
		})
	}
}

// blocking is a handler that signals it started and waits for release.
type blocking struct {
	counter
	started chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.started <- struct{}{}
	<-b.release
	b.counter.ServeHTTP(w, r)
}

func TestMiddleware_SameKeyInFlightIs409WithRetryAfter(t *testing.T) {
	t.Parallel()
	h := newBlocking()
	srv := server(newStore(t), h)

	firstDone := make(chan *httptest.ResponseRecorder)
	go func() { firstDone <- send(srv, request{Key: "k1", Body: `{}`}) }()
	<-h.started

	during := send(srv, request{Key: "k1", Body: `{}`})
	close(h.release)
	first := <-firstDone
	after := send(srv, request{Key: "k1", Body: `{}`})

	if during.Code != 409 || problemCode(t, during) != "idempotency_request_in_progress" {
		t.Errorf("during: got %d %s, want 409 idempotency_request_in_progress", during.Code, during.Body.String())
	}
	if got := during.Header().Get("Retry-After"); got != "1" {
		t.Errorf("during: Retry-After = %q, want 1", got)
	}
	want := answer{Status: 201, Body: first.Body.String(), Replayed: "true"}
	if diff := cmp.Diff(want, answerOf(after)); diff != "" {
		t.Errorf("after completion (-want +got):\n%s", diff)
	}
	if n := h.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestMiddleware_StoresOnly2xxAnd4xxExceptAuthConflictAndQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		stored bool
	}{
		{200, true},
		{201, true},
		{202, true},
		{204, true},
		{400, true},
		{404, true},
		{412, true},
		{422, true},
		{401, false},
		{403, false},
		{409, false},
		{429, false},
		{500, false},
		{502, false},
		{503, false},
		{303, false},
	}
	s := newStore(t)
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			h := &counter{status: tc.status}
			srv := server(s, h)
			key := fmt.Sprintf("k-%d", tc.status)
			first := send(srv, request{Key: key, Body: `{}`})
			second := send(srv, request{Key: key, Body: `{}`})

			wantRuns, wantSecond := int64(2), answer{Status: tc.status, Body: strings.Replace(first.Body.String(), `"run":1`, `"run":2`, 1)}
			if tc.stored {
				wantRuns, wantSecond = 1, answer{Status: tc.status, Body: first.Body.String(), Replayed: "true"}
			}
			if diff := cmp.Diff(wantSecond, answerOf(second)); diff != "" {
				t.Errorf("second request (-want +got):\n%s", diff)
			}
			if n := h.runs.Load(); n != wantRuns {
				t.Errorf("handler ran %d times, want %d", n, wantRuns)
			}
		})
	}
}

func TestMiddleware_ConcurrentSameKeyRunsHandlerOnce(t *testing.T) {
	t.Parallel()
	const n = 50
	h := &counter{}
	srv := server(newStore(t), h)

	start := make(chan struct{})
	answers := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = send(srv, request{Key: "one", Body: `{"same":true}`})
		})
	}
	close(start)
	wg.Wait()

	if got := h.runs.Load(); got != 1 {
		t.Fatalf("handler ran %d times, want 1", got)
	}
	var original string
	for _, rec := range answers {
		if rec.Code == 201 && rec.Header().Get("Idempotent-Replayed") == "" {
			original = rec.Body.String()
		}
	}
	counts := map[string]int{}
	for _, rec := range answers {
		a := answerOf(rec)
		switch {
		case a.Status == 201 && a.Replayed == "":
			counts["original"]++
		case a == answer{Status: 201, Body: original, Replayed: "true"}:
			counts["replay"]++
		case a.Status == 409 && rec.Header().Get("Retry-After") == "1":
			counts["in progress"]++
		default:
			t.Errorf("unexpected answer %+v", a)
		}
	}
	if counts["original"] != 1 || counts["original"]+counts["replay"]+counts["in progress"] != n {
		t.Errorf("answers = %v, want one original and the rest replays or 409s", counts)
	}
}

func TestMiddleware_IgnoresKeyOnMethodsOtherThanPost(t *testing.T) {
	t.Parallel()
	var keyed atomic.Int64
	runs := map[string]*atomic.Int64{}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		runs[m] = new(atomic.Int64)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs[r.Method].Add(1)
		if _, ok := idempotency.Key(r.Context()); ok {
			keyed.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := server(newStore(t), h)
	for method, n := range runs {
		t.Run(method, func(t *testing.T) {
			for range 2 {
				rec := send(srv, request{Method: method, Key: "k1", Body: `{}`})
				if diff := cmp.Diff(answer{Status: 200}, answerOf(rec)); diff != "" {
					t.Errorf("response (-want +got):\n%s", diff)
				}
			}
			if got := n.Load(); got != 2 {
				t.Errorf("handler ran %d times, want 2", got)
			}
		})
	}
	if got := keyed.Load(); got != 0 {
		t.Errorf("Key reported a key on %d non-POST requests", got)
	}
}

func TestMiddleware_KeysArePerPrincipal(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	acme := send(srv, request{Key: "shared", Body: `{}`, Principal: "acme"})
	globex := send(srv, request{Key: "shared", Body: `{}`, Principal: "globex"})

	if acme.Code != 201 || globex.Code != 201 || globex.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("got %d and %d (replayed %q), want two fresh 201s",
			acme.Code, globex.Code, globex.Header().Get("Idempotent-Replayed"))
	}
	if n := h.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	if acme.Header().Get("Location") == globex.Header().Get("Location") {
		t.Errorf("both principals got resource %s", acme.Header().Get("Location"))
	}
}

func TestMiddleware_WithoutPrincipalIgnoresKey(t *testing.T) {
	t.Parallel()
	h := &counter{}
	s := newStore(t)
	r := mux.NewRouter()
	r.Handle("/v1/things", s.Middleware(h)).Methods(http.MethodPost)

	for range 2 {
		rec := send(r, request{Key: "k1", Body: `{}`})
		if rec.Code != 201 || rec.Header().Get("Idempotent-Replayed") != "" {
			t.Errorf("got %d replayed %q, want a fresh 201", rec.Code, rec.Header().Get("Idempotent-Replayed"))
		}
	}
	if n := h.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
}

func TestMiddleware_BodyOverLimitIs413(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	rec := send(srv, request{Key: "k1", Body: strings.Repeat("x", bodyLimit+1)})

	if rec.Code != 413 || problemCode(t, rec) != "payload_too_large" {
		t.Errorf("got %d %s, want 413 payload_too_large", rec.Code, rec.Body.String())
	}
	if n := h.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times, want 0", n)
	}
}

func TestMiddleware_ResponseOverCapIsNotStored(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	idempotency.SetMaxBody(s, 16)
	h := &counter{}
	srv := server(s, h)

	first := send(srv, request{Key: "k1", Body: `{}`})
	second := send(srv, request{Key: "k1", Body: `{}`})

	if first.Body.Len() <= 16 {
		t.Fatalf("test body too small: %d bytes", first.Body.Len())
	}
	if second.Code != 201 || second.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("second: got %d replayed %q, want a fresh 201", second.Code, second.Header().Get("Idempotent-Replayed"))
	}
	if n := h.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	if first.Header().Get("Location") != second.Header().Get("Location") {
		t.Errorf("the rerun created %s, want the same resource %s",
			second.Header().Get("Location"), first.Header().Get("Location"))
	}
}

func TestMiddleware_PanicReleasesKey(t *testing.T) {
	t.Parallel()
	h := &counter{}
	panicky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.runs.Load() == 0 {
			h.runs.Add(1)
			panic("boom")
		}
		h.ServeHTTP(w, r)
	})
	srv := recoverPanic(server(newStore(t), panicky))

	first := send(srv, request{Key: "k1", Body: `{}`})
	second := send(srv, request{Key: "k1", Body: `{}`})

	if first.Code != 500 {
		t.Errorf("first: got %d, want the recovery middleware's 500", first.Code)
	}
	if second.Code != 201 || second.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("second: got %d replayed %q, want a fresh 201", second.Code, second.Header().Get("Idempotent-Replayed"))
	}
}

// recoverPanic stands in for the API's recovery middleware.
func recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func TestMiddleware_KeyExpiresAfterTTL(t *testing.T) {
	t.Parallel()
	rdb, keys := testenv.Redis(t)
	h := &counter{}
	srv := server(idempotency.New(rdb, keys, 200*time.Millisecond, testenv.Logger(t)), h)

	send(srv, request{Key: "k1", Body: `{}`})
	time.Sleep(400 * time.Millisecond)
	again := send(srv, request{Key: "k1", Body: `{"other":"body"}`})

	if again.Code != 201 || again.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("after the TTL: got %d replayed %q, want a fresh 201", again.Code, again.Header().Get("Idempotent-Replayed"))
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMiddleware_RedisDownServesWithoutRecordAndLogsOnce(t *testing.T) {
	t.Parallel()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	var logs syncBuffer
	h := &counter{}
	store := idempotency.New(rdb, "test:down:", time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	srv := server(store, h)
	down := store.Collector()
	if got := gaugeValue(t, down); got != 0 {
		t.Errorf("idempotency_store_down = %v before any request, want 0", got)
	}

	var locations []string
	for range 3 {
		rec := send(srv, request{Key: "k1", Body: `{}`})
		if rec.Code != 201 {
			t.Errorf("got %d %s, want 201", rec.Code, rec.Body.String())
		}
		locations = append(locations, rec.Header().Get("Location"))
	}
	other := send(srv, request{Key: "k1", Body: `{}`, Principal: "globex"})

	if n := h.runs.Load(); n != 4 {
		t.Errorf("handler ran %d times, want 4", n)
	}
	want := []string{locations[0], locations[0], locations[0]}
	if diff := cmp.Diff(want, locations); diff != "" {
		t.Errorf("ResourceID must not change between retries (-want +got):\n%s", diff)
	}
	if other.Header().Get("Location") == locations[0] {
		t.Errorf("another principal got the same resource %s", locations[0])
	}
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 {
		t.Errorf("logged %d warnings, want 1 per outage:\n%s", got, logs.String())
	}
	if got := gaugeValue(t, down); got != 1 {
		t.Errorf("idempotency_store_down = %v while Redis is unreachable, want 1", got)
	}
}

func TestResourceID_DerivedFromKeyElseRandom(t *testing.T) {
	t.Parallel()
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := idempotency.Key(r.Context())
		got = append(got, key+" "+idempotency.ResourceID(r.Context(), "job"))
		w.WriteHeader(http.StatusAccepted)
	})
	srv := server(newStore(t), h)

	send(srv, request{NoKey: true, Body: `{}`})
	send(srv, request{NoKey: true, Body: `{}`})
	send(srv, request{Key: `"k1"`, Body: `{}`})

	if len(got) != 3 || got[0] == got[1] || !strings.HasPrefix(got[0], " job_") {
		t.Errorf("without a key: got %q, want two different random job ids", got)
	}
	if !strings.HasPrefix(got[2], "k1 job_") {
		t.Errorf("with a key: got %q, want the normalised key and a job id", got[2])
	}
}

func TestLockTTL_FollowsDeadlineNotRetention(t *testing.T) {
	t.Parallel()
	rdb, keys := testenv.Redis(t)
	s := idempotency.New(rdb, keys, time.Hour, testenv.Logger(t))
	soon, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Minute))
	defer cancelPast()

	tests := []struct {
		name     string
		ctx      context.Context
		min, max time.Duration
	}{
		{"no deadline: the retention", context.Background(), time.Hour, time.Hour},
		{"deadline: until it plus grace", soon, 35 * time.Second, 41 * time.Second},
		{"passed deadline: at least a second", past, time.Second, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := idempotency.LockTTL(s, tc.ctx); got < tc.min || got > tc.max {
				t.Errorf("LockTTL = %v, want between %v and %v", got, tc.min, tc.max)
			}
		})
	}
}

// H4: a record belongs to the credential that made the request. Another key
// of the same principal never gets its replay: the handler runs again and
// does its own authorization (resource ids still collide, see ResourceID).
func TestMiddleware_AnotherCredentialOfThePrincipalGetsNoReplay(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)

	first := send(srv, request{Key: "k1", Body: `{}`, KeyID: "key_a"})
	other := send(srv, request{Key: "k1", Body: `{}`, KeyID: "key_b"})
	again := send(srv, request{Key: "k1", Body: `{}`, KeyID: "key_a"})

	if other.Code != 201 || other.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("other credential: got %d replayed %q, want the handler to run", other.Code, other.Header().Get("Idempotent-Replayed"))
	}
	if n := h.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	if again.Header().Get("Idempotent-Replayed") != "true" || again.Body.String() != first.Body.String() {
		t.Errorf("same credential: got %d %s, want the replay of the first", again.Code, again.Body.String())
	}
	if first.Header().Get("Location") != other.Header().Get("Location") {
		t.Errorf("resource ids differ per credential: %s and %s", first.Header().Get("Location"), other.Header().Get("Location"))
	}
	onOtherRoute := send(srv, request{Path: "/v1/others", Key: "k1", Body: `{}`, KeyID: "key_b"})
	if onOtherRoute.Code != 422 || problemCode(t, onOtherRoute) != "idempotency_key_reused" {
		t.Errorf("other credential, other route: got %d %s, want 422", onOtherRoute.Code, onOtherRoute.Body.String())
	}
}

// M1: the path's ids, the query and the media type are part of the request.
func TestMiddleware_SameKeyOnAnotherResourceQueryOrTypeIs422(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		first, second request
		replayed      bool
	}{
		{"other path id", request{Path: "/v1/items/rol_A/abort"}, request{Path: "/v1/items/rol_B/abort"}, false},
		{"other query", request{Path: "/v1/things?process=false"}, request{Path: "/v1/things?process=true"}, false},
		{"other media type", request{Type: "text/csv"}, request{Type: "application/x-ndjson"}, false},
		{"same query in another order", request{Path: "/v1/things?a=1&b=2"}, request{Path: "/v1/things?b=2&a=1"}, true},
		{"same media type spelled otherwise", request{Type: "Text/CSV; charset=utf-8"}, request{Type: "text/csv;charset=utf-8"}, true},
	}
	srv := server(newStore(t), &counter{})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("k%d", i)
			tc.first.Key, tc.second.Key = key, key
			first := send(srv, tc.first)
			second := send(srv, tc.second)
			if first.Code != 201 {
				t.Fatalf("first: got %d %s", first.Code, first.Body.String())
			}
			if tc.replayed {
				if second.Header().Get("Idempotent-Replayed") != "true" {
					t.Errorf("got %d %s, want a replay", second.Code, second.Body.String())
				}
				return
			}
			if second.Code != 422 || problemCode(t, second) != "idempotency_key_reused" {
				t.Errorf("got %d %s, want 422 idempotency_key_reused", second.Code, second.Body.String())
			}
		})
	}
}

// secretHandler answers like key creation: 201 with a secret, no-store.
type secretHandler struct{ runs atomic.Int64 }

func (s *secretHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.runs.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/v1/keys/key_new")
	_ = web.WriteJSON(w, http.StatusCreated, map[string]string{"secret": fmt.Sprintf("plk_topsecret%d", n)})
}

// H4: a response marked no-store (it carries a secret) is never written to
// Redis; the key is kept as a tombstone and a retry is told the secret was
// shown once instead of getting it again or creating another.
func TestMiddleware_NoStoreResponseIsNotKeptAndItsReplayIs409(t *testing.T) {
	t.Parallel()
	rdb, keys := testenv.Redis(t)
	h := &secretHandler{}
	srv := server(idempotency.New(rdb, keys, time.Hour, testenv.Logger(t)), h)

	first := send(srv, request{Key: "k1", Body: `{}`, RequestID: "req-1"})
	second := send(srv, request{Key: "k1", Body: `{}`, RequestID: "req-2"})

	if first.Code != 201 || !strings.Contains(first.Body.String(), "plk_topsecret1") {
		t.Fatalf("first: got %d %s", first.Code, first.Body.String())
	}
	if second.Code != 409 || problemCode(t, second) != "conflict" || strings.Contains(second.Body.String(), "plk_") {
		t.Errorf("replay: got %d %s, want 409 conflict without the secret", second.Code, second.Body.String())
	}
	if !strings.Contains(second.Body.String(), "/v1/keys/key_new") {
		t.Errorf("replay does not say what was created: %s", second.Body.String())
	}
	if n := h.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	ctx := context.Background()
	names, err := rdb.Keys(ctx, string(keys)+"*").Result()
	if err != nil || len(names) == 0 {
		t.Fatalf("no idempotency record in Redis (%v)", err)
	}
	for _, name := range names {
		dump, _ := rdb.Dump(ctx, name).Result()
		if strings.Contains(dump, "topsecret") {
			t.Errorf("Redis key %s holds the secret", name)
		}
	}
}

// problemHandler answers 404 as a problem document.
func problemHandler(w http.ResponseWriter, r *http.Request) {
	web.WriteError(w, r, problem.New(problem.NotFound, "no such item"))
}

// A replayed problem document names the request that got it, as its
// X-Request-Id header does.
func TestMiddleware_ReplayedProblemCarriesTheCurrentRequestAndTraceID(t *testing.T) {
	t.Parallel()
	srv := server(newStore(t), http.HandlerFunc(problemHandler))

	first := send(srv, request{Key: "k1", Body: `{}`, RequestID: "req-1", TraceID: strings.Repeat("a", 32)})
	second := send(srv, request{Key: "k1", Body: `{}`, RequestID: "req-2", TraceID: strings.Repeat("b", 32)})

	if second.Code != 404 || second.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("second: got %d replayed %q", second.Code, second.Header().Get("Idempotent-Replayed"))
	}
	want := strings.NewReplacer("req-1", "req-2", strings.Repeat("a", 32), strings.Repeat("b", 32)).Replace(first.Body.String())
	if diff := cmp.Diff(want, second.Body.String()); diff != "" {
		t.Errorf("replayed body (-want +got):\n%s", diff)
	}
	if got := second.Header().Get("Content-Length"); got != fmt.Sprint(second.Body.Len()) {
		t.Errorf("Content-Length %s for %d bytes", got, second.Body.Len())
	}
}

// A client that hangs up once its request is sent still gets its request
// run: the claim, like the Starter's start, is detached from the client.
func TestMiddleware_ClientGoneBeforeTheClaimStillRuns(t *testing.T) {
	t.Parallel()
	h := &counter{}
	srv := server(newStore(t), h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, request{Key: "k1", Body: `{}`}.build(ctx))
	retry := send(srv, request{Key: "k1", Body: `{}`})

	if rec.Code != 201 || h.runs.Load() != 1 {
		t.Errorf("cancelled request: got %d %s with %d runs, want the handler to run", rec.Code, rec.Body.String(), h.runs.Load())
	}
	if retry.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: got %d %s, want the stored response", retry.Code, retry.Body.String())
	}
}

// gaugeValue reads the one gauge c exports.
func gaugeValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gather: %v %v", families, err)
	}
	return families[0].GetMetric()[0].GetGauge().GetValue()
}
