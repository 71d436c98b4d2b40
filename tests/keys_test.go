package tests

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKeys_AChildNeverOutlivesItsParent: a key minted by an expiring key
// expires no later than it; asking for later is refused (L4).
func TestKeys_AChildNeverOutlivesItsParent(t *testing.T) {
	s := newAPIStack(t)
	root := s.key("root", "admin")
	parentExpiry := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	parent := s.createKey(t, root, map[string]any{"principal": "acme", "name": "p", "scopes": []string{"keys:admin", "jobs:read"},
		"expires_at": parentExpiry})
	before := s.countKeys()
	res := s.do(http.MethodPost, "/v1/keys", map[string]any{"name": "late", "scopes": []string{"jobs:read"},
		"expires_at": parentExpiry.Add(time.Hour)}, bearer(parent.Secret)...)
	p := checkProblem(t, res, 400, "validation_failed")
	if got := pointers(p); !slices.Equal(got, []string{"#/expires_at"}) {
		t.Errorf("pointers = %v", got)
	}
	if s.countKeys() != before {
		t.Error("a refused create wrote a key")
	}
	inherited := s.createKey(t, parent.Secret, map[string]any{"name": "no expiry asked", "scopes": []string{"jobs:read"}})
	if inherited.ExpiresAt == nil || !inherited.ExpiresAt.Equal(parentExpiry) {
		t.Errorf("child without expires_at expires %v, want the parent's %v", inherited.ExpiresAt, parentExpiry)
	}
	sooner := parentExpiry.Add(-time.Minute)
	if k := s.createKey(t, parent.Secret, map[string]any{"name": "sooner", "scopes": []string{"jobs:read"}, "expires_at": sooner}); k.ExpiresAt == nil || !k.ExpiresAt.Equal(sooner) {
		t.Errorf("child asking for sooner expires %v, want %v", k.ExpiresAt, sooner)
	}
}

// TestKeys_RevokingAKeyRevokesWhatItMinted follows created_by down (L4).
func TestKeys_RevokingAKeyRevokesWhatItMinted(t *testing.T) {
	s := newAPIStack(t)
	root := s.key("root", "admin")
	parent := s.createKey(t, root, map[string]any{"principal": "acme", "name": "p", "scopes": []string{"keys:admin", "jobs:read"}})
	child := s.createKey(t, parent.Secret, map[string]any{"name": "c", "scopes": []string{"keys:admin", "jobs:read"}})
	grandchild := s.createKey(t, child.Secret, map[string]any{"name": "g", "scopes": []string{"jobs:read"}})
	sibling := s.createKey(t, root, map[string]any{"principal": "acme", "name": "s", "scopes": []string{"keys:admin"}})
	if r := s.do(http.MethodDelete, "/v1/keys/"+parent.ID, nil, bearer(root)...); r.Status != 204 {
		t.Fatalf("revoke = %d %s", r.Status, r.Body)
	}
	for name, k := range map[string]createdKey{"parent": parent, "child": child, "grandchild": grandchild} {
		checkProblem(t, s.do(http.MethodGet, "/v1/jobs", nil, bearer(k.Secret)...), 401, "unauthenticated")
		var got createdKey
		s.do(http.MethodGet, "/v1/keys/"+k.ID, nil, bearer(root)...).JSON(t, &got)
		if got.RevokedAt == nil {
			t.Errorf("%s is not revoked", name)
		}
	}
	if r := s.do(http.MethodGet, "/v1/keys", nil, bearer(sibling.Secret)...); r.Status != 200 {
		t.Errorf("an unrelated key stopped working: %d", r.Status)
	}
}

// TestKeys_KeysAdminCannotSeeKeysWithScopesItLacks: keys:admin manages the
// keys it could have minted, never its principal's admin keys (L4).
func TestKeys_KeysAdminCannotSeeKeysWithScopesItLacks(t *testing.T) {
	s := newAPIStack(t)
	root := s.key("root", "admin")
	acmeAdmin := s.createKey(t, root, map[string]any{"principal": "acme", "name": "a", "scopes": []string{"admin"}})
	writer := s.createKey(t, root, map[string]any{"principal": "acme", "name": "w", "scopes": []string{"jobs:write"}})
	keysAdmin := s.createKey(t, root, map[string]any{"principal": "acme", "name": "k", "scopes": []string{"keys:admin", "jobs:read"}})
	reader := s.createKey(t, keysAdmin.Secret, map[string]any{"name": "r", "scopes": []string{"jobs:read"}})
	var page struct{ Data []struct{ ID string } }
	s.do(http.MethodGet, "/v1/keys?limit=100", nil, bearer(keysAdmin.Secret)...).JSON(t, &page)
	var listed []string
	for _, k := range page.Data {
		listed = append(listed, k.ID)
	}
	if want := []string{reader.ID, keysAdmin.ID}; !slices.Equal(listed, want) {
		t.Errorf("keys:admin lists %v, want %v", listed, want)
	}
	for _, k := range []createdKey{acmeAdmin, writer} {
		checkProblem(t, s.do(http.MethodGet, "/v1/keys/"+k.ID, nil, bearer(keysAdmin.Secret)...), 404, "not_found")
		checkProblem(t, s.do(http.MethodDelete, "/v1/keys/"+k.ID, nil, bearer(keysAdmin.Secret)...), 404, "not_found")
	}
	if r := s.do(http.MethodGet, "/v1/keys", nil, bearer(acmeAdmin.Secret)...); r.Status != 200 {
		t.Errorf("the admin key stopped working: %d", r.Status)
	}
}

// TestKeys_ReservedPrincipalsAreRefused: system and anonymous name the
// platform's own traffic; no key may carry them (L7).
func TestKeys_ReservedPrincipalsAreRefused(t *testing.T) {
	s := newAPIStack(t)
	root := s.key("root", "admin")
	before := s.countKeys()
	for _, name := range []string{"system", "anonymous", "platform"} {
		res := s.do(http.MethodPost, "/v1/keys", map[string]any{"principal": name, "name": "x", "scopes": []string{"jobs:read"}}, bearer(root)...)
		p := checkProblem(t, res, 400, "validation_failed")
		if got := pointers(p); !slices.Equal(got, []string{"#/principal"}) {
			t.Errorf("%s: pointers = %v", name, got)
		}
		_, errOut, err := runPlatform(t, []string{"PLATFORM_DATABASE_URL=" + s.DBURL},
			"keys", "create", "--principal", name, "--name", "x", "--scopes", "jobs:read")
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); err == nil || len(lines) != 1 || !strings.Contains(lines[0], "--principal") {
			t.Errorf("CLI with --principal %s: %v, stderr %q", name, err, errOut)
		}
	}
	if s.countKeys() != before {
		t.Error("a reserved principal got a key")
	}
}
