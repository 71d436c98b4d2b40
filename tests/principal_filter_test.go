package tests

import (
	"net/http"
	"testing"
)

// TestPrincipalFilter_IsAdminOnlyInEveryList pins the one behaviour of the
// admin-only ?principal= filter across keys, jobs and usage: a key without
// admin that names a principal, even its own, gets a 400 naming the
// parameter, and an admin key may narrow the list to one principal.
func TestPrincipalFilter_IsAdminOnlyInEveryList(t *testing.T) {
	s := newAPIStack(t)
	tenant := bearer(s.key("acme", "keys:admin", "jobs:read"))
	admin := bearer(s.key("ops", "admin"))
	usage := "/v1/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"
	for _, path := range []string{"/v1/keys", "/v1/jobs", usage} {
		sep := "?"
		if path == usage {
			sep = "&"
		}
		for _, who := range []string{"beta", "acme"} {
			p := checkProblem(t, s.do(http.MethodGet, path+sep+"principal="+who, nil, tenant...), 400, "validation_failed")
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["pointer"] != "#/principal" {
				t.Errorf("%s as tenant naming %s: errors = %v, want one naming #/principal", path, who, p["errors"])
			}
		}
		if r := s.do(http.MethodGet, path, nil, tenant...); r.Status != http.StatusOK {
			t.Errorf("%s as tenant = %d, want 200", path, r.Status)
		}
		if r := s.do(http.MethodGet, path+sep+"principal=acme", nil, admin...); r.Status != http.StatusOK {
			t.Errorf("%s as admin naming acme = %d, want 200", path, r.Status)
		}
	}
}
