package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
)

// KeyPrefix starts every API key secret.
const KeyPrefix = "plk_"

// Key is what the authenticator needs to know of a stored key.
type Key struct {
	ID        string
	Principal string
	Scopes    []string
	Hash      []byte
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// ErrUnknownKey is returned by a KeyLookup when no key has the hash.
var ErrUnknownKey = errors.New("unknown api key")

// KeyLookup finds a key by the SHA-256 of its secret.
type KeyLookup interface {
	LookupKey(ctx context.Context, hash []byte) (Key, error)
}

// Hash returns the SHA-256 of a secret, the only form in which keys are stored.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Authenticator checks bearer API keys. Lookups are cached in process for
// TTL (at most a few seconds), which bounds how long a revoked key works.
type Authenticator struct {
	keys KeyLookup
	ttl  time.Duration
	now  func() time.Time
	// OnFailure, when set, runs before a 401 is written; returning false means
	// it answered the request itself (the rate limiter's 429 for brute force).
	OnFailure func(w http.ResponseWriter, r *http.Request) bool

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	key     Key
	err     error
	expires time.Time
}

// maxCached bounds the cache; past it the cache starts afresh.
const maxCached = 10000

// NewAuthenticator returns an authenticator over keys with a cache TTL.
func NewAuthenticator(keys KeyLookup, ttl time.Duration) *Authenticator {
	return &Authenticator{keys: keys, ttl: ttl, now: time.Now, cache: map[string]cached{}}
}

// Require authenticates the request and demands scope (any valid key when
// scope is empty); the principal is put in the request context.
func (a *Authenticator) Require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.authenticate(r)
			if err != nil {
				if a.OnFailure != nil && !a.OnFailure(w, r) {
					return
				}
				web.WriteError(w, r, err)
				return
			}
			if scope != "" && !p.Has(scope) {
				web.WriteError(w, r, InsufficientScope(scope))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// InsufficientScope is the 403 problem for a missing scope.
func InsufficientScope(scope string) *problem.Error {
	e := problem.Newf(problem.InsufficientScope, "this operation needs the %s scope", scope)
	e.Header = http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm="platform", error="insufficient_scope", scope=%q`, scope)}}
	return e
}

func unauthenticated(detail string, tokenSent bool) *problem.Error {
	challenge := `Bearer realm="platform"`
	if tokenSent {
		challenge += `, error="invalid_token"`
	}
	e := problem.New(problem.Unauthenticated, detail)
	e.Header = http.Header{"Www-Authenticate": {challenge}}
	return e
}

func (a *Authenticator) authenticate(r *http.Request) (Principal, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return Principal{}, unauthenticated("send an API key as Authorization: Bearer plk_…", false)
	}
	scheme, secret, ok := strings.Cut(header, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(secret, KeyPrefix) || len(secret) > 200 {
		return Principal{}, unauthenticated("the Authorization header must be Bearer plk_…", true)
	}
	key, err := a.lookup(r.Context(), secret)
	if errors.Is(err, ErrUnknownKey) {
		return Principal{}, unauthenticated("the API key is not known", true)
	}
	if err != nil {
		return Principal{}, problem.UnavailableAfter(2, "could not check the API key", err)
	}
	now := a.now()
	switch {
	case key.RevokedAt != nil && !key.RevokedAt.After(now):
		return Principal{}, unauthenticated("the API key has been revoked", true)
	case key.ExpiresAt != nil && !key.ExpiresAt.After(now):
		return Principal{}, unauthenticated("the API key has expired", true)
	}
	return Principal{Name: key.Principal, KeyID: key.ID, Scopes: key.Scopes}, nil
}

// lookup consults the cache, then the store. Unknown keys are cached too, so
// a flood of bad keys does not become a flood of queries.
func (a *Authenticator) lookup(ctx context.Context, secret string) (Key, error) {
	hash := Hash(secret)
	id := string(hash)
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, c.err
	}
	key, err := a.keys.LookupKey(ctx, hash)
	if err == nil && subtle.ConstantTimeCompare(key.Hash, hash) != 1 {
		err = ErrUnknownKey
	}
	if err != nil && !errors.Is(err, ErrUnknownKey) {
		return Key{}, err // store trouble is not cached
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		a.cache = map[string]cached{}
	}
	a.cache[id] = cached{key: key, err: err, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return key, err
}

// Forget drops every cached lookup of key id, so a key revoked through this
// process stops working here at once (other processes within the TTL).
func (a *Authenticator) Forget(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, c := range a.cache {
		if c.key.ID == keyID {
			delete(a.cache, h)
		}
	}
}
