package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"

	rolloutact "github.com/acme/platform/activities/rollout"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/workflows/rollout"
)

// TestRollout_StartNeedsFlagsWriteAndAdminForPlatformFlags: a rollout
// rewrites its flag, so starting one takes flags:write as well as
// rollouts:write, and admin on a platform.* flag (M4).
func TestRollout_StartNeedsFlagsWriteAndAdminForPlatformFlags(t *testing.T) {
	s := newStack(t)
	admin := s.key("ops", "admin")
	s.putFlag(admin, "menu", boolFlagDef("off"))
	s.putFlag(admin, "platform.banner", boolFlagDef("off"))
	rolloutsOnly := s.key("acme", "rollouts:write", "rollouts:read")
	both := s.key("acme", "rollouts:write", "flags:write")
	body := func(flag string) map[string]any {
		return map[string]any{"flag": flag, "variant": "on", "steps": steps(10, 600, 100, 600), "guard": eventsGuard(nil)}
	}
	menu, banner := s.flagVersion(t, "menu"), s.flagVersion(t, "platform.banner")
	checkScope(t, s.do(http.MethodPost, "/v1/rollouts", body("menu"), bearer(rolloutsOnly)...), "flags:write")
	checkScope(t, s.do(http.MethodPost, "/v1/rollouts", body("platform.banner"), bearer(both)...), "admin")
	if n := s.count(t, `SELECT count(*) FROM rollouts`); n != 0 {
		t.Errorf("refused starts left %d rollouts", n)
	}
	if s.flagVersion(t, "menu") != menu || s.flagVersion(t, "platform.banner") != banner {
		t.Error("a refused start changed a flag")
	}
	id := s.startRollout(t, both, body("menu"))
	s.do(http.MethodPost, "/v1/rollouts/"+id+"/abort", nil, bearer(both)...)
}

// TestRollout_ConflictNamesOnlyARolloutTheCallerSees: the 409 for a flag
// with an active rollout names that rollout only to whoever may see it,
// whether the API or the workflow's first activity finds it (L2).
func TestRollout_ConflictNamesOnlyARolloutTheCallerSees(t *testing.T) {
	s := newStack(t, generousLimits)
	acme := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	beta := s.key("beta", "flags:write", "rollouts:write", "rollouts:read")
	root := s.key("root", "admin")
	s.putFlag(acme, "shared", boolFlagDef("off"))
	body := map[string]any{"flag": "shared", "variant": "on", "steps": steps(10, 600, 100, 600), "guard": eventsGuard(nil)}
	id := s.startRollout(t, acme, body)
	for _, c := range []struct {
		name, secret string
		named        bool
	}{
		{"another principal", beta, false},
		{"the owner", acme, true},
		{"an admin", root, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(http.MethodPost, "/v1/rollouts", body, bearer(c.secret)...)
			p := checkProblem(t, res, http.StatusConflict, "conflict")
			detail, _ := p["detail"].(string)
			if !strings.Contains(detail, "already has an active rollout") || strings.Contains(detail, id) != c.named {
				t.Errorf("detail %q: names %s = %v, want %v", detail, id, strings.Contains(detail, id), c.named)
			}
		})
	}

	// The workflow's begin activity, which catches two starts racing past
	// the API's check.
	act := &rolloutact.Activities{DB: s.DB, Flags: &store.Store{DB: s.DB}}
	for _, c := range []struct {
		principal string
		named     bool
	}{{"beta", false}, {"acme", true}} {
		other := ids.New(ids.Rollout)
		res, err := act.Begin(context.Background(), rollout.BeginInput{ID: other, Principal: c.principal, Flag: "shared",
			Variant: "on", WorkflowID: other, RunID: "run"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Failed || !strings.Contains(res.Reason, "already has an active rollout") || strings.Contains(res.Reason, id) != c.named {
			t.Errorf("%s's begin: %+v, want failed naming %s: %v", c.principal, res, id, c.named)
		}
	}
	s.do(http.MethodPost, "/v1/rollouts/"+id+"/abort", nil, bearer(acme)...)
}
