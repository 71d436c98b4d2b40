package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/internal/config"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkProblem asserts the RFC 9457 envelope of the contract.
func checkProblem(t *testing.T, res response, status int, code string) map[string]any {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	p := res.Map(t)
	if p["code"] != code || p["status"] != float64(status) {
		t.Errorf("code/status = %v/%v, want %s/%d", p["code"], p["status"], code, status)
	}
	if p["type"] != "http://localhost:8080/problems/"+code {
		t.Errorf("type = %v", p["type"])
	}
	if p["title"] == "" || p["instance"] == "" {
		t.Errorf("title/instance missing: %s", res.Body)
	}
	if p["request_id"] != res.Header.Get("X-Request-Id") || res.Header.Get("X-Request-Id") == "" {
		t.Errorf("request_id %v != X-Request-Id %q", p["request_id"], res.Header.Get("X-Request-Id"))
	}
	if tid, _ := p["trace_id"].(string); !hex32.MatchString(tid) || tid != res.Header.Get("X-Trace-Id") {
		t.Errorf("trace_id %q, X-Trace-Id %q", tid, res.Header.Get("X-Trace-Id"))
	}
	// Random ids may contain anything; the human parts may not leak internals.
	human, _ := json.Marshal([]any{p["title"], p["detail"], p["errors"]})
	for _, leak := range []string{"pgx", "SQLSTATE", "goroutine", "redis:", "dial tcp"} {
		if strings.Contains(string(human), leak) {
			t.Errorf("body leaks internals (%s): %s", leak, res.Body)
		}
	}
	return p
}

func pointers(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["pointer"].(string))
	}
	return out
}

func (s *stack) countKeys() int {
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func TestContract_ErrorsAreProblems(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "admin"))
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		code         string
		pointers     []string
	}{
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found", nil},
		{"unknown problem page", "GET", "/problems/nope", nil, nil, 404, "not_found", nil},
		{"bad JSON", "POST", "/v1/keys", `{"name":`, admin, 400, "invalid_json", nil},
		{"not JSON at all", "POST", "/v1/keys", `hello`, admin, 400, "invalid_json", nil},
		{"trailing data", "POST", "/v1/keys", `{"name":"a","scopes":["jobs:read"]} {}`, admin, 400, "invalid_json", nil},
		{"unknown field", "POST", "/v1/keys", `{"name":"a","scopes":["jobs:read"],"scope":"x"}`, admin, 400, "validation_failed", []string{"#/scope"}},
		{"wrong type", "POST", "/v1/keys", `{"name":5,"scopes":["jobs:read"]}`, admin, 400, "validation_failed", []string{"#/name"}},
		{"every invalid field", "POST", "/v1/keys", `{"principal":"Bad Name","name":"","scopes":["nope","jobs:read","jobs:read"],"expires_at":"2001-01-01T00:00:00Z"}`,
			admin, 400, "validation_failed", []string{"#/principal", "#/name", "#/scopes/0", "#/scopes/2", "#/expires_at"}},
		{"no scopes", "POST", "/v1/keys", `{"name":"a","scopes":[]}`, admin, 400, "validation_failed", []string{"#/scopes"}},
		{"oversized body", "POST", "/v1/keys", big, admin, 413, "payload_too_large", nil},
		{"bad limit", "GET", "/v1/keys?limit=0", nil, admin, 400, "validation_failed", []string{"#/limit"}},
		{"limit not an integer", "GET", "/v1/keys?limit=ten", nil, admin, 400, "validation_failed", []string{"#/limit"}},
		{"unknown filter", "GET", "/v1/keys?princpal=x", nil, admin, 400, "validation_failed", []string{"#/princpal"}},
		{"tampered cursor", "GET", "/v1/keys?cursor=abc", nil, admin, 400, "invalid_cursor", nil},
		{"empty idempotency key", "POST", "/v1/keys", `{"name":"a","scopes":["jobs:read"]}`, with(admin, []string{"Idempotency-Key", ""}), 400, "invalid_idempotency_key", nil},
		{"long idempotency key", "POST", "/v1/keys", `{"name":"a","scopes":["jobs:read"]}`, with(admin, []string{"Idempotency-Key", strings.Repeat("k", 256)}), 400, "invalid_idempotency_key", nil},
		{"unknown key id", "GET", "/v1/keys/key_nope", nil, admin, 404, "not_found", nil},
	}
	before := s.countKeys()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(c.method, c.path, c.body, c.headers...)
			p := checkProblem(t, res, c.status, c.code)
			if c.pointers != nil {
				if diff := cmp.Diff(c.pointers, pointers(p)); diff != "" {
					t.Errorf("pointers (-want +got):\n%s", diff)
				}
			}
		})
	}
	if after := s.countKeys(); after != before {
		t.Errorf("invalid requests changed the keys table: %d → %d rows", before, after)
	}
}

func TestContract_WrongContentTypeIs415(t *testing.T) {
	s := newStack(t)
	admin := s.key("acme", "admin")
	req, _ := http.NewRequest("POST", s.URL+"/v1/keys", strings.NewReader(`{"name":"a","scopes":["jobs:read"]}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestContract_MethodNotAllowedListsAllow(t *testing.T) {
	s := newStack(t)
	res := s.do("PUT", "/v1/keys", nil)
	checkProblem(t, res, 405, "method_not_allowed")
	if got := res.Header.Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", got)
	}
	res = s.do("POST", "/v1/keys/key_x", nil)
	checkProblem(t, res, 405, "method_not_allowed")
	if got := res.Header.Get("Allow"); got != "DELETE, GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
}

func TestContract_ProblemPagesServeEveryCode(t *testing.T) {
	s := newStack(t)
	for _, code := range []string{"invalid_json", "validation_failed", "invalid_cursor", "invalid_idempotency_key",
		"unauthenticated", "insufficient_scope", "not_found", "method_not_allowed", "request_timeout", "conflict",
		"idempotency_request_in_progress", "precondition_failed", "payload_too_large", "unsupported_media_type",
		"idempotency_key_reused", "rate_limited", "internal", "unavailable"} {
		res := s.do("GET", "/problems/"+code, nil)
		if res.Status != 200 || !strings.Contains(string(res.Body), code) {
			t.Errorf("/problems/%s = %d", code, res.Status)
		}
	}
}

func TestContract_RequestIDKeptOrReplaced(t *testing.T) {
	s := newStack(t)
	cases := []struct {
		inbound string
		kept    bool
	}{
		{"abc-123_X.y", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"semi;colon", false},
		{"", false},
	}
	for _, c := range cases {
		for _, path := range []string{"/healthz", "/v1/nothing", "/v1/keys"} {
			res := s.do("GET", path, nil, "X-Request-Id", c.inbound)
			got := res.Header.Get("X-Request-Id")
			if c.kept && got != c.inbound || !c.kept && (got == c.inbound || !strings.HasPrefix(got, "req_")) {
				t.Errorf("%s with X-Request-Id %q → %q", path, c.inbound, got)
			}
		}
	}
}

func TestContract_TraceContextContinuesOrRestarts(t *testing.T) {
	s := newStack(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	// An authenticated caller's trace is continued; an anonymous caller's
	// is not (a new root, linked to the caller's span: issue 11).
	key := s.key("acme", "jobs:read")
	res := s.do("GET", "/v1/keys", nil, with(bearer(key), []string{"traceparent", "00-" + traceID + "-00f067aa0ba902b7-01"})...)
	if got := res.Header.Get("X-Trace-Id"); got != traceID {
		t.Errorf("valid traceparent, authenticated: X-Trace-Id = %q, want %q", got, traceID)
	}
	res = s.do("GET", "/healthz", nil, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if got := res.Header.Get("X-Trace-Id"); !hex32.MatchString(got) || got == traceID {
		t.Errorf("valid traceparent, anonymous: X-Trace-Id = %q, want a new trace id", got)
	}
	for _, bad := range []string{"garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-xyz-00f067aa0ba902b7-01"} {
		res := s.do("GET", "/healthz", nil, "traceparent", bad)
		if got := res.Header.Get("X-Trace-Id"); res.Status != 200 || !hex32.MatchString(got) || got == traceID {
			t.Errorf("invalid traceparent %q: status %d, X-Trace-Id %q", bad, res.Status, got)
		}
	}
}

func TestContract_AuthenticationFailuresAre401(t *testing.T) {
	s := newStack(t)
	expired := s.key("acme", "keys:admin")
	if _, err := s.DB.Exec(context.Background(), `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE principal = 'acme'`); err != nil {
		t.Fatal(err)
	}
	revoked := s.key("beta", "keys:admin")
	if _, err := s.DB.Exec(context.Background(), `UPDATE api_keys SET revoked_at = now() WHERE principal = 'beta'`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, header string
		challenge    string
	}{
		{"no credentials", "", `Bearer realm="platform"`},
		{"basic scheme", "Basic dXNlcjpwYXNz", `Bearer realm="platform", error="invalid_token"`},
		{"not a platform key", "Bearer abc", `Bearer realm="platform", error="invalid_token"`},
		{"unknown key", "Bearer plk_unknown", `Bearer realm="platform", error="invalid_token"`},
		{"expired key", "Bearer " + expired, `Bearer realm="platform", error="invalid_token"`},
		{"revoked key", "Bearer " + revoked, `Bearer realm="platform", error="invalid_token"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.header != "" {
				headers = []string{"Authorization", c.header}
			}
			res := s.do("GET", "/v1/keys", nil, headers...)
			checkProblem(t, res, 401, "unauthenticated")
			if got := res.Header.Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, c.challenge)
			}
		})
	}
}

func TestContract_MissingScopeIs403(t *testing.T) {
	s := newStack(t)
	reader := bearer(s.key("acme", "jobs:read"))
	res := s.do("GET", "/v1/keys", nil, reader...)
	checkProblem(t, res, 403, "insufficient_scope")
	want := `Bearer realm="platform", error="insufficient_scope", scope="keys:admin"`
	if got := res.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q", got)
	}
}

func TestKeys_CreateShowsSecretOnceAndItWorks(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "keys:admin", "jobs:read", "jobs:write"))
	res := s.do("POST", "/v1/keys", map[string]any{"name": "ci", "scopes": []string{"jobs:read"}, "expires_at": nil}, admin...)
	if res.Status != 201 {
		t.Fatalf("create = %d %s", res.Status, res.Body)
	}
	var created struct {
		ID, Principal, Name, Secret string
		Scopes                      []string
	}
	res.JSON(t, &created)
	if !strings.HasPrefix(created.ID, "key_") || !strings.HasPrefix(created.Secret, "plk_") || created.Principal != "acme" ||
		res.Header.Get("Location") != "/v1/keys/"+created.ID {
		t.Fatalf("created = %+v", created)
	}
	got := s.do("GET", "/v1/keys/"+created.ID, nil, admin...)
	if got.Status != 200 || strings.Contains(string(got.Body), created.Secret) || strings.Contains(string(got.Body), `"secret"`) {
		t.Errorf("GET shows the secret or failed: %d %s", got.Status, got.Body)
	}
	var stored []byte
	if err := s.DB.QueryRow(context.Background(), `SELECT hash FROM api_keys WHERE id = $1`, created.ID).Scan(&stored); err != nil || len(stored) != 32 {
		t.Errorf("stored hash = %x, %v", stored, err)
	}
	// The new key authenticates, with its own scopes only.
	if r := s.do("GET", "/v1/ping/png_x", nil, bearer(created.Secret)...); r.Status != 404 {
		t.Errorf("new key on a route needing any key = %d", r.Status)
	}
	checkProblem(t, s.do("GET", "/v1/keys", nil, bearer(created.Secret)...), 403, "insufficient_scope")
}

func TestKeys_CannotGrantMoreThanTheCreatorHas(t *testing.T) {
	s := newStack(t)
	keysAdmin := bearer(s.key("acme", "keys:admin", "jobs:read"))
	admin := bearer(s.key("root", "admin"))
	cases := []struct {
		name    string
		auth    []string
		body    map[string]any
		status  int
		scopeIn string
	}{
		{"scope the creator lacks", keysAdmin, map[string]any{"name": "x", "scopes": []string{"jobs:write"}}, 403, `scope="jobs:write"`},
		{"admin scope", keysAdmin, map[string]any{"name": "x", "scopes": []string{"admin"}}, 403, `scope="admin"`},
		{"another principal", keysAdmin, map[string]any{"principal": "beta", "name": "x", "scopes": []string{"jobs:read"}}, 403, `scope="admin"`},
		{"own principal named", keysAdmin, map[string]any{"principal": "acme", "name": "x", "scopes": []string{"jobs:read"}}, 201, ""},
		{"admin for any principal", admin, map[string]any{"principal": "beta", "name": "x", "scopes": []string{"flags:write"}}, 201, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.countKeys()
			res := s.do("POST", "/v1/keys", c.body, c.auth...)
			if res.Status != c.status {
				t.Fatalf("status = %d %s", res.Status, res.Body)
			}
			if c.status == 403 {
				checkProblem(t, res, 403, "insufficient_scope")
				if !strings.Contains(res.Header.Get("WWW-Authenticate"), c.scopeIn) {
					t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
				}
				if s.countKeys() != before {
					t.Error("a refused create wrote a key")
				}
			}
		})
	}
}

func TestKeys_PrincipalsSeeOnlyTheirOwn(t *testing.T) {
	s := newStack(t)
	acme := bearer(s.key("acme", "keys:admin", "jobs:read"))
	beta := bearer(s.key("beta", "keys:admin", "jobs:read"))
	root := bearer(s.key("root", "admin"))
	res := s.do("POST", "/v1/keys", map[string]any{"name": "b1", "scopes": []string{"jobs:read"}}, beta...)
	var betaKey struct{ ID string }
	res.JSON(t, &betaKey)
	checkProblem(t, s.do("GET", "/v1/keys/"+betaKey.ID, nil, acme...), 404, "not_found")
	checkProblem(t, s.do("DELETE", "/v1/keys/"+betaKey.ID, nil, acme...), 404, "not_found")
	var page struct {
		Data []struct{ Principal string }
	}
	s.do("GET", "/v1/keys?limit=100", nil, acme...).JSON(t, &page)
	for _, k := range page.Data {
		if k.Principal != "acme" {
			t.Errorf("acme sees a key of %s", k.Principal)
		}
	}
	s.do("GET", "/v1/keys?limit=100&principal=beta", nil, root...).JSON(t, &page)
	if len(page.Data) != 2 {
		t.Errorf("admin filtered by beta sees %d keys, want 2", len(page.Data))
	}
	if r := s.do("GET", "/v1/keys/"+betaKey.ID, nil, root...); r.Status != 200 {
		t.Errorf("admin GET = %d", r.Status)
	}
}

func TestKeys_RevokedKeyStopsWorking(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "keys:admin", "jobs:read"))
	var created struct{ ID, Secret string }
	s.do("POST", "/v1/keys", map[string]any{"name": "x", "scopes": []string{"keys:admin"}}, admin...).JSON(t, &created)
	victim := bearer(created.Secret)
	if r := s.do("GET", "/v1/keys", nil, victim...); r.Status != 200 {
		t.Fatalf("before revoke = %d", r.Status)
	}
	if r := s.do("DELETE", "/v1/keys/"+created.ID, nil, admin...); r.Status != 204 {
		t.Fatalf("revoke = %d %s", r.Status, r.Body)
	}
	if r := s.do("DELETE", "/v1/keys/"+created.ID, nil, admin...); r.Status != 204 {
		t.Errorf("revoking twice = %d", r.Status)
	}
	checkProblem(t, s.do("GET", "/v1/keys", nil, victim...), 401, "unauthenticated")

	// Revoked behind the API's back (another replica, or the CLI): the cache
	// lets it work at most PLATFORM_KEY_CACHE_TTL, well under 5 s.
	otherSecret := s.key("acme", "keys:admin")
	other := bearer(otherSecret)
	if r := s.do("GET", "/v1/keys", nil, other...); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if _, err := s.DB.Exec(context.Background(), `UPDATE api_keys SET revoked_at = now() WHERE hash = sha256(convert_to($1, 'UTF8'))`, otherSecret); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "the revoked key to stop working", func() bool {
		return s.do("GET", "/v1/keys", nil, other...).Status == 401
	})
	t.Logf("revocation seen after %s", time.Since(start).Round(10*time.Millisecond))
}

func TestContract_RateLimitHeadersAnd429(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.RateLimitRead = config.Rate{Limit: 3, Period: time.Minute}
		c.RateLimitWrite = config.Rate{Limit: 2, Period: time.Minute}
	})
	admin := bearer(s.key("acme", "admin"))
	for i := 0; i < 3; i++ {
		res := s.do("GET", "/v1/keys", nil, admin...)
		if res.Status != 200 {
			t.Fatalf("read %d = %d", i, res.Status)
		}
		if got := res.Header.Get("RateLimit-Policy"); got != `"read";q=3;w=60` {
			t.Errorf("RateLimit-Policy = %q", got)
		}
		if got := res.Header.Get("RateLimit"); !strings.HasPrefix(got, `"read";r=`+strconv.Itoa(2-i)+`;t=`) {
			t.Errorf("RateLimit = %q (request %d)", got, i)
		}
	}
	res := s.do("GET", "/v1/keys", nil, admin...)
	p := checkProblem(t, res, 429, "rate_limited")
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", res.Header.Get("Retry-After"))
	}
	if got := res.Header.Get("RateLimit"); got != `"read";r=0;t=`+strconv.Itoa(ra) {
		t.Errorf("RateLimit on 429 = %q", got)
	}
	if diff := cmp.Diff([]any{"read"}, p["violated-policies"]); diff != "" {
		t.Errorf("violated-policies: %s", diff)
	}
	// Writes have their own quota, and a 429 is never stored under an idempotency key.
	body := map[string]any{"name": "x", "scopes": []string{"jobs:read"}}
	for i := 0; i < 2; i++ {
		if r := s.do("POST", "/v1/keys", body, admin...); r.Status != 201 {
			t.Fatalf("write %d = %d %s", i, r.Status, r.Body)
		}
	}
	limited := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "after-quota"})...)
	checkProblem(t, limited, 429, "rate_limited")
	if limited.Header.Get("Idempotent-Replayed") != "" {
		t.Error("429 replayed")
	}
}

func TestContract_FailedAuthDoesNotSpendThePrincipalsQuota(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.RateLimitRead = config.Rate{Limit: 2, Period: time.Minute}
		c.RateLimitAnon = config.Rate{Limit: 1000, Period: time.Minute}
	})
	admin := bearer(s.key("acme", "admin"))
	for i := 0; i < 5; i++ {
		s.do("GET", "/v1/keys", nil, "Authorization", "Bearer plk_wrong")
	}
	for i := 0; i < 2; i++ {
		if r := s.do("GET", "/v1/keys", nil, admin...); r.Status != 200 {
			t.Fatalf("request %d after failed auths = %d", i, r.Status)
		}
	}
}

func TestContract_UnauthenticatedTrafficIsLimitedPerIP(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.RateLimitAnon = config.Rate{Limit: 3, Period: time.Minute} })
	statuses := []int{}
	for i := 0; i < 5; i++ {
		statuses = append(statuses, s.do("GET", "/v1/keys", nil, "Authorization", "Bearer plk_guess").Status)
	}
	if diff := cmp.Diff([]int{401, 401, 401, 429, 429}, statuses); diff != "" {
		t.Errorf("brute force statuses (-want +got):\n%s", diff)
	}
	// Probes are never limited.
	for i := 0; i < 5; i++ {
		if r := s.do("GET", "/healthz", nil); r.Status != 200 {
			t.Fatalf("healthz = %d", r.Status)
		}
	}
}
