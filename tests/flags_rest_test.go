package tests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// problemPointers returns the pointers of a validation problem's errors.
func problemPointers(t *testing.T, r response) []string {
	t.Helper()
	var p struct {
		Code   string `json:"code"`
		Errors []struct {
			Pointer string `json:"pointer"`
		} `json:"errors"`
	}
	r.JSON(t, &p)
	if r.Status != 400 || p.Code != "validation_failed" || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d code %q (%s), want a 400 validation_failed problem", r.Status, p.Code, r.Body)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

func TestFlags_PutGetWithETagsAndIfMatch(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write", "flags:read")
	auth := bearer(writer)

	created := s.putFlag(writer, "checkout", boolFlagDef("off"), "If-None-Match", "*")
	etag := created.Header.Get("ETag")
	if created.Status != 201 || etag == "" || created.Header.Get("Location") != "/v1/flags/checkout" {
		t.Fatalf("create: %d etag %q location %q", created.Status, etag, created.Header.Get("Location"))
	}
	got := s.do("GET", "/v1/flags/checkout", nil, auth...)
	body := got.Map(t)
	if got.Header.Get("ETag") != etag || body["key"] != "checkout" || body["defaultVariant"] != "off" ||
		body["version"] == nil || body["updated_at"] == nil {
		t.Fatalf("GET: etag %q body %s", got.Header.Get("ETag"), got.Body)
	}

	// A stale ETag changes nothing.
	stale := s.do("PUT", "/v1/flags/checkout", boolFlagDef("on"), with(auth, []string{"If-Match", `"999999"`})...)
	if stale.Status != 412 || stale.Map(t)["code"] != "precondition_failed" {
		t.Fatalf("stale If-Match: %d %s", stale.Status, stale.Body)
	}
	if again := s.do("GET", "/v1/flags/checkout", nil, auth...); again.Header.Get("ETag") != etag {
		t.Fatalf("a refused write changed the flag: %s", again.Body)
	}
	if r := s.do("PUT", "/v1/flags/checkout", boolFlagDef("on"), with(auth, []string{"If-None-Match", "*"})...); r.Status != 412 {
		t.Errorf("If-None-Match: * on an existing flag: %d", r.Status)
	}

	// The body of a GET can be PUT back with its ETag.
	var round map[string]any
	got.JSON(t, &round)
	round["defaultVariant"] = "on"
	updated := s.do("PUT", "/v1/flags/checkout", round, with(auth, []string{"If-Match", etag})...)
	if updated.Status != 200 || updated.Header.Get("ETag") == etag || updated.Map(t)["defaultVariant"] != "on" {
		t.Fatalf("conditional replace: %d %s", updated.Status, updated.Body)
	}

	if r := s.do("DELETE", "/v1/flags/checkout", nil, with(auth, []string{"If-Match", etag})...); r.Status != 412 {
		t.Errorf("DELETE with a stale ETag: %d", r.Status)
	}
	if r := s.do("DELETE", "/v1/flags/checkout", nil, with(auth, []string{"If-Match", updated.Header.Get("ETag")})...); r.Status != 204 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := s.do("GET", "/v1/flags/checkout", nil, auth...); r.Status != 404 || r.Map(t)["code"] != "not_found" {
		t.Errorf("GET after DELETE: %d %s", r.Status, r.Body)
	}
}

func TestFlags_MergePatch(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write", "flags:read")
	def := boolFlagDef("off")
	def["targeting"] = map[string]any{"if": []any{map[string]any{"==": []any{map[string]any{"var": "plan"}, "pro"}}, "on", nil}}
	def["metadata"] = map[string]any{"owner": "payments"}
	s.putFlag(writer, "checkout", def)

	patch := `{"state": "DISABLED", "targeting": null, "metadata": {"ticket": "OPS-1"}}`
	r := s.do("PATCH", "/v1/flags/checkout", patch, with(bearer(writer), []string{"Content-Type", "application/merge-patch+json"})...)
	if r.Status != 200 {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	got := r.Map(t)
	if got["state"] != "DISABLED" || got["targeting"] != nil || got["defaultVariant"] != "off" {
		t.Errorf("patched flag %s", r.Body)
	}
	if diff := cmp.Diff(map[string]any{"owner": "payments", "ticket": "OPS-1"}, got["metadata"]); diff != "" {
		t.Errorf("metadata merged (-want +got):\n%s", diff)
	}
	// JSON Patch (RFC 6902) is another format: refused, not misread.
	jp := s.do("PATCH", "/v1/flags/checkout", `[{"op": "remove", "path": "/state"}]`,
		with(bearer(writer), []string{"Content-Type", "application/json-patch+json"})...)
	if jp.Status != 415 {
		t.Errorf("json-patch: %d %s", jp.Status, jp.Body)
	}
	if r := s.do("PATCH", "/v1/flags/none", `{"state": "ENABLED"}`, bearer(writer)...); r.Status != 404 {
		t.Errorf("PATCH of a missing flag: %d", r.Status)
	}
}

func TestFlags_InvalidDefinitionsArePointedAtAndChangeNothing(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write", "flags:read")
	auth := bearer(writer)
	bad := map[string]any{
		"state":          "ON",
		"variants":       map[string]any{"a": true, "b": "yes"},
		"defaultVariant": "c",
		"targeting":      map[string]any{"if": []any{true, "z", "a"}},
		"colour":         "red",
	}
	r := s.do("PUT", "/v1/flags/checkout", bad, auth...)
	want := []string{"#/colour", "#/defaultVariant", "#/state", "#/targeting/if/1", "#/variants/b"}
	if diff := cmp.Diff(want, problemPointers(t, r)); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
	if r := s.do("GET", "/v1/flags/checkout", nil, auth...); r.Status != 404 {
		t.Errorf("an invalid PUT stored the flag: %d", r.Status)
	}
	if r := s.do("PUT", "/v1/flags/checkout", `{"state": `, auth...); r.Status != 400 || r.Map(t)["code"] != "invalid_json" {
		t.Errorf("broken JSON: %d %s", r.Status, r.Body)
	}
	if r := s.do("PUT", "/v1/flags/bad%20key", boolFlagDef("on"), auth...); !cmp.Equal(problemPointers(t, r), []string{"#/key"}) {
		t.Errorf("bad key: %s", r.Body)
	}

	created := s.putFlag(writer, "checkout", boolFlagDef("off"))
	p := s.do("PATCH", "/v1/flags/checkout", `{"defaultVariant": "maybe"}`, auth...)
	if diff := cmp.Diff([]string{"#/defaultVariant"}, problemPointers(t, p)); diff != "" {
		t.Errorf("patch pointers (-want +got):\n%s", diff)
	}
	if r := s.do("GET", "/v1/flags/checkout", nil, auth...); r.Header.Get("ETag") != created.Header.Get("ETag") {
		t.Error("an invalid PATCH changed the flag")
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM flag_audit`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d audit rows (%v), want only the create's", n, err)
	}
}

func TestFlags_EveryChangeIsAudited(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write", "flags:read")
	var keyID string
	if err := s.DB.QueryRow(context.Background(), `SELECT id FROM api_keys WHERE principal = 'acme'`).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	s.putFlag(writer, "checkout", boolFlagDef("off"), "X-Change-Reason", "launch prep")
	s.putFlag(writer, "checkout", boolFlagDef("on"))
	if r := s.do("DELETE", "/v1/flags/checkout?reason=cleanup", nil, bearer(writer)...); r.Status != 204 {
		t.Fatalf("DELETE: %d", r.Status)
	}
	rows, err := s.DB.Query(context.Background(), `SELECT action, actor, reason, before, after FROM flag_audit WHERE key = 'checkout' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type entry struct {
		Action, Actor, Reason string
		Before, After         string
	}
	var got []entry
	for rows.Next() {
		var e entry
		var before, after []byte
		if err := rows.Scan(&e.Action, &e.Actor, &e.Reason, &before, &after); err != nil {
			t.Fatal(err)
		}
		e.Before, e.After = defaultOf(t, before), defaultOf(t, after)
		got = append(got, e)
	}
	actor := "acme/" + keyID
	want := []entry{
		{"create", actor, "launch prep", "", "off"},
		{"update", actor, "", "off", "on"},
		{"delete", actor, "cleanup", "on", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

// defaultOf returns the defaultVariant of an audited definition, "" for none.
func defaultOf(t *testing.T, raw []byte) string {
	if raw == nil {
		return ""
	}
	var def struct {
		DefaultVariant string `json:"defaultVariant"`
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	return def.DefaultVariant
}

func TestFlags_ScopesAndPages(t *testing.T) {
	s := newAPIStack(t)
	writer := s.key("acme", "flags:write")
	reader := s.key("other", "flags:read")
	for _, key := range []string{"a", "b", "c"} {
		s.putFlag(writer, key, boolFlagDef("on"))
	}
	if r := s.do("PUT", "/v1/flags/d", boolFlagDef("on"), bearer(reader)...); r.Status != 403 {
		t.Errorf("flags:read PUT: %d", r.Status)
	}
	first := s.do("GET", "/v1/flags?limit=2", nil, bearer(reader)...)
	var page struct {
		Data []struct {
			Key string `json:"key"`
		} `json:"data"`
		HasMore    bool    `json:"has_more"`
		NextCursor *string `json:"next_cursor"`
	}
	first.JSON(t, &page)
	if first.Status != 200 || len(page.Data) != 2 || !page.HasMore || page.Data[0].Key != "c" {
		t.Fatalf("first page: %d %s", first.Status, first.Body)
	}
	second := s.do("GET", "/v1/flags?limit=2&cursor="+*page.NextCursor, nil, bearer(reader)...)
	second.JSON(t, &page)
	if len(page.Data) != 1 || page.Data[0].Key != "a" || page.HasMore {
		t.Errorf("second page: %s", second.Body)
	}
	if r := s.do("GET", "/v1/flags?owner=me", nil, bearer(reader)...); !strings.Contains(string(r.Body), "#/owner") {
		t.Errorf("unknown filter: %d %s", r.Status, r.Body)
	}
}
