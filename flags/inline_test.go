package flags

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInlineExpandsRefsAndMergesMetadata checks that inlined flags evaluate
// as they did inside their file.
func TestInlineExpandsRefsAndMergesMetadata(t *testing.T) {
	file := mustFile(t, `{
	  "metadata": {"team": "web", "env": "prod"},
	  "$evaluators": {"isAdmin": {"==": [{"var": "role"}, "admin"]}},
	  "flags": {
	    "banner": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
	               "targeting": {"if": [{"$ref": "isAdmin"}, "on", "off"]}, "metadata": {"env": "dev"}}
	  }
	}`)
	inlined, err := file.Inline()
	if err != nil {
		t.Fatal(err)
	}
	def := inlined["banner"]
	if diff := cmp.Diff(map[string]any{"team": "web", "env": "dev"}, def.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if err := Validate("banner", def); err != nil {
		t.Fatalf("inlined flag does not validate alone: %v", err)
	}
	alone := newSnapshot(File{Flags: inlined}, clock)
	inFile := newSnapshot(file, clock)
	for _, role := range []string{"admin", "user"} {
		ctx := EvalContext{TargetingKey: "u1", Attributes: attrs("role", role)}
		if diff := cmp.Diff(inFile.Evaluate("banner", ctx), alone.Evaluate("banner", ctx)); diff != "" {
			t.Errorf("role %s (-file +inlined):\n%s", role, diff)
		}
	}
	if file.Flags["banner"].Metadata["env"] != "dev" || string(file.Flags["banner"].Targeting) == string(def.Targeting) {
		t.Error("Inline modified the file")
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{"checkout.v2": true, "a_b-c": true, "": false, "a/b": false, "é": false} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}
