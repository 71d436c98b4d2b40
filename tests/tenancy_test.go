package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/internal/ids"
)

// TestTenancy_AnotherPrincipalsResourceIsAbsent: for every owned resource,
// another principal's id gets exactly the answer an unknown id gets, so
// nothing tells the two apart (L1, L3, L4).
func TestTenancy_AnotherPrincipalsResourceIsAbsent(t *testing.T) {
	s := newStack(t, generousLimits)
	tenant := []string{"jobs:read", "jobs:write", "flags:read", "flags:write", "rollouts:read", "rollouts:write", "keys:admin"}
	acme := s.key("acme", tenant...)
	beta := s.key("beta", tenant...)
	root := s.key("root", "admin")

	betaKey := s.createKey(t, beta, map[string]any{"name": "b", "scopes": []string{"jobs:read"}})
	acmeAdminKey := s.createKey(t, root, map[string]any{"principal": "acme", "name": "a", "scopes": []string{"admin"}})
	acmeKeysOnly := s.key("acme", "keys:admin")
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	betaJob := s.createJob(t, webhookJob(rc.URL+"/ok", map[string]any{}, nil), bearer(beta)...)
	s.putFlag(beta, "beta-menu", boolFlagDef("off"))
	betaRollout := s.startRollout(t, beta, map[string]any{"flag": "beta-menu", "variant": "on",
		"steps": steps(10, 600, 100, 600), "guard": eventsGuard(nil)})
	var betaPing struct{ ID string }
	s.do(http.MethodPost, "/v1/ping", map[string]string{"message": "beta's"}, bearer(beta)...).JSON(t, &betaPing)
	eventually(t, 20*time.Second, "beta's ping to complete", func() bool {
		return strings.Contains(string(s.do(http.MethodGet, "/v1/ping/"+betaPing.ID, nil, bearer(beta)...).Body), `"completed"`)
	})
	up := s.upload(t, "/v1/uploads", "text/csv", strings.NewReader("a,b\n1,2\n"), bearer(beta)...)
	var betaUpload uploadJSON
	up.JSON(t, &betaUpload)

	uploadJob := func(id string) any {
		return map[string]any{"type": "upload.process", "input": map[string]any{"upload_id": id}}
	}
	cases := []struct {
		name, method, path string // path has one %s, the id
		body               func(id string) any
		caller             string
		theirs, absent     string
		status             int
	}{
		{"key", "GET", "/v1/keys/%s", nil, acme, betaKey.ID, ids.New(ids.Key), 404},
		{"key revoke", "DELETE", "/v1/keys/%s", nil, acme, betaKey.ID, ids.New(ids.Key), 404},
		{"admin key to keys:admin", "GET", "/v1/keys/%s", nil, acmeKeysOnly, acmeAdminKey.ID, ids.New(ids.Key), 404},
		{"admin key revoke to keys:admin", "DELETE", "/v1/keys/%s", nil, acmeKeysOnly, acmeAdminKey.ID, ids.New(ids.Key), 404},
		{"job", "GET", "/v1/jobs/%s", nil, acme, betaJob.ID, ids.New(ids.Job), 404},
		{"job attempts", "GET", "/v1/jobs/%s/attempts", nil, acme, betaJob.ID, ids.New(ids.Job), 404},
		{"job cancel", "POST", "/v1/jobs/%s/cancel", nil, acme, betaJob.ID, ids.New(ids.Job), 404},
		{"rollout", "GET", "/v1/rollouts/%s", nil, acme, betaRollout, ids.New(ids.Rollout), 404},
		{"rollout pause", "POST", "/v1/rollouts/%s/pause", nil, acme, betaRollout, ids.New(ids.Rollout), 404},
		{"rollout abort", "POST", "/v1/rollouts/%s/abort", nil, acme, betaRollout, ids.New(ids.Rollout), 404},
		{"rollout events", "POST", "/v1/rollouts/%s/events",
			func(string) any { return map[string]any{"events": []any{}} }, acme, betaRollout, ids.New(ids.Rollout), 404},
		{"ping", "GET", "/v1/ping/%s", nil, acme, betaPing.ID, ids.New(ids.Ping), 404},
		{"upload in a job", "POST", "/v1/jobs%.0s", uploadJob, acme, betaUpload.ID, ids.New(ids.Upload), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			answer := func(id string) map[string]any {
				var body any
				if c.body != nil {
					body = c.body(id)
				}
				res := s.do(c.method, fmt.Sprintf(c.path, id), body, bearer(c.caller)...)
				if res.Status != c.status {
					t.Fatalf("%s with %s = %d %s, want %d", c.method, id, res.Status, res.Body, c.status)
				}
				p := res.Map(t)
				for _, varying := range []string{"instance", "request_id", "trace_id"} {
					delete(p, varying)
				}
				if d, ok := p["detail"].(string); ok {
					p["detail"] = strings.ReplaceAll(d, id, "{id}")
				}
				return p
			}
			if diff := cmp.Diff(answer(c.absent), answer(c.theirs)); diff != "" {
				t.Errorf("another principal's answer differs from an unknown id's (-absent +theirs):\n%s", diff)
			}
		})
	}
	// The refused revocations revoked nothing.
	for _, id := range []string{betaKey.ID, acmeAdminKey.ID} {
		var k createdKey
		s.do(http.MethodGet, "/v1/keys/"+id, nil, bearer(root)...).JSON(t, &k)
		if k.RevokedAt != nil {
			t.Errorf("key %s was revoked by a caller that cannot see it", id)
		}
	}
	s.do(http.MethodPost, "/v1/rollouts/"+betaRollout+"/abort", nil, bearer(beta)...)
}
