package tests

import (
	"net/http"
	"testing"
)

// TestFlags_PlatformFlagsNeedAdmin: flags:write changes any flag but the
// platform's own (platform.*), which only admin keys change (M4).
func TestFlags_PlatformFlagsNeedAdmin(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:read", "flags:write")
	admin := s.key("ops", "admin")
	const kill = "platform.rollouts.enabled"
	s.putFlag(admin, kill, boolFlagDef("on"))
	before := s.flagVersion(t, kill)
	for _, c := range []struct {
		method, key string
		body        any
	}{
		{http.MethodPut, kill, boolFlagDef("off")},
		{http.MethodPatch, kill, map[string]any{"defaultVariant": "off"}},
		{http.MethodDelete, kill, nil},
		{http.MethodPut, "platform.new", boolFlagDef("on")},
	} {
		t.Run(c.method+" "+c.key, func(t *testing.T) {
			checkScope(t, s.do(c.method, "/v1/flags/"+c.key, c.body, bearer(writer)...), "admin")
		})
	}
	if after := s.flagVersion(t, kill); after != before {
		t.Errorf("refused writes moved the kill switch from version %d to %d", before, after)
	}
	if n := s.count(t, `SELECT count(*) FROM flags WHERE key = 'platform.new'`); n != 0 {
		t.Error("a refused PUT created platform.new")
	}
	s.putFlag(writer, "menu", boolFlagDef("on")) // other flags stay writable with flags:write
	if r := s.do(http.MethodPatch, "/v1/flags/"+kill, map[string]any{"defaultVariant": "off"}, bearer(admin)...); r.Status != 200 {
		t.Errorf("admin PATCH = %d %s", r.Status, r.Body)
	}
}
