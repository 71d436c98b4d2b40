package tests

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/acme/platform/internal/config"
)

func TestIdempotency_ReplayReturnsTheSameKey(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "admin"))
	body := map[string]any{"name": "ci", "scopes": []string{"jobs:read"}}
	first := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "create-ci-1"})...)
	second := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", `"create-ci-1"`})...)
	if first.Status != 201 || second.Status != 201 {
		t.Fatalf("statuses %d, %d", first.Status, second.Status)
	}
	if string(first.Body) != string(second.Body) || second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay differs or is not marked:\n%s\n%s", first.Body, second.Body)
	}
	if second.Header.Get("X-Request-Id") == first.Header.Get("X-Request-Id") {
		t.Error("replay reused the first request's id")
	}
	if n := s.countKeys(); n != 2 { // the admin key and the created one
		t.Errorf("%d keys, want 2", n)
	}
	other := s.do("POST", "/v1/keys", map[string]any{"name": "other", "scopes": []string{"jobs:read"}},
		with(admin, []string{"Idempotency-Key", "create-ci-1"})...)
	checkProblem(t, other, 422, "idempotency_key_reused")
	if n := s.countKeys(); n != 2 {
		t.Errorf("a reused key created something: %d keys", n)
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
	created, replayed, inFlight := 0, 0, 0
	var firstBody string
	for _, r := range results {
		switch {
		case r.Status == 201 && r.Header.Get("Idempotent-Replayed") == "true":
			replayed++
			if firstBody != "" && string(r.Body) != firstBody {
				t.Error("a replay differs from the first response")
			}
		case r.Status == 201:
			created++
			firstBody = string(r.Body)
		case r.Status == 409:
			checkProblem(t, r, 409, "idempotency_request_in_progress")
			if r.Header.Get("Retry-After") == "" {
				t.Error("409 without Retry-After")
			}
			inFlight++
		default:
			t.Errorf("unexpected %d %s", r.Status, r.Body)
		}
	}
	var n int
	_ = s.DB.QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE name = 'once'`).Scan(&n)
	if created != 1 || n != 1 {
		t.Errorf("created %d responses and %d rows, want 1 and 1 (replayed %d, in flight %d)", created, n, replayed, inFlight)
	}
	t.Logf("1 created, %d replayed, %d answered 409", replayed, inFlight)
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
