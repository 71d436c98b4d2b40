package flags

import (
	"encoding/json"
	"testing"
	"time"
)

// fixedNow is the clock every test snapshot uses, so $flagd.timestamp is
// reproducible.
var fixedNow = time.Unix(1_700_000_000, 0)

func clock() time.Time { return fixedNow }

// mustFile parses a flag file or fails the test.
func mustFile(t testing.TB, src string) File {
	t.Helper()
	f, err := ParseFile([]byte(src))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	return f
}

// snapshotOf builds a snapshot with the fixed clock.
func snapshotOf(t testing.TB, src string) *Snapshot {
	t.Helper()
	return newSnapshot(mustFile(t, src), clock)
}

// libraryOnly returns a copy of s whose flags never take the fast path.
func libraryOnly(s *Snapshot) *Snapshot {
	out := &Snapshot{flags: map[string]*compiled{}, now: s.now}
	for k, c := range s.flags {
		cc := *c
		cc.fast = nil
		out.flags[k] = &cc
	}
	return out
}

// attrs builds an attribute map from alternating keys and values.
func attrs(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// raw encodes v as JSON for building Flags in tests.
func raw(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
