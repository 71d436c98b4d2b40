package invariants

import (
	"strings"
	"testing"
)

func final(s string) bool { return s == "succeeded" || s == "failed" || s == "cancelled" }

func TestJobsNotLost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		acked []string
		rows  map[string]string
		held  bool
		want  string
	}{
		{"all final", []string{"a", "b"}, map[string]string{"a": "succeeded", "b": "failed"}, true, ""},
		{"replayed 201 counted once", []string{"a", "a"}, map[string]string{"a": "succeeded"}, true, ""},
		{"missing row", []string{"a", "b"}, map[string]string{"a": "succeeded"}, false, "job b was acknowledged and has no row"},
		{"not final", []string{"a"}, map[string]string{"a": "running"}, false, "job a is still running"},
		{"nothing acked", nil, nil, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := JobsNotLost(tc.acked, tc.rows, final)
			if r.Held != tc.held || !strings.Contains(r.Detail, tc.want) || r.Name != NoJobLost {
				t.Fatalf("JobsNotLost = %+v, want held %v with %q", r, tc.held, tc.want)
			}
		})
	}
}

func TestNoDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []Creation
		held    bool
		want    string
	}{
		{"one key one id", []Creation{{"k", 201, "j1"}, {"k", 201, "j1"}, {"k", 409, ""}}, true, ""},
		{"one key two ids", []Creation{{"k", 201, "j1"}, {"k", 201, "j2"}}, false, "key k created 2 resources: j1, j2"},
		{"two keys one id", []Creation{{"k1", 201, "j1"}, {"k2", 201, "j1"}}, false, "keys k1 and k2 both named j1"},
		{"two keys two ids", []Creation{{"k1", 201, "j1"}, {"k2", 201, "j2"}}, true, ""},
		{"errors create nothing", []Creation{{"k", 503, "j9"}, {"k", 201, "j1"}}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NoDuplicates(tc.answers)
			if r.Held != tc.held || !strings.Contains(r.Detail, tc.want) {
				t.Fatalf("NoDuplicates = %+v, want held %v with %q", r, tc.held, tc.want)
			}
		})
	}
}

func TestCursors(t *testing.T) {
	for _, tc := range []struct {
		name string
		walk Walk
		held bool
		want string
	}{
		{"clean", Walk{Pages: [][]string{{"a", "b"}, {"c"}}, Stable: []string{"a", "c"}}, true, ""},
		{"new item seen is fine", Walk{Pages: [][]string{{"n", "a"}, {"b"}}, Stable: []string{"a", "b"}}, true, ""},
		{"twice", Walk{Pages: [][]string{{"a", "b"}, {"b", "c"}}}, false, "walk 0 returned b twice"},
		{"skipped", Walk{Pages: [][]string{{"a"}, {"c"}}, Stable: []string{"a", "b", "c"}}, false, "walk 0 skipped b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Cursors([]Walk{tc.walk})
			if r.Held != tc.held || !strings.Contains(r.Detail, tc.want) {
				t.Fatalf("Cursors = %+v, want held %v with %q", r, tc.held, tc.want)
			}
		})
	}
}

func TestReturned(t *testing.T) {
	base := Resources{Goroutines: 100, HeapBytes: 100 << 20}
	for _, tc := range []struct {
		name  string
		after Resources
		held  bool
		want  string
	}{
		{"same", base, true, ""},
		{"within slack", Resources{Goroutines: 125, HeapBytes: 120 << 20}, true, ""},
		{"goroutine leak", Resources{Goroutines: 500, HeapBytes: 100 << 20}, false, "goroutines 500 after the load, baseline 100 (limit 130)"},
		{"heap growth", Resources{Goroutines: 100, HeapBytes: 200 << 20}, false, "heap 200.0 MiB after the load, baseline 100.0 MiB (limit 125.0 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Returned(base, tc.after, DefaultSlack)
			if r.Held != tc.held || !strings.Contains(r.Detail, tc.want) {
				t.Fatalf("Returned = %+v, want held %v with %q", r, tc.held, tc.want)
			}
		})
	}
	// A small heap may grow by the fixed minimum.
	if r := Returned(Resources{HeapBytes: 4 << 20}, Resources{HeapBytes: 18 << 20}, DefaultSlack); !r.Held {
		t.Fatalf("small heap: %+v", r)
	}
}
