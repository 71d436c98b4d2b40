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

	"golang.org/x/sync/singleflight"

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

// Authenticator checks bearer API keys. Keys found are cached in process
// for TTL (at most a few seconds), which bounds how long a revoked key
// works. Unknown keys are cached too, apart: a flood of random keys churns
// only that small cache and can never evict a valid key.
type Authenticator struct {
	keys KeyLookup
	ttl  time.Duration
	now  func() time.Time
	// OnFailure, when set, runs before a 401 is written; returning false means
	// it answered the request itself (the rate limiter's 429 for brute force).
	OnFailure func(w http.ResponseWriter, r *http.Request) bool
	// Throttled, when set, runs before a key that is not cached is looked
	// up; an error (the rate limiter's 429) is the answer instead, so that a
	// client over its failed-authentication quota costs no query.
	Throttled func(r *http.Request) error

	mu      sync.Mutex
	known   *lru[Key]      // keys found, valid or not
	unknown *lru[struct{}] // hashes no key has
	flight  singleflight.Group
}

const (
	// maxKnown bounds the cache of keys found. Only real secrets enter it.
	maxKnown = 10_000
	// maxUnknown bounds the cache of unknown hashes, which any client can
	// fill: it spares the database a client that repeats one bad key.
	maxUnknown = 1_000
	// lookupTimeout bounds a lookup that waiting requests share, detached
	// from the hang-up of the request that started it.
	lookupTimeout = 5 * time.Second
)

// NewAuthenticator returns an authenticator over keys with a cache TTL.
func NewAuthenticator(keys KeyLookup, ttl time.Duration) *Authenticator {
	return &Authenticator{keys: keys, ttl: ttl, now: time.Now, known: newLRU[Key](maxKnown), unknown: newLRU[struct{}](maxUnknown)}
}

// Require authenticates the request and demands scope (any valid key when
// scope is empty); the principal is put in the request context. Only a
// credential failure (401) runs OnFailure: neither the 429 of Throttled nor
// a store outage is a failed guess.
func (a *Authenticator) Require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.authenticate(r)
			if err != nil {
				if isUnauthenticated(err) && a.OnFailure != nil && !a.OnFailure(w, r) {
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

// Authenticated reports whether r carries a valid key, without answering
// anything: the tracing middleware asks it before the span starts, to decide
// whether the caller's traceparent is trusted. Its lookup is the one Require
// then finds cached (a throttled client gets false, and no query).
func (a *Authenticator) Authenticated(r *http.Request) bool {
	_, err := a.authenticate(r)
	return err == nil
}

func isUnauthenticated(err error) bool {
	var p *problem.Error
	return errors.As(err, &p) && p.Code == problem.Unauthenticated
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
	key, err := a.lookup(r, secret)
	var t *throttled
	if errors.As(err, &t) {
		return Principal{}, t.err
	}
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

// lookup consults the caches, then, unless the client is throttled, the
// store. Concurrent misses of one hash share one query.
func (a *Authenticator) lookup(r *http.Request, secret string) (Key, error) {
	hash := Hash(secret)
	id := string(hash)
	now := a.now()
	a.mu.Lock()
	key, known := a.known.get(id, now)
	_, unknown := a.unknown.get(id, now)
	a.mu.Unlock()
	switch {
	case known:
		return key, nil
	case a.Throttled != nil:
		if err := a.Throttled(r); err != nil {
			return Key{}, &throttled{err}
		}
	}
	if unknown {
		return Key{}, ErrUnknownKey
	}
	ctx := r.Context()
	ch := a.flight.DoChan(id, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return a.fetch(ctx, hash)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Key{}, res.Err
		}
		return res.Val.(Key), nil
	case <-ctx.Done():
		return Key{}, ctx.Err()
	}
}

// throttled carries the answer of Throttled through lookup.
type throttled struct{ err error }

func (t *throttled) Error() string { return t.err.Error() }
func (t *throttled) Unwrap() error { return t.err }

// fetch asks the store and caches the answer; store trouble is not cached.
func (a *Authenticator) fetch(ctx context.Context, hash []byte) (Key, error) {
	key, err := a.keys.LookupKey(ctx, hash)
	if err == nil && subtle.ConstantTimeCompare(key.Hash, hash) != 1 {
		err = ErrUnknownKey
	}
	if err != nil && !errors.Is(err, ErrUnknownKey) {
		return Key{}, err
	}
	expires := a.now().Add(a.ttl)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.unknown.put(string(hash), struct{}{}, expires)
		return Key{}, err
	}
	a.known.put(string(hash), key, expires)
	return key, nil
}

// Forget drops every cached lookup of key id, so a key revoked through this
// process stops working here at once (other processes within the TTL).
func (a *Authenticator) Forget(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.known.removeIf(func(k Key) bool { return k.ID == keyID })
}
