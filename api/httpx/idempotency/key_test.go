package idempotency

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKey_NormalisesStructuredFieldStrings(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{`abc`, `abc`},
		{`"abc"`, `abc`},
		{`"a\"b"`, `a"b`},
		{`"a\\b"`, `a\b`},
		{`a"b`, `a"b`},
		{`" spaced "`, ` spaced `},
		{strings.Repeat("k", 255), strings.Repeat("k", 255)},
	}
	for _, tc := range tests {
		got, err := parseKey([]string{tc.value})
		if err != nil {
			t.Errorf("parseKey(%q): %v", tc.value, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseKey(%q) (-want +got):\n%s", tc.value, diff)
		}
	}
}

// FuzzParseKey_AcceptedKeysAreValidAndQuoteRoundTrips checks that whatever
// parseKey accepts is 1–255 printable ASCII, and that quoting it as an
// sf-string gives the same key back.
func FuzzParseKey_AcceptedKeysAreValidAndQuoteRoundTrips(f *testing.F) {
	for _, s := range []string{"abc", `"abc"`, `"a\"b\\c"`, `"abc`, `"a";x`, "", "\x00", "ключ", strings.Repeat("k", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		key, err := parseKey([]string{value})
		if err != nil {
			return
		}
		if key == "" || len(key) > maxKeyLen || !printableASCII(key) {
			t.Fatalf("parseKey(%q) accepted invalid key %q", value, key)
		}
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
		again, err := parseKey([]string{quoted})
		if err != nil || again != key {
			t.Fatalf("parseKey(%q) = %q, %v; want %q", quoted, again, err, key)
		}
	})
}
