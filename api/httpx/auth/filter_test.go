package auth

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPrincipalFilter_AdminOnly(t *testing.T) {
	admin := Principal{Name: "ops", Scopes: []string{ScopeAdmin}}
	tenant := Principal{Name: "acme", Scopes: []string{ScopeJobsRead, ScopeKeysAdmin}}
	for _, tc := range []struct {
		name             string
		query            string
		caller           Principal
		principal, bound string
		errCode          string
	}{
		{"tenant sees its own", "", tenant, "acme", "", ""},
		{"tenant naming another is refused", "principal=globex", tenant, "acme", "", "forbidden"},
		{"tenant naming itself is refused too", "principal=acme", tenant, "acme", "", "forbidden"},
		{"admin sees everyone", "", admin, "", "", ""},
		{"admin narrows to one", "principal=acme", admin, "acme", "acme", ""},
		{"admin repeating it is refused", "principal=a&principal=b", admin, "", "", "invalid"},
		{"admin naming nobody is refused", "principal=", admin, "", "", "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			p, b, errs := PrincipalFilter(q, tc.caller)
			code := ""
			if len(errs) == 1 {
				code = errs[0].Code
				if errs[0].Pointer != "#/principal" {
					t.Errorf("pointer = %q, want #/principal", errs[0].Pointer)
				}
			} else if len(errs) > 1 {
				t.Fatalf("errs = %v", errs)
			}
			if diff := cmp.Diff([]string{tc.principal, tc.bound, tc.errCode}, []string{p, b, code}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
