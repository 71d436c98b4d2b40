package usage

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/validation"
)

type handlers struct{ Deps }

// maxRange bounds one read.
const maxRange = 366 * 24 * time.Hour

var listParams = []string{page.ParamLimit, page.ParamCursor, "from", "to", auth.ParamPrincipal}

// list answers the hourly rows of [from, to): a principal's own, or for
// admins everyone's (or one principal's with ?principal=).
func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	f, errs := filter(q, caller)
	if len(errs) > 0 {
		if _, err := page.ParseLimit(q); err != nil {
			var p *problem.Error
			if errors.As(err, &p) {
				errs = append(errs, p.Errors...)
			}
		}
		return problem.Validation(errs...)
	}
	filters := url.Values{"from": {q.Get("from")}, "to": {q.Get("to")}, "principal": {f.Principal}}
	req, err := page.Parse(r, h.CursorSecret, caller.Name, filters)
	if err != nil {
		return err
	}
	var after *Position
	if req.After != nil {
		p, rt, ok := splitCursorID(req.After.ID)
		if !ok {
			return problem.New(problem.InvalidCursor, "the cursor does not belong to this list")
		}
		after = &Position{Hour: req.After.CreatedAt, Principal: p, Route: rt}
	}
	rows, err := h.Store.List(r.Context(), f, after, req.FetchLimit())
	if err != nil {
		return err
	}
	views := make([]hourView, len(rows))
	for i, row := range rows {
		views[i] = toView(row)
	}
	key := func(v hourView) page.Cursor {
		return page.Cursor{CreatedAt: v.Hour, ID: cursorID(v.Principal, v.Route)}
	}
	return page.Write(w, r, page.Build(views, req, key, h.CursorSecret, caller.Name, filters))
}

// filter reads from, to (required, RFC 3339, at most a year apart) and, for
// admins, principal.
func filter(q url.Values, caller auth.Principal) (Filter, []validation.FieldError) {
	var errs []validation.FieldError
	add := func(ptr, code, detail string) {
		errs = append(errs, validation.FieldError{Pointer: ptr, Code: code, Detail: detail})
	}
	errs = append(errs, web.UnknownParams(q, listParams...)...)
	var f Filter
	var ok [2]bool
	for i, name := range []string{"from", "to"} {
		t, err := time.Parse(time.RFC3339, q.Get(name))
		switch {
		case len(q[name]) == 0:
			add("#/"+name, "required", "is required: an RFC 3339 timestamp")
		case len(q[name]) > 1 || err != nil:
			add("#/"+name, "invalid", "must be one RFC 3339 timestamp such as 2026-01-02T15:00:00Z")
		default:
			ok[i] = true
			if i == 0 {
				f.From = t
			} else {
				f.To = t
			}
		}
	}
	if ok[0] && ok[1] && (!f.From.Before(f.To) || f.To.Sub(f.From) > maxRange) {
		add("#/to", "out_of_range", "must be after from and at most 366 days later")
	}
	principal, _, perrs := auth.PrincipalFilter(q, caller)
	f.Principal = principal
	return f, append(errs, perrs...)
}
