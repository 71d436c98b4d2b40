package tests

import (
	"net/http"
	"testing"
	"time"
)

// checkScope asserts a 403 whose challenge names scope.
func checkScope(t *testing.T, res response, scope string) {
	t.Helper()
	checkProblem(t, res, http.StatusForbidden, "insufficient_scope")
	want := `Bearer realm="platform", error="insufficient_scope", scope="` + scope + `"`
	if got := res.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
}

// createdKey is the answer of POST /v1/keys.
type createdKey struct {
	ID        string     `json:"id"`
	Principal string     `json:"principal"`
	Secret    string     `json:"secret"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// createKey creates a key through the API with secret and expects 201.
func (s *stack) createKey(t *testing.T, secret string, body map[string]any) createdKey {
	t.Helper()
	res := s.do(http.MethodPost, "/v1/keys", body, bearer(secret)...)
	if res.Status != http.StatusCreated {
		t.Fatalf("POST /v1/keys = %d %s", res.Status, res.Body)
	}
	var k createdKey
	res.JSON(t, &k)
	return k
}

// flagVersion reads a flag's stored version.
func (s *stack) flagVersion(t *testing.T, key string) int64 {
	t.Helper()
	_, v, _ := s.flagDefinition(t, key)
	return v
}
