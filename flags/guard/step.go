package guard

// Decision is what the rollout does after a check.
type Decision string

// Decisions.
const (
	// HoldMore keeps the step at its percentage and checks again after
	// another hold: after an inconclusive check, or a failure below the
	// failure limit.
	HoldMore Decision = "hold_more"
	// Advance moves to the next step: the check passed.
	Advance Decision = "advance"
	// RollBack returns the flag to control: FailureLimit checks failed.
	RollBack Decision = "roll_back"
	// Stuck ends the rollout without a verdict: more inconclusive checks
	// than MaxInconclusiveExtensions allows. The step never passed, so the
	// platform must not advance; it should serve control and report the
	// rollout as inconclusive, which is distinct from a regression.
	Stuck Decision = "stuck"
)

// StepState is what one rollout step has seen so far.
type StepState struct {
	// Checks are the step's checks, oldest first.
	Checks []Check `json:"checks"`
	// Failures counts failed checks.
	Failures int `json:"failures"`
	// Inconclusive counts inconclusive checks.
	Inconclusive int `json:"inconclusive"`
	// Final is the decision that ended the step, or "" while it runs.
	Final Decision `json:"final,omitempty"`
}

// Next records a check and decides. A pass advances at once, even after an
// earlier failure: failures roll back only when FailureLimit of them
// accumulate in the step, so one noisy check costs a re-check, not the
// rollout. An inconclusive check extends the hold until it has done so
// MaxInconclusiveExtensions times; the next one makes the step Stuck. It
// never counts as a pass. A check with an unknown verdict counts as
// inconclusive. Once a step has ended, Next returns its final decision and
// ignores further checks. s is not modified.
func Next(g Guard, s StepState, c Check) (StepState, Decision) {
	if s.Final != "" {
		return s, s.Final
	}
	out := s
	out.Checks = append(append(make([]Check, 0, len(s.Checks)+1), s.Checks...), c)
	decision := decide(g, &out, c.Verdict)
	if decision != HoldMore {
		out.Final = decision
	}
	return out, decision
}

func decide(g Guard, s *StepState, v Verdict) Decision {
	switch v {
	case Pass:
		return Advance
	case Fail:
		s.Failures++
		if s.Failures >= max(g.FailureLimit, 1) {
			return RollBack
		}
		return HoldMore
	default:
		s.Inconclusive++
		if s.Inconclusive > max(g.MaxInconclusiveExtensions, 0) {
			return Stuck
		}
		return HoldMore
	}
}

// Observe records a check made while the step is still holding, before its
// hold has elapsed. Only failures count: FailureLimit of them roll the step
// back at once, so a regression is stopped within the analysis interval
// that shows it rather than after the whole hold. A pass does not end the
// hold early (the hold is the minimum exposure), and an inconclusive check
// spends no extension (there is still hold time to gather data). Once the
// hold has elapsed the step is judged with Next. s is not modified.
func Observe(g Guard, s StepState, c Check) (StepState, Decision) {
	if s.Final != "" {
		return s, s.Final
	}
	out := s
	out.Checks = append(append(make([]Check, 0, len(s.Checks)+1), s.Checks...), c)
	if c.Verdict != Fail {
		return out, HoldMore
	}
	out.Failures++
	if out.Failures < max(g.FailureLimit, 1) {
		return out, HoldMore
	}
	out.Final = RollBack
	return out, RollBack
}
