package tests

import (
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// TestDegrade_RedisStoppedMidTest takes Redis away from a running API: every
// request still gets a proper answer (no 500), rate limiting falls back to the
// in-process limiter, and idempotency still holds through derived ids.
func TestDegrade_RedisStoppedMidTest(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.RateLimitRead = config.Rate{Limit: 8, Period: time.Minute}
		c.RateLimitWrite = config.Rate{Limit: 100, Period: time.Minute}
	})
	admin := bearer(s.key("acme", "admin"))
	if r := s.do("GET", "/v1/keys", nil, admin...); r.Status != 200 {
		t.Fatalf("before = %d", r.Status)
	}
	_ = s.APIRedis.Close()

	body := map[string]any{"name": "degraded", "scopes": []string{"jobs:read"}}
	first := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "while-down"})...)
	if first.Status != 201 {
		t.Fatalf("create without Redis = %d %s", first.Status, first.Body)
	}
	again := s.do("POST", "/v1/keys", body, with(admin, []string{"Idempotency-Key", "while-down"})...)
	checkProblem(t, again, 409, "conflict") // the derived id collides: no duplicate
	statuses := map[int]int{}
	for i := 0; i < 12; i++ {
		r := s.do("GET", "/v1/keys", nil, admin...)
		statuses[r.Status]++
		if r.Status >= 500 {
			t.Fatalf("request %d without Redis = %d %s", i, r.Status, r.Body)
		}
		if r.Header.Get("RateLimit") == "" {
			t.Errorf("no RateLimit header from the fallback limiter")
		}
	}
	if statuses[429] == 0 {
		t.Errorf("the fallback limiter never limited: %v", statuses)
	}
	res := s.do("GET", "/readyz", nil)
	checkProblem(t, res, 503, "unavailable")
}
