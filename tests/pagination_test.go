package tests

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/ids"
)

func TestPagination_KeysWalkEveryRowOnceNewestFirst(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("acme", "admin"))
	store := &keys.Store{DB: s.DB}
	for i := 0; i < 45; i++ {
		if _, _, err := store.Create(context.Background(), keys.NewKey{ID: ids.New(ids.Key), Principal: "acme", Name: "k", Scopes: []string{"jobs:read"}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var lastCreated time.Time
	path := "/v1/keys?limit=10"
	pages := 0
	for path != "" {
		res := s.do("GET", path, nil, admin...)
		if res.Status != 200 {
			t.Fatalf("GET %s = %d %s", path, res.Status, res.Body)
		}
		var p struct {
			Data []struct {
				ID        string
				CreatedAt time.Time `json:"created_at"`
			}
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		}
		res.JSON(t, &p)
		pages++
		for _, k := range p.Data {
			if seen[k.ID] {
				t.Errorf("%s seen twice", k.ID)
			}
			// Compared as times: JSON drops trailing zeros of the fraction,
			// so the strings do not sort like the instants.
			if !lastCreated.IsZero() && k.CreatedAt.After(lastCreated) {
				t.Errorf("not newest first: %s after %s", k.CreatedAt, lastCreated)
			}
			seen[k.ID], lastCreated = true, k.CreatedAt
		}
		link := res.Header.Get("Link")
		if !p.HasMore {
			if p.NextCursor != nil || link != "" {
				t.Errorf("last page has next_cursor %v, Link %q", p.NextCursor, link)
			}
			break
		}
		if p.NextCursor == nil || !strings.Contains(link, `rel="next"`) {
			t.Fatalf("has_more without cursor/Link: %v %q", p.NextCursor, link)
		}
		path = "/v1/keys?limit=7&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if len(seen) != 46 {
		t.Errorf("saw %d keys over %d pages, want 46", len(seen), pages)
	}
}

func TestPagination_CursorIsBoundToPrincipalAndFilters(t *testing.T) {
	s := newStack(t)
	root := bearer(s.key("root", "admin"))
	other := bearer(s.key("other", "admin"))
	for i := 0; i < 3; i++ {
		s.key("beta", "jobs:read")
	}
	var p struct {
		NextCursor *string `json:"next_cursor"`
	}
	s.do("GET", "/v1/keys?limit=1&principal=beta", nil, root...).JSON(t, &p)
	if p.NextCursor == nil {
		t.Fatal("no cursor")
	}
	c := url.QueryEscape(*p.NextCursor)
	if r := s.do("GET", "/v1/keys?limit=1&principal=beta&cursor="+c, nil, root...); r.Status != 200 {
		t.Errorf("same filters = %d", r.Status)
	}
	checkProblem(t, s.do("GET", "/v1/keys?limit=1&principal=root&cursor="+c, nil, root...), 400, "invalid_cursor")
	checkProblem(t, s.do("GET", "/v1/keys?limit=1&principal=beta&cursor="+c, nil, other...), 400, "invalid_cursor")
}
