package tests

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/acme/platform/internal/config"
)

// A key's secret is shown once: the retry of its creation is not a replay of
// the secret (nothing in Redis holds it) but a 409 naming the key created.
func TestIdempotency_RetryOfKeyCreationWithholdsTheSecret(t *testing.T) {
	s := newAPIStack(t)
	admin := bearer(s.key("acme", "admin"))
	body := map[string]any{"name": "ci", "scopes": []string{"jobs:read"}}
	first := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "create-ci-1"})...)
	second := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", `"create-ci-1"`})...)
	if first.Status != 201 || first.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first = %d, Cache-Control %q", first.Status, first.Header.Get("Cache-Control"))
	}
	var created struct{ ID, Secret string }
	first.JSON(t, &created)
	p := checkProblem(t, second, 409, "conflict")
	if strings.Contains(string(second.Body), created.Secret) || !strings.Contains(p["detail"].(string), created.ID) {
		t.Errorf("retry leaks the secret or does not name the key: %s", second.Body)
	}
	if p["request_id"] != second.Header.Get("X-Request-Id") {
		t.Errorf("retry's request_id %v, header %s", p["request_id"], second.Header.Get("X-Request-Id"))
	}
	if n := s.countKeys(); n != 2 { // the admin key and the created one
		t.Errorf("%d keys, want 2", n)
	}
	s.assertRedisLacks(t, created.Secret)
	other := s.do("POST", "/v1/keys", map[string]any{"name": "other", "scopes": []string{"jobs:read"}},
		with(admin, []string{"Idempotency-Key", "create-ci-1"})...)
	checkProblem(t, other, 422, "idempotency_key_reused")
	if n := s.countKeys(); n != 2 {
		t.Errorf("a reused key created something: %d keys", n)
	}
}

// assertRedisLacks fails if any of the test's Redis values contains secret.
func (s *stack) assertRedisLacks(t *testing.T, secret string) {
	t.Helper()
	ctx := context.Background()
	iter := s.Redis.Scan(ctx, 0, string(s.Keys)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if dump, _ := s.Redis.Dump(ctx, iter.Val()).Result(); strings.Contains(dump, secret) {
			t.Errorf("Redis key %s holds the secret", iter.Val())
		}
	}
}

// H4's scenario: admin key A of ops creates a key for acme under a
// predictable Idempotency-Key; key B of ops, with keys:admin only, sends the
// same request. B is refused by the handler's own check, as without a key.
func TestIdempotency_AnotherCredentialGetsNoReplay(t *testing.T) {
	s := newAPIStack(t)
	adminA := bearer(s.key("ops", "admin"))
	keysB := bearer(s.key("ops", "keys:admin"))
	body := map[string]any{"principal": "acme", "name": "ci", "scopes": []string{"jobs:write"}}
	idem := []string{"Idempotency-Key", "acme-ci-1"}
	if r := s.do("POST", "/v1/keys", body, with(adminA, idem)...); r.Status != 201 {
		t.Fatalf("admin create = %d %s", r.Status, r.Body)
	}
	r := s.do("POST", "/v1/keys", body, with(keysB, idem)...)
	checkProblem(t, r, 403, "insufficient_scope")
	if strings.Contains(string(r.Body), "plk_") || r.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("another credential got the replay: %s", r.Body)
	}
}

// The webhook secret's rotation is withheld like a key's creation.
func TestIdempotency_WebhookSecretRotationIsNotKept(t *testing.T) {
	s := newAPIStack(t)
	auth := bearer(s.key("acme", "jobs:write"))
	idem := []string{"Idempotency-Key", "rotate-1"}
	first := s.do("POST", "/v1/webhook-secret/rotate", nil, with(auth, idem)...)
	if first.Status != 200 {
		t.Fatalf("rotate = %d %s", first.Status, first.Body)
	}
	var rotated struct{ Secret string }
	first.JSON(t, &rotated)
	if rotated.Secret == "" {
		t.Fatalf("no secret in %s", first.Body)
	}
	checkProblem(t, s.do("POST", "/v1/webhook-secret/rotate", nil, with(auth, idem)...), 409, "conflict")
	s.assertRedisLacks(t, rotated.Secret)
}

// M1: a key reused on another resource of the same route is 422, not the
// other resource's answer.
func TestIdempotency_SameKeyOnAnotherResourceIs422(t *testing.T) {
	s := newAPIStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	idem := []string{"Idempotency-Key", "cancel-1"}
	checkProblem(t, s.do("POST", "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", nil, with(auth, idem)...), 404, "not_found")
	r := s.do("POST", "/v1/jobs/job_bbbbbbbbbbbbbbbbbbbbbbbbbb/cancel", nil, with(auth, idem)...)
	checkProblem(t, r, 422, "idempotency_key_reused")
}

// A replayed problem names the request that got it, in its body as in its
// X-Request-Id header.
func TestIdempotency_ReplayedProblemCarriesTheCurrentRequestID(t *testing.T) {
	s := newAPIStack(t)
	auth := bearer(s.key("acme", "jobs:write"))
	idem := []string{"Idempotency-Key", "bad-1"}
	first := s.do("POST", "/v1/jobs", map[string]any{"type": "nope"}, with(auth, idem, []string{"X-Request-Id", "req-first"})...)
	second := s.do("POST", "/v1/jobs", map[string]any{"type": "nope"}, with(auth, idem, []string{"X-Request-Id", "req-second"})...)
	checkProblem(t, first, 400, "validation_failed")
	p := checkProblem(t, second, 400, "validation_failed")
	if second.Header.Get("Idempotent-Replayed") != "true" || p["request_id"] != "req-second" ||
		p["trace_id"] != second.Header.Get("X-Trace-Id") {
		t.Errorf("replay: replayed %q, request_id %v, trace_id %v (header %s)", second.Header.Get("Idempotent-Replayed"),
			p["request_id"], p["trace_id"], second.Header.Get("X-Trace-Id"))
	}
}

func TestIdempotency_FiftyConcurrentPostsCreateOneKey(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.RateLimitWrite = config.Rate{Limit: 1000, Period: 60e9} })
	admin := bearer(s.key("acme", "admin"))
	body := map[string]any{"name": "once", "scopes": []string{"jobs:read"}}
	var wg sync.WaitGroup
	results := make([]response, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "fifty"})...)
		}()
	}
	wg.Wait()
	created, withheld, inFlight := 0, 0, 0
	for _, r := range results {
		switch {
		case r.Status == 201 && r.Header.Get("Idempotent-Replayed") == "":
			created++
		case r.Status == 409 && r.Header.Get("Retry-After") != "":
			checkProblem(t, r, 409, "idempotency_request_in_progress")
			inFlight++
		case r.Status == 409:
			// After completion: the secret is not replayed (shown once).
			checkProblem(t, r, 409, "conflict")
			withheld++
		default:
			t.Errorf("unexpected %d %s", r.Status, r.Body)
		}
	}
	var n int
	_ = s.DB.QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE name = 'once'`).Scan(&n)
	if created != 1 || n != 1 {
		t.Errorf("created %d responses and %d rows, want 1 and 1 (withheld %d, in flight %d)", created, n, withheld, inFlight)
	}
	t.Logf("1 created, %d withheld, %d answered in progress", withheld, inFlight)
}

func TestIdempotency_RedisFlushCollidesInsteadOfDuplicating(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "admin"))
	body := map[string]any{"name": "flush", "scopes": []string{"jobs:read"}}
	if r := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "flush-1"})...); r.Status != 201 {
		t.Fatalf("first = %d", r.Status)
	}
	ctx := context.Background()
	iter := s.Redis.Scan(ctx, 0, string(s.Keys)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		s.Redis.Del(ctx, iter.Val())
	}
	again := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "flush-1"})...)
	checkProblem(t, again, 409, "conflict")
	var n int
	_ = s.DB.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE name = 'flush'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d keys after a Redis flush, want 1", n)
	}
}

func TestIdempotency_IgnoredOnDelete(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "admin"))
	var k struct{ ID string }
	s.do("POST", "/v1/keys", map[string]any{"name": "d", "scopes": []string{"jobs:read"}}, admin...).JSON(t, &k)
	for i := 0; i < 2; i++ {
		r := s.do(http.MethodDelete, "/v1/keys/"+k.ID, nil, with(admin, []string{"Idempotency-Key", "del"})...)
		if r.Status != 204 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("delete %d = %d replayed=%q", i, r.Status, r.Header.Get("Idempotent-Replayed"))
		}
	}
}
