// Package auth authenticates API keys and carries the caller's principal and
// scopes through the request context.
package auth

import (
	"context"
	"slices"
)

// Scopes of the contract. Admin implies every other scope.
const (
	ScopeJobsRead      = "jobs:read"
	ScopeJobsWrite     = "jobs:write"
	ScopeFlagsRead     = "flags:read"
	ScopeFlagsWrite    = "flags:write"
	ScopeRolloutsRead  = "rollouts:read"
	ScopeRolloutsWrite = "rollouts:write"
	ScopeScalingRead   = "scaling:read"
	ScopeScalingWrite  = "scaling:write"
	ScopeDrillsRead    = "drills:read"
	ScopeDrillsRun     = "drills:run"
	ScopeKeysAdmin     = "keys:admin"
	ScopeSLORead       = "slo:read"
	ScopeAdmin         = "admin"
)

// AllScopes lists every scope in a stable order.
var AllScopes = []string{
	ScopeJobsRead, ScopeJobsWrite, ScopeFlagsRead, ScopeFlagsWrite, ScopeRolloutsRead, ScopeRolloutsWrite,
	ScopeScalingRead, ScopeScalingWrite, ScopeDrillsRead, ScopeDrillsRun, ScopeKeysAdmin, ScopeSLORead, ScopeAdmin,
}

// ValidScope reports whether s is a scope of the contract.
func ValidScope(s string) bool { return slices.Contains(AllScopes, s) }

// Principal is the authenticated caller: a named tenant and the key it used.
type Principal struct {
	Name   string   // the tenant, e.g. "acme"
	KeyID  string   // key_…
	Scopes []string // the key's scopes
}

// Has reports whether the principal holds scope, directly or through admin.
func (p Principal) Has(scope string) bool {
	return slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, ScopeAdmin)
}

// IsAdmin reports whether the principal may act on every principal's resources.
func (p Principal) IsAdmin() bool { return slices.Contains(p.Scopes, ScopeAdmin) }

// CanSee reports whether the principal may see a resource owned by owner.
func (p Principal) CanSee(owner string) bool { return p.IsAdmin() || p.Name == owner }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal, if it was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
