package keys

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/api/usage"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/workflows/job"
)

// createRequest is the body of POST /v1/keys.
type createRequest struct {
	Principal *string    `json:"principal"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// keyView is a key as the API shows it; Secret only in the create response.
type keyView struct {
	ID         string     `json:"id"`
	Principal  string     `json:"principal"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	Secret     string     `json:"secret,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func toView(k Key) keyView {
	return keyView{ID: k.ID, Principal: k.Principal, Name: k.Name, Scopes: k.Scopes,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: web.UTC(k.ExpiresAt), LastUsedAt: web.UTC(k.LastUsedAt), RevokedAt: web.UTC(k.RevokedAt)}
}

// ValidPrincipal reports whether name can be a principal: 1–64 characters
// of lowercase letters, digits, '-', '_' and '.'.
func ValidPrincipal(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// reservedPrincipals name the platform's own callers: the jobs it starts by
// itself (system), unauthenticated traffic in the usage tables (anonymous)
// and the platform. A key under one of these names would see what they own.
var reservedPrincipals = []string{job.SystemPrincipal, usage.Anonymous, "platform"}

// ReservedPrincipal reports whether name is kept for the platform, so that
// no key may carry it.
func ReservedPrincipal(name string) bool { return slices.Contains(reservedPrincipals, name) }

// validate checks the body and collects every field error.
func (req createRequest) validate(now time.Time) []validation.FieldError {
	var errs []validation.FieldError
	add := func(ptr, code, detail string) {
		errs = append(errs, validation.FieldError{Pointer: ptr, Code: code, Detail: detail})
	}
	switch {
	case req.Principal == nil:
	case !ValidPrincipal(*req.Principal):
		add("#/principal", "invalid", "must be 1 to 64 of a-z, 0-9, '-', '_' and '.'")
	case ReservedPrincipal(*req.Principal):
		add("#/principal", "reserved", "is reserved for the platform: "+strings.Join(reservedPrincipals, ", "))
	}
	if n := len(strings.TrimSpace(req.Name)); n == 0 || len(req.Name) > 100 {
		add("#/name", "required", "must be 1 to 100 characters")
	}
	if len(req.Scopes) == 0 {
		add("#/scopes", "required", "must list at least one scope")
	}
	seen := map[string]bool{}
	for i, s := range req.Scopes {
		ptr := "#/scopes/" + strconv.Itoa(i)
		switch {
		case !auth.ValidScope(s):
			add(ptr, "invalid", "is not a known scope: "+strings.Join(auth.AllScopes, ", "))
		case seen[s]:
			add(ptr, "duplicate", "is listed twice")
		}
		seen[s] = true
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		add("#/expires_at", "out_of_range", "must be in the future")
	}
	return errs
}
