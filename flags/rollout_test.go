package flags

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rolloutFlag(t *testing.T) Flag {
	return Flag{
		Key: "checkout", State: StateDisabled, DefaultVariant: "old",
		Variants:  map[string]json.RawMessage{"old": raw(t, "v1"), "new": raw(t, "v2"), "other": raw(t, "v3")},
		Targeting: json.RawMessage(`{"if": [{"var": "beta"}, "new", null]}`),
		Metadata:  map[string]any{"owner": "payments"},
	}
}

// TestSetFractionalSplitWritesAStableSplit checks the rewritten definition.
func TestSetFractionalSplitWritesAStableSplit(t *testing.T) {
	base := rolloutFlag(t)
	got, err := SetFractionalSplit(base, "old", "new", 25)
	if err != nil {
		t.Fatal(err)
	}
	want := base.Clone()
	want.State = StateEnabled
	want.Targeting = json.RawMessage(`{"fractional":[["new",25],["old",75]]}`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := Validate(got.Key, got); err != nil {
		t.Errorf("split flag does not validate: %v", err)
	}
	if string(base.Targeting) != `{"if": [{"var": "beta"}, "new", null]}` {
		t.Errorf("input flag was modified: %s", base.Targeting)
	}
}

// TestSetFractionalSplitServesTheRightShares checks 0% and 100% and that keyless
// requests get control.
func TestSetFractionalSplitServesTheRightShares(t *testing.T) {
	tests := []struct {
		name    string
		percent int
		ctx     EvalContext
		want    Result
	}{
		{"0% sends everyone to control", 0, EvalContext{TargetingKey: "u1"}, Result{Value: "v1", Variant: "old", Reason: ReasonSplit}},
		{"100% sends everyone to treatment", 100, EvalContext{TargetingKey: "u1"}, Result{Value: "v2", Variant: "new", Reason: ReasonSplit}},
		{"no targeting key gets control", 50, EvalContext{}, Result{Value: "v1", Variant: "old", Reason: ReasonDefault}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def, err := SetFractionalSplit(rolloutFlag(t), "old", "new", tt.percent)
			if err != nil {
				t.Fatal(err)
			}
			got := newSnapshot(File{Flags: map[string]Flag{def.Key: def}}, clock).Evaluate(def.Key, tt.ctx)
			got.FlagMetadata = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetFractionalSplitRejectsBadArguments covers the error cases.
func TestSetFractionalSplitRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name               string
		control, treatment string
		percent            int
	}{
		{"negative percent", "old", "new", -1},
		{"percent above 100", "old", "new", 101},
		{"unknown control", "gone", "new", 10},
		{"unknown treatment", "old", "gone", 10},
		{"same variant twice", "old", "old", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SetFractionalSplit(rolloutFlag(t), tt.control, tt.treatment, tt.percent); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestResetToServesOneVariantToEveryone checks ResetTo and Disable.
func TestResetToServesOneVariantToEveryone(t *testing.T) {
	for name, reset := range map[string]func(Flag, string) (Flag, error){"ResetTo": ResetTo, "Disable": Disable} {
		t.Run(name, func(t *testing.T) {
			got, err := reset(rolloutFlag(t), "other")
			if err != nil {
				t.Fatal(err)
			}
			want := rolloutFlag(t)
			want.State, want.DefaultVariant, want.Targeting = StateEnabled, "other", nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			r := newSnapshot(File{Flags: map[string]Flag{got.Key: got}}, clock).Evaluate(got.Key, EvalContext{Attributes: attrs("beta", true)})
			if r.Value != "v3" || r.Reason != ReasonStatic {
				t.Errorf("Evaluate = %+v, want v3 STATIC", r)
			}
			if _, err := reset(rolloutFlag(t), "gone"); err == nil {
				t.Error("unknown variant accepted")
			}
		})
	}
}
