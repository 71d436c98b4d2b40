package api

import (
	"fmt"
	"html"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/problem"
)

// methodNotAllowed answers 405 with the Allow header listing the methods the
// path accepts; mux knows only that some route matched the path.
func methodNotAllowed(router *mux.Router, r *http.Request) error {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	sort.Strings(allowed)
	p := problem.Newf(problem.MethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))
	p.Header = http.Header{"Allow": {strings.Join(allowed, ", ")}}
	return p
}

// problemPage serves the short human-readable page each problem type URI points at.
func problemPage(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	k, ok := problem.Lookup(code)
	if !ok {
		return problem.Newf(problem.NotFound, "no problem type %q", code)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>%[1]s</title></head>
<body><h1>%[1]s</h1><p>HTTP status <b>%[2]d</b>, code <code>%[3]s</code>.</p><p>%[4]s</p>
<p>Every error response is an RFC 9457 problem document whose <code>type</code> is this page's URL; quote its <code>request_id</code> when asking for help.</p></body></html>
`, html.EscapeString(k.Title), k.Status, html.EscapeString(k.Code), html.EscapeString(k.About))
	return err
}
