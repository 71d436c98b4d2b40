package flags

import (
	"encoding/json"
	"fmt"
)

// splitTotal is the weight sum of a rollout split: one unit per percent.
const splitTotal = 100

// SetFractionalSplit returns a copy of def that sends percent% of targeting
// keys to treatment and the rest to control, replacing any targeting. The
// rule is {"fractional": [[treatment, percent], [control, 100-percent]]}: it
// hashes flagKey+targetingKey, and because treatment owns the low end of the
// bucket range, raising percent only moves keys from control to treatment,
// never back. The default variant becomes control, so requests without a
// targeting key (which fractional cannot place) get control, and the flag is
// enabled.
func SetFractionalSplit(def Flag, control, treatment string, percent int) (Flag, error) {
	if percent < 0 || percent > 100 {
		return Flag{}, fmt.Errorf("split %q: percent %d is outside 0-100", def.Key, percent)
	}
	if control == treatment {
		return Flag{}, fmt.Errorf("split %q: control and treatment are both %q", def.Key, control)
	}
	for _, v := range []string{control, treatment} {
		if _, ok := def.Variants[v]; !ok {
			return Flag{}, fmt.Errorf("split %q: %q is not a variant", def.Key, v)
		}
	}
	rule := map[string]any{opFractional: []any{
		[]any{treatment, percent},
		[]any{control, splitTotal - percent},
	}}
	raw, err := json.Marshal(rule)
	if err != nil {
		return Flag{}, fmt.Errorf("split %q: %w", def.Key, err)
	}
	out := def.Clone()
	out.State = StateEnabled
	out.DefaultVariant = control
	out.Targeting = raw
	return out, nil
}

// ResetTo returns a copy of def that serves variant to everyone: targeting
// removed, variant as the default, flag enabled.
func ResetTo(def Flag, variant string) (Flag, error) {
	if _, ok := def.Variants[variant]; !ok {
		return Flag{}, fmt.Errorf("reset %q: %q is not a variant", def.Key, variant)
	}
	out := def.Clone()
	out.State = StateEnabled
	out.DefaultVariant = variant
	out.Targeting = nil
	return out, nil
}

// Disable is ResetTo under the name a rollout uses when it aborts: serve one
// variant (normally control) to everyone. It does not set state DISABLED,
// because flagd serves no variant for a disabled flag, only each caller's
// code default, which the platform cannot control.
func Disable(def Flag, variant string) (Flag, error) {
	return ResetTo(def, variant)
}
