package flags

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/murmur3"
)

// cardFlags are the fractional flags of flagd's conformance suite
// (flagd-testbed, the "v2" high-precision examples). The flag keys matter:
// the first flag hashes $flagd.flagKey.
const cardFlags = `{
  "flags": {
    "fractional-flag": {
      "state": "ENABLED",
      "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"},
      "defaultVariant": "wild",
      "targeting": {"fractional": [
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]},
        ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
      ]}
    },
    "fractional-flag-shorthand": {
      "state": "ENABLED",
      "variants": {"heads": "heads", "tails": "tails", "draw": "draw"},
      "defaultVariant": "draw",
      "targeting": {"fractional": [["heads"], ["tails", 1]]}
    },
    "fractional-flag-A-shared-seed": {
      "state": "ENABLED",
      "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"},
      "defaultVariant": "wild",
      "targeting": {"fractional": [
        {"cat": ["shared-seed", {"var": "user.name"}]},
        ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
      ]}
    },
    "fractional-flag-B-shared-seed": {
      "state": "ENABLED",
      "variants": {"clubs": "ace-of-clubs", "diamonds": "ace-of-diamonds", "hearts": "ace-of-hearts", "spades": "ace-of-spades", "wild": "wild"},
      "defaultVariant": "wild",
      "targeting": {"fractional": [
        {"cat": ["shared-seed", {"var": "user.name"}]},
        ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
      ]}
    },
    "fractional-hash-edge-flag": {
      "state": "ENABLED",
      "variants": {"lower": "lower", "upper": "upper"},
      "defaultVariant": "lower",
      "targeting": {"fractional": [{"var": "targetingKey"}, ["lower", 50], ["upper", 50]]}
    },
    "fractional-nested-if-flag": {
      "state": "ENABLED",
      "variants": {"premium": "premium", "standard": "standard", "fallback": "fallback"},
      "defaultVariant": "fallback",
      "targeting": {"fractional": [
        {"var": "targetingKey"},
        [{"if": [{"==": [{"var": "tier"}, "premium"]}, "premium", "standard"]}, 50],
        ["standard", 50]
      ]}
    },
    "fractional-nested-weight-flag": {
      "state": "ENABLED",
      "variants": {"red": "red", "blue": "blue", "fallback": "fallback"},
      "defaultVariant": "fallback",
      "targeting": {"fractional": [
        {"var": "targetingKey"},
        ["red", {"if": [{"==": [{"var": "tier"}, "premium"]}, 100, 0]}],
        ["blue", 10]
      ]}
    },
    "fractional-as-condition-flag": {
      "state": "ENABLED",
      "variants": {"big": "hundreds", "small": "ones", "fallback": "zero"},
      "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [[false, 0], [true, 100]]}, "big", "small"]}
    },
    "fractional-negative-weight-flag": {
      "state": "ENABLED",
      "variants": {"one": "one", "two": "two", "fallback": "fallback"},
      "defaultVariant": "fallback",
      "targeting": {"fractional": [{"var": "targetingKey"}, ["one", -50], ["two", 100]]}
    },
    "fractional-zero-weights-flag": {
      "state": "ENABLED",
      "variants": {"true": "true", "false": "false", "fallback": "fallback"},
      "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [{"var": "targetingKey"}, ["one", 0], ["two", 0]]}, "true", "false"]}
    },
    "fractional-null-bucket-key-flag": {
      "state": "ENABLED",
      "variants": {"true": "true", "false": "false", "fallback": "fallback"},
      "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [{"var": "missing_key"}, ["one", 50], ["two", 50]]}, "true", "false"]}
    }
  }
}`

// TestFractionalMatchesFlagdConformanceVectors checks bucket assignments that
// flagd's cross-provider conformance suite fixes for its high-precision
// bucketing, on both evaluation paths.
func TestFractionalMatchesFlagdConformanceVectors(t *testing.T) {
	user := func(name string) EvalContext {
		return EvalContext{Attributes: attrs("user", map[string]any{"name": name})}
	}
	key := func(tk string) EvalContext { return EvalContext{TargetingKey: tk} }
	tests := []struct {
		flag string
		ctx  EvalContext
		want string
	}{
		{"fractional-flag", user("jack"), "hearts"},
		{"fractional-flag", user("queen"), "spades"},
		{"fractional-flag", user("ten"), "clubs"},
		{"fractional-flag", user("nine"), "diamonds"},
		{"fractional-flag", user("3"), "clubs"},
		{"fractional-flag-shorthand", key("jon@company.com"), "heads"},
		{"fractional-flag-shorthand", key("jane@company.com"), "tails"},
		{"fractional-flag-A-shared-seed", user("seven"), "hearts"},
		{"fractional-flag-A-shared-seed", user("eight"), "diamonds"},
		{"fractional-flag-A-shared-seed", user("nine"), "clubs"},
		{"fractional-flag-A-shared-seed", user("two"), "spades"},
		{"fractional-flag-B-shared-seed", user("seven"), "ace-of-hearts"},
		{"fractional-flag-B-shared-seed", user("eight"), "ace-of-diamonds"},
		{"fractional-flag-B-shared-seed", user("nine"), "ace-of-clubs"},
		{"fractional-flag-B-shared-seed", user("two"), "ace-of-spades"},
		// keys whose MurmurHash3 is 0, 1, 2^31-1, 2^31 and 2^32-1
		{"fractional-hash-edge-flag", key("ejOoVL"), "lower"},
		{"fractional-hash-edge-flag", key("bY9fO-"), "lower"},
		{"fractional-hash-edge-flag", key("SI7p-"), "lower"},
		{"fractional-hash-edge-flag", key("6LvT0"), "upper"},
		{"fractional-hash-edge-flag", key("ceQdGm"), "upper"},
		// nested rules as variant names and weights (library path)
		{"fractional-nested-if-flag", EvalContext{TargetingKey: "jon@company.com", Attributes: attrs("tier", "premium")}, "premium"},
		{"fractional-nested-if-flag", EvalContext{TargetingKey: "jon@company.com", Attributes: attrs("tier", "basic")}, "standard"},
		{"fractional-nested-if-flag", EvalContext{TargetingKey: "user1", Attributes: attrs("tier", "premium")}, "standard"},
		{"fractional-nested-weight-flag", EvalContext{TargetingKey: "jon@company.com", Attributes: attrs("tier", "premium")}, "red"},
		{"fractional-nested-weight-flag", EvalContext{TargetingKey: "jon@company.com", Attributes: attrs("tier", "basic")}, "blue"},
		{"fractional-nested-weight-flag", EvalContext{TargetingKey: "user1", Attributes: attrs("tier", "premium")}, "red"},
		{"fractional-as-condition-flag", key("some-targeting-key"), "hundreds"},
		{"fractional-negative-weight-flag", key("any-user"), "two"},
	}
	s := snapshotOf(t, cardFlags)
	for name, snap := range map[string]*Snapshot{"fast": s, "library": libraryOnly(s)} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/%s%s", name, tt.flag, tt.ctx.TargetingKey, tt.ctx.Attributes), func(t *testing.T) {
				got := snap.Evaluate(tt.flag, tt.ctx)
				if got.Value != tt.want {
					t.Errorf("value = %v (%s %s), want %q", got.Value, got.Reason, got.ErrorMessage, tt.want)
				}
			})
		}
	}
}

// TestFractionalHashEdgeKeysHaveTheDocumentedHashes pins the hash function
// itself: MurmurHash3 x86 32-bit, seed 0, as in flagd.
func TestFractionalHashEdgeKeysHaveTheDocumentedHashes(t *testing.T) {
	got := map[string]uint32{}
	for _, k := range []string{"ejOoVL", "bY9fO-", "SI7p-", "6LvT0", "ceQdGm"} {
		got[k] = murmur3.StringSum32(k)
	}
	want := map[string]uint32{"ejOoVL": 0, "bY9fO-": 1, "SI7p-": math.MaxInt32, "6LvT0": 1 << 31, "ceQdGm": math.MaxUint32}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes (-want +got):\n%s", diff)
	}
}

// TestFractionalBucketIndexMatchesFlagdFormula checks the bucket arithmetic,
// (hash * totalWeight) >> 32, on the values flagd's suite documents
// (bv(100) is the bucket out of a total weight of 100).
func TestFractionalBucketIndexMatchesFlagdFormula(t *testing.T) {
	tests := []struct {
		hash  uint32
		total uint64
		want  uint64
	}{
		{0, 100, 0},
		{1, 100, 0},
		{math.MaxInt32, 100, 49},
		{1 << 31, 100, 50},
		{math.MaxUint32, 100, 99},
		{murmur3.StringSum32("jon@company.com"), 100, 36},
		{murmur3.StringSum32("user1"), 100, 76},
	}
	for _, tt := range tests {
		if got := (uint64(tt.hash) * tt.total) >> 32; got != tt.want {
			t.Errorf("bucket(%d, %d) = %d, want %d", tt.hash, tt.total, got, tt.want)
		}
	}
}

// TestFractionalOperatorErrorsFallBackToDefaultVariant covers the error
// cases of flagd's suite: the operator returns null, and an "if" whose
// condition failed serves the default variant instead of its else branch.
func TestFractionalOperatorErrorsFallBackToDefaultVariant(t *testing.T) {
	s := snapshotOf(t, cardFlags)
	tests := []struct {
		name string
		flag string
		ctx  EvalContext
		want Result
	}{
		{"all weights zero", "fractional-zero-weights-flag", EvalContext{TargetingKey: "any-user"},
			Result{Value: "fallback", Variant: "fallback", Reason: ReasonDefault}},
		{"null bucketing value and no targeting key", "fractional-null-bucket-key-flag", EvalContext{},
			Result{Value: "fallback", Variant: "fallback", Reason: ReasonDefault}},
		{"no targeting key for the default bucketing", "fractional-flag-shorthand", EvalContext{},
			Result{Value: "draw", Variant: "draw", Reason: ReasonDefault}},
	}
	for name, snap := range map[string]*Snapshot{"fast": s, "library": libraryOnly(s)} {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				got := snap.Evaluate(tt.flag, tt.ctx)
				got.FlagMetadata = nil
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestFractionalSplitsWithinOnePercentOfWeights draws 100 000 targeting keys
// through a 10/30/60 split.
func TestFractionalSplitsWithinOnePercentOfWeights(t *testing.T) {
	s := snapshotOf(t, `{"flags": {"split": {
		"state": "ENABLED", "defaultVariant": "a",
		"variants": {"a": "a", "b": "b", "c": "c"},
		"targeting": {"fractional": [["a", 10], ["b", 30], ["c", 60]]}}}}`)
	const n = 100_000
	counts := map[any]int{}
	for i := range n {
		r := s.Evaluate("split", EvalContext{TargetingKey: fmt.Sprintf("user-%d", i)})
		if r.Reason != ReasonSplit {
			t.Fatalf("reason = %s, want SPLIT (%s)", r.Reason, r.ErrorMessage)
		}
		counts[r.Value]++
	}
	for v, weight := range map[string]float64{"a": 0.10, "b": 0.30, "c": 0.60} {
		share := float64(counts[v]) / n
		if math.Abs(share-weight) > 0.01 {
			t.Errorf("variant %s got %.4f of keys, want %.2f ± 0.01", v, share, weight)
		}
	}
}

// TestFractionalKeysStayInTreatmentAsPercentGrows ramps a split built by
// SetFractionalSplit and checks that no key ever leaves treatment.
func TestFractionalKeysStayInTreatmentAsPercentGrows(t *testing.T) {
	base := Flag{
		Key: "ramp", State: StateEnabled, DefaultVariant: "off",
		Variants: map[string]json.RawMessage{"on": raw(t, true), "off": raw(t, false)},
	}
	inTreatment := map[string]bool{}
	prev := 0
	for _, pct := range []int{1, 5, 10, 25, 50, 75, 100} {
		def, err := SetFractionalSplit(base, "off", "on", pct)
		if err != nil {
			t.Fatal(err)
		}
		s := newSnapshot(File{Flags: map[string]Flag{"ramp": def}}, clock)
		now := map[string]bool{}
		for i := range 20_000 {
			tk := fmt.Sprintf("k%d", i)
			if on, _ := s.Bool("ramp", EvalContext{TargetingKey: tk}, false); on {
				now[tk] = true
			}
		}
		for tk := range inTreatment {
			if !now[tk] {
				t.Fatalf("key %s was in treatment at %d%% but not at %d%%", tk, prev, pct)
			}
		}
		if share := float64(len(now)) / 20_000; math.Abs(share-float64(pct)/100) > 0.015 {
			t.Errorf("at %d%% treatment got %.4f of keys", pct, share)
		}
		inTreatment, prev = now, pct
	}
}
