package auth_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/ratelimit"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/testenv"
)

// countingStore is a key store that counts lookups per hash; release, when
// set, holds every lookup until it is closed.
type countingStore struct {
	mu      sync.Mutex
	keys    map[string]auth.Key
	lookups map[string]int
	total   int
	release chan struct{}
}

func newCountingStore(secrets ...string) *countingStore {
	s := &countingStore{keys: map[string]auth.Key{}, lookups: map[string]int{}}
	for i, secret := range secrets {
		h := auth.Hash(secret)
		s.keys[string(h)] = auth.Key{ID: fmt.Sprintf("key_%d", i), Principal: "acme", Scopes: []string{auth.ScopeAdmin}, Hash: h}
	}
	return s
}

func (s *countingStore) LookupKey(_ context.Context, hash []byte) (auth.Key, error) {
	if s.release != nil {
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups[string(hash)]++
	s.total++
	if k, ok := s.keys[string(hash)]; ok {
		return k, nil
	}
	return auth.Key{}, auth.ErrUnknownKey
}

func (s *countingStore) count(secret string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		return s.total
	}
	return s.lookups[string(auth.Hash(secret))]
}

func randomKey() string { return auth.KeyPrefix + rand.Text() }

func call(h http.Handler, secret, ip string) int {
	req := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
	req.RemoteAddr = ip + ":4242"
	req.Header.Set("Authorization", "Bearer "+secret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

// TestAuthenticator_OverQuotaBadKeysCostNoLookups: once a client IP's
// failed-authentication quota is spent, more bad keys are refused 429
// without a database lookup; other IPs and valid keys are unaffected.
func TestAuthenticator_OverQuotaBadKeysCostNoLookups(t *testing.T) {
	rdb, keys := testenv.Redis(t)
	limiter := ratelimit.New(rdb, keys, ratelimit.Policies{
		Read: config.Rate{Limit: 1000, Period: time.Minute}, Write: config.Rate{Limit: 1000, Period: time.Minute},
		Anon: config.Rate{Limit: 5, Period: time.Minute},
	}, slog.New(slog.DiscardHandler), nil)
	valid := randomKey()
	store := newCountingStore(valid)
	authn := auth.NewAuthenticator(store, 2*time.Second)
	authn.OnFailure = limiter.ChargeFailedAuth
	authn.Throttled = limiter.Throttled
	h := authn.Require("")(ok)

	for i := 0; call(h, randomKey(), "203.0.113.7") != http.StatusTooManyRequests; i++ {
		if i > 20 {
			t.Fatal("the anon quota of 5 never ran out")
		}
	}
	spent := store.count("")
	for range 100 {
		if code := call(h, randomKey(), "203.0.113.7"); code != http.StatusTooManyRequests {
			t.Fatalf("bad key over quota = %d, want 429", code)
		}
	}
	if n := store.count("") - spent; n != 0 {
		t.Errorf("100 bad keys over quota cost %d lookups, want 0", n)
	}
	if code := call(h, randomKey(), "198.51.100.9"); code != http.StatusUnauthorized {
		t.Errorf("another IP's bad key = %d, want 401", code)
	}
	if code := call(h, valid, "198.51.100.9"); code != http.StatusNoContent {
		t.Errorf("valid key = %d, want 204", code)
	}
}

// TestAuthenticator_BadKeysDoNotEvictValidOnes: 20,000 random keys fill
// only the negative cache; a valid key cached before is still cached.
func TestAuthenticator_BadKeysDoNotEvictValidOnes(t *testing.T) {
	valid := randomKey()
	store := newCountingStore(valid)
	h := auth.NewAuthenticator(store, 5*time.Second).Require("")(ok)
	if code := call(h, valid, "192.0.2.1"); code != http.StatusNoContent {
		t.Fatalf("valid key = %d", code)
	}
	for range 20_000 {
		if code := call(h, randomKey(), "192.0.2.2"); code != http.StatusUnauthorized {
			t.Fatalf("bad key = %d, want 401", code)
		}
	}
	if code := call(h, valid, "192.0.2.1"); code != http.StatusNoContent {
		t.Fatalf("valid key afterwards = %d", code)
	}
	if n := store.count(valid); n != 1 {
		t.Errorf("the valid key was looked up %d times, want 1 (cached)", n)
	}
}

// TestAuthenticator_ConcurrentMissesShareOneLookup: requests arriving
// together with a key not yet cached cost one lookup.
func TestAuthenticator_ConcurrentMissesShareOneLookup(t *testing.T) {
	valid := randomKey()
	store := newCountingStore(valid)
	store.release = make(chan struct{})
	h := auth.NewAuthenticator(store, 5*time.Second).Require("")(ok)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if code := call(h, valid, "192.0.2.1"); code != http.StatusNoContent {
				t.Errorf("valid key = %d", code)
			}
		})
	}
	// Whoever arrives after the lookup finds the cache; whoever arrives
	// during it must join it rather than query again.
	time.Sleep(100 * time.Millisecond)
	close(store.release)
	wg.Wait()
	if n := store.count(valid); n != 1 {
		t.Errorf("50 concurrent requests made %d lookups, want 1", n)
	}
}
