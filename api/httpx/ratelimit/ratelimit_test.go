package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/testenv"
)

// Small quotas over a long period, so that nothing refills during a test.
var testPolicies = Policies{
	Read:  config.Rate{Limit: 5, Period: time.Minute},
	Write: config.Rate{Limit: 3, Period: time.Minute},
	Anon:  config.Rate{Limit: 2, Period: time.Minute},
}

// fixture is a limiter with a captured log and its own metrics registry.
type fixture struct {
	l   *Limiter
	log *syncBuffer
	reg *prometheus.Registry
}

func newFixture(t *testing.T, rdb goredis.UniversalClient, keys redis.Keys) *fixture {
	t.Helper()
	f := &fixture{log: &syncBuffer{}, reg: prometheus.NewRegistry()}
	f.l = New(rdb, keys, testPolicies, slog.New(slog.NewTextHandler(f.log, nil)), f.reg)
	return f
}

func newRedisFixture(t *testing.T) (*fixture, goredis.UniversalClient, redis.Keys) {
	t.Helper()
	rdb, keys := testenv.Redis(t)
	return newFixture(t, rdb, keys), rdb, keys
}

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf.Bytes(), []byte(s))
}

// result is what a test looks at in one response.
type result struct {
	Status     int
	Policy     field
	RateLimit  field
	RetryAfter string
	Ran        bool
}

// field is a parsed draft-10 item: "name";k=v;k=v with integer values.
type field struct {
	Name   string
	Params map[string]int
}

var itemRE = regexp.MustCompile(`^"([a-z]+)"((?:;[a-z]+=[0-9]+)+)$`)
var paramRE = regexp.MustCompile(`;([a-z]+)=([0-9]+)`)

func parseField(t *testing.T, header, v string) field {
	t.Helper()
	m := itemRE.FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("%s = %q, not a draft-10 item with integer parameters", header, v)
	}
	f := field{Name: m[1], Params: map[string]int{}}
	for _, p := range paramRE.FindAllStringSubmatch(m[2], -1) {
		n, _ := strconv.Atoi(p[2])
		f.Params[p[1]] = n
	}
	return f
}

// serve runs req through mw in front of a handler that records it ran.
func serve(t *testing.T, mw func(http.Handler) http.Handler, req *http.Request) (result, *httptest.ResponseRecorder) {
	t.Helper()
	ran := false
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		w.WriteHeader(http.StatusOK)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return parseResult(t, rec, ran), rec
}

func parseResult(t *testing.T, rec *httptest.ResponseRecorder, ran bool) result {
	t.Helper()
	res := result{Status: rec.Code, RetryAfter: rec.Header().Get("Retry-After"), Ran: ran}
	if v := rec.Header().Get("RateLimit-Policy"); v != "" {
		res.Policy = parseField(t, "RateLimit-Policy", v)
	}
	if v := rec.Header().Get("RateLimit"); v != "" {
		res.RateLimit = parseField(t, "RateLimit", v)
	}
	return res
}

// request builds a request from ip, authenticated as principal unless it is empty.
func request(method, path, principal, ip string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = net.JoinHostPort(ip, "40000")
	if principal != "" {
		r = r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Name: principal, KeyID: "key_test"}))
	}
	return r
}

func wantPolicy(name string, q int) field {
	return field{Name: name, Params: map[string]int{"q": q, "w": 60}}
}

// remaining returns r of each result, and checks that t is a plausible wait.
func remaining(t *testing.T, rs []result, maxT int) []int {
	t.Helper()
	var out []int
	for _, r := range rs {
		if tt := r.RateLimit.Params["t"]; tt < 1 || tt > maxT {
			t.Errorf("t = %d, want 1..%d", tt, maxT)
		}
		out = append(out, r.RateLimit.Params["r"])
	}
	return out
}

func TestPrincipal_AllowedResponsesCarryPolicyAndDecrementingRemaining(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
		policy field
		want   []int
		maxT   int // the time GCRA takes to restore one request
	}{
		{"get is read", http.MethodGet, "/v1/jobs", wantPolicy("read", 5), []int{4, 3, 2, 1, 0}, 12},
		{"head is read", http.MethodHead, "/v1/jobs/job_1", wantPolicy("read", 5), []int{4, 3, 2, 1, 0}, 12},
		{"ofrep post is read", http.MethodPost, "/ofrep/v1/evaluate/flags/new-ui", wantPolicy("read", 5), []int{4, 3, 2, 1, 0}, 12},
		{"post is write", http.MethodPost, "/v1/jobs", wantPolicy("write", 3), []int{2, 1, 0}, 20},
		{"delete is write", http.MethodDelete, "/v1/keys/key_1", wantPolicy("write", 3), []int{2, 1, 0}, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _ := newRedisFixture(t)
			var rs []result
			for range tc.want {
				res, _ := serve(t, f.l.Principal, request(tc.method, tc.path, "acme", "192.0.2.1"))
				if res.Status != http.StatusOK || !res.Ran {
					t.Fatalf("status %d, handler ran %v", res.Status, res.Ran)
				}
				if diff := cmp.Diff(tc.policy, res.Policy); diff != "" {
					t.Errorf("RateLimit-Policy (-want +got):\n%s", diff)
				}
				if res.RateLimit.Name != tc.policy.Name {
					t.Errorf("RateLimit names %q, want %q", res.RateLimit.Name, tc.policy.Name)
				}
				rs = append(rs, res)
			}
			if diff := cmp.Diff(tc.want, remaining(t, rs, tc.maxT)); diff != "" {
				t.Errorf("r (-want +got):\n%s", diff)
			}
		})
	}
}

// problemBody is the part of the problem document these tests check.
type problemBody struct {
	Code             string   `json:"code"`
	Status           int      `json:"status"`
	ViolatedPolicies []string `json:"violated-policies"`
}

// checkLimited checks a 429 for policy: problem body, Retry-After, and
// RateLimit r=0;t=Retry-After, with the handler not run.
func checkLimited(t *testing.T, res result, rec *httptest.ResponseRecorder, policy field, maxWait int) {
	t.Helper()
	if res.Status != http.StatusTooManyRequests || res.Ran {
		t.Fatalf("status %d, handler ran %v; want 429 without the handler", res.Status, res.Ran)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	want := problemBody{Code: "rate_limited", Status: 429, ViolatedPolicies: []string{policy.Name}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
	ra, err := strconv.Atoi(res.RetryAfter)
	if err != nil || ra < 1 || ra > maxWait {
		t.Fatalf("Retry-After = %q, want an integer in 1..%d", res.RetryAfter, maxWait)
	}
	wantRL := field{Name: policy.Name, Params: map[string]int{"r": 0, "t": ra}}
	if diff := cmp.Diff(wantRL, res.RateLimit); diff != "" {
		t.Errorf("RateLimit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(policy, res.Policy); diff != "" {
		t.Errorf("RateLimit-Policy (-want +got):\n%s", diff)
	}
}

func TestPrincipal_OverQuotaIs429WithRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
		policy field
		wait   int
	}{
		{"read", http.MethodGet, "/v1/jobs", wantPolicy("read", 5), 12},
		{"write", http.MethodPost, "/v1/jobs", wantPolicy("write", 3), 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _ := newRedisFixture(t)
			for i := 0; i < tc.policy.Params["q"]; i++ {
				if res, _ := serve(t, f.l.Principal, request(tc.method, tc.path, "acme", "192.0.2.1")); res.Status != 200 {
					t.Fatalf("request %d within quota = %d", i, res.Status)
				}
			}
			res, rec := serve(t, f.l.Principal, request(tc.method, tc.path, "acme", "192.0.2.1"))
			checkLimited(t, res, rec, tc.policy, tc.wait)
		})
	}
}

func TestPrincipal_QuotasAreSeparatePerClassAndPrincipal(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	for range 3 {
		serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
	}
	cases := []struct {
		name      string
		req       *http.Request
		wantCode  int
		wantField field
	}{
		{"acme's writes are used up", request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"), 429,
			field{"write", map[string]int{"r": 0}}},
		{"acme's reads are untouched", request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"), 200,
			field{"read", map[string]int{"r": 4}}},
		{"beta's writes are untouched from the same IP", request(http.MethodPost, "/v1/jobs", "beta", "192.0.2.1"), 200,
			field{"write", map[string]int{"r": 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := serve(t, f.l.Principal, tc.req)
			got := field{res.RateLimit.Name, map[string]int{"r": res.RateLimit.Params["r"]}}
			if res.Status != tc.wantCode {
				t.Errorf("status = %d, want %d", res.Status, tc.wantCode)
			}
			if diff := cmp.Diff(tc.wantField, got); diff != "" {
				t.Errorf("RateLimit (-want +got):\n%s", diff)
			}
		})
	}
}

// statuses serves each request in turn and returns the statuses.
func statuses(t *testing.T, mw func(http.Handler) http.Handler, reqs ...*http.Request) []int {
	t.Helper()
	var out []int
	for _, r := range reqs {
		res, _ := serve(t, mw, r)
		out = append(out, res.Status)
	}
	return out
}

func TestAnonymous_LimitsPerClientIPIgnoringForwardedFor(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	spoofed := request(http.MethodGet, "/v1/public", "", "192.0.2.1")
	spoofed.Header.Set("X-Forwarded-For", "198.51.100.7")
	got := statuses(t, f.l.Anonymous,
		request(http.MethodGet, "/v1/public", "", "192.0.2.1"),
		request(http.MethodPost, "/v1/public", "", "192.0.2.1"), // one anon quota for every method
		spoofed,
		request(http.MethodGet, "/v1/public", "", "198.51.100.7"),
		request(http.MethodGet, "/v1/public", "", "2001:db8::1"),
		request(http.MethodGet, "/v1/public", "", "2001:db8::2"),
		request(http.MethodGet, "/v1/public", "", "2001:db8::3"), // same /64
	)
	if diff := cmp.Diff([]int{200, 200, 429, 200, 200, 200, 429}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	res, rec := serve(t, f.l.Anonymous, request(http.MethodGet, "/v1/public", "", "192.0.2.1"))
	checkLimited(t, res, rec, wantPolicy("anon", 2), 30)
}

func TestPrincipal_WithoutPrincipalUsesAnonPolicyPerIP(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	res, _ := serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "", "192.0.2.1"))
	if diff := cmp.Diff(wantPolicy("anon", 2), res.Policy); diff != "" {
		t.Errorf("RateLimit-Policy (-want +got):\n%s", diff)
	}
	got := statuses(t, f.l.Principal,
		request(http.MethodGet, "/v1/jobs", "", "192.0.2.1"),
		request(http.MethodGet, "/v1/jobs", "", "192.0.2.1"),
		request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"),
	)
	if diff := cmp.Diff([]int{200, 429, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestChargeFailedAuth_SpendsTheIPsAnonQuotaNotThePrincipals(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	var charged []bool
	var last *httptest.ResponseRecorder
	for range 3 {
		// What the auth middleware sees: a claimed but unverified key.
		r := request(http.MethodPost, "/v1/jobs", "", "192.0.2.1")
		r.Header.Set("Authorization", "Bearer plk_wrong")
		last = httptest.NewRecorder()
		charged = append(charged, f.l.ChargeFailedAuth(last, r))
	}
	if diff := cmp.Diff([]bool{true, true, false}, charged); diff != "" {
		t.Errorf("ChargeFailedAuth results (-want +got):\n%s", diff)
	}
	checkLimited(t, parseResult(t, last, false), last, wantPolicy("anon", 2), 30)

	// The anon quota is the IP's, shared with public routes; the principal's is whole.
	if got := statuses(t, f.l.Anonymous, request(http.MethodGet, "/v1/public", "", "192.0.2.1")); got[0] != 429 {
		t.Errorf("public route from the same IP = %d, want 429", got[0])
	}
	res, _ := serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
	if res.Status != 200 || res.RateLimit.Params["r"] != 2 {
		t.Errorf("principal after failed auths: status %d, r=%d; want 200, r=2", res.Status, res.RateLimit.Params["r"])
	}
}

func TestChargeFailedAuth_SetsTheAnonFieldsOnTheResponse(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	rec := httptest.NewRecorder()
	if !f.l.ChargeFailedAuth(rec, request(http.MethodGet, "/v1/jobs", "", "192.0.2.1")) {
		t.Fatal("first failed authentication refused")
	}
	res := parseResult(t, rec, false)
	if diff := cmp.Diff(wantPolicy("anon", 2), res.Policy); diff != "" {
		t.Errorf("RateLimit-Policy (-want +got):\n%s", diff)
	}
	if res.RateLimit.Params["r"] != 1 || rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("r=%d, wrote %d %q; want r=1 and nothing written", res.RateLimit.Params["r"], rec.Code, rec.Body)
	}
}

func TestLimiter_KeysLiveUnderTheConfiguredPrefix(t *testing.T) {
	f, rdb, keys := newRedisFixture(t)
	serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
	serve(t, f.l.Anonymous, request(http.MethodGet, "/v1/public", "", "192.0.2.1"))
	ctx := context.Background()
	got, err := rdb.Keys(ctx, string(keys)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{keys.Key("ratelimit", "anon", "192.0.2.1"), keys.Key("ratelimit", "write", "acme")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if n := rdb.Exists(ctx, "rate:"+keys.Key("ratelimit", "write", "acme")).Val(); n != 0 {
		t.Error("redis_rate's own rate: prefix was kept")
	}
}

func TestLimiter_CountsDecisionsByClassAndResult(t *testing.T) {
	f, _, _ := newRedisFixture(t)
	for range 4 {
		serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
	}
	serve(t, f.l.Principal, request(http.MethodGet, "/v1/jobs", "acme", "192.0.2.1"))
	want := map[string]float64{"write/allowed": 3, "write/limited": 1, "read/allowed": 1}
	if diff := cmp.Diff(want, metricValues(t, f.reg, "ratelimit_decisions_total")); diff != "" {
		t.Errorf("ratelimit_decisions_total (-want +got):\n%s", diff)
	}
}

// metricValues reads the metric name from reg as its label values joined
// by "/" (empty for an unlabelled metric) → value.
func metricValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetValue())
			}
			out[strings.Join(labels, "/")] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}
