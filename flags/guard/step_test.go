package guard

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func check(v Verdict) Check { return Check{Verdict: v} }

// TestNextCoversEveryTransition drives the step state machine through
// sequences of verdicts.
func TestNextCoversEveryTransition(t *testing.T) {
	g := Defaults() // FailureLimit 2, MaxInconclusiveExtensions 3
	strict := Defaults()
	strict.FailureLimit, strict.MaxInconclusiveExtensions = 1, 0
	type step struct {
		Decision     Decision
		Failures     int
		Inconclusive int
	}
	tests := []struct {
		name     string
		g        Guard
		verdicts []Verdict
		want     []step
	}{
		{"pass advances", g, []Verdict{Pass}, []step{{Advance, 0, 0}}},
		{"one noisy failure re-checks", g, []Verdict{Fail}, []step{{HoldMore, 1, 0}}},
		{"failure then pass advances", g, []Verdict{Fail, Pass}, []step{{HoldMore, 1, 0}, {Advance, 1, 0}}},
		{"two failures roll back", g, []Verdict{Fail, Fail}, []step{{HoldMore, 1, 0}, {RollBack, 2, 0}}},
		{"failures need not be consecutive", g, []Verdict{Fail, Inconclusive, Fail}, []step{{HoldMore, 1, 0}, {HoldMore, 1, 1}, {RollBack, 2, 1}}},
		{"inconclusive extends the hold", g, []Verdict{Inconclusive}, []step{{HoldMore, 0, 1}}},
		{"inconclusive then pass advances", g, []Verdict{Inconclusive, Inconclusive, Pass}, []step{{HoldMore, 0, 1}, {HoldMore, 0, 2}, {Advance, 0, 2}}},
		{"extensions run out", g, []Verdict{Inconclusive, Inconclusive, Inconclusive, Inconclusive},
			[]step{{HoldMore, 0, 1}, {HoldMore, 0, 2}, {HoldMore, 0, 3}, {Stuck, 0, 4}}},
		{"failure limit 1 rolls back at once", strict, []Verdict{Fail}, []step{{RollBack, 1, 0}}},
		{"no extensions makes the first inconclusive stuck", strict, []Verdict{Inconclusive}, []step{{Stuck, 0, 1}}},
		{"unknown verdict counts as inconclusive", g, []Verdict{"maybe"}, []step{{HoldMore, 0, 1}}},
		{"ended step ignores later checks", g, []Verdict{Fail, Fail, Pass}, []step{{HoldMore, 1, 0}, {RollBack, 2, 0}, {RollBack, 2, 0}}},
		{"advanced step stays advanced", g, []Verdict{Pass, Fail}, []step{{Advance, 0, 0}, {Advance, 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s StepState
			var got []step
			for _, v := range tt.verdicts {
				var d Decision
				s, d = Next(tt.g, s, check(v))
				got = append(got, step{d, s.Failures, s.Inconclusive})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextRecordsChecksWithoutTouchingItsInput checks purity.
func TestNextRecordsChecksWithoutTouchingItsInput(t *testing.T) {
	first := Check{Verdict: Fail, Reasons: []Reason{{ReasonErrorRateDelta, "x"}}}
	s1, _ := Next(Defaults(), StepState{}, first)
	s1.Checks = append(make([]Check, 0, 4), s1.Checks...) // spare capacity a careless append would reuse
	s2a, _ := Next(Defaults(), s1, check(Pass))
	s2b, _ := Next(Defaults(), s1, check(Inconclusive))
	if diff := cmp.Diff([]Check{first}, s1.Checks); diff != "" {
		t.Errorf("input state changed (-want +got):\n%s", diff)
	}
	if s2a.Checks[1].Verdict != Pass || s2b.Checks[1].Verdict != Inconclusive {
		t.Errorf("later states share history: %v / %v", s2a.Checks[1].Verdict, s2b.Checks[1].Verdict)
	}
	if s2a.Final != Advance || s2b.Final != "" {
		t.Errorf("Final = %q / %q", s2a.Final, s2b.Final)
	}
}

// TestJudgeAndNextTogether runs a step from observations to a decision.
func TestJudgeAndNextTogether(t *testing.T) {
	g := Defaults()
	observations := []Observation{
		{cohort(50, 0, 100), cohort(50, 0, 100)},    // too few samples
		{cohort(400, 4, 100), cohort(400, 20, 100)}, // error delta 4 points: fail
		{cohort(800, 8, 100), cohort(800, 9, 105)},  // fine: pass
	}
	var s StepState
	var decisions []Decision
	for _, o := range observations {
		var d Decision
		s, d = Next(g, s, Judge(g, o))
		decisions = append(decisions, d)
	}
	if diff := cmp.Diff([]Decision{HoldMore, HoldMore, Advance}, decisions); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(s.Checks) != 3 || s.Failures != 1 || s.Inconclusive != 1 {
		t.Errorf("state = %+v", s)
	}
}

// TestObserveCountsOnlyFailuresDuringTheHold covers checks made before the
// hold has elapsed, and their hand-over to Next.
func TestObserveCountsOnlyFailuresDuringTheHold(t *testing.T) {
	g := Defaults() // FailureLimit 2, MaxInconclusiveExtensions 3
	pass, fail, unsure := Check{Verdict: Pass}, Check{Verdict: Fail}, Check{Verdict: Inconclusive}
	tests := []struct {
		name   string
		checks []Check
		want   []Decision
		fails  int
		unsure int
	}{
		{"a pass does not end the hold", []Check{pass, pass}, []Decision{HoldMore, HoldMore}, 0, 0},
		{"inconclusive spends no extension", []Check{unsure, unsure, unsure, unsure, unsure}, []Decision{HoldMore, HoldMore, HoldMore, HoldMore, HoldMore}, 0, 0},
		{"one failure is noise", []Check{fail, pass}, []Decision{HoldMore, HoldMore}, 1, 0},
		{"the failure limit rolls back at once", []Check{fail, unsure, fail}, []Decision{HoldMore, HoldMore, RollBack}, 2, 0},
		{"after the end, checks are ignored", []Check{fail, fail, pass}, []Decision{HoldMore, RollBack, RollBack}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s StepState
			var got []Decision
			for _, c := range tt.checks {
				var d Decision
				s, d = Observe(g, s, c)
				got = append(got, d)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			if s.Failures != tt.fails || s.Inconclusive != tt.unsure {
				t.Errorf("failures %d inconclusive %d, want %d and %d", s.Failures, s.Inconclusive, tt.fails, tt.unsure)
			}
		})
	}
	// Failures seen during the hold count towards Next's limit.
	s, _ := Observe(g, StepState{}, fail)
	if _, d := Next(g, s, fail); d != RollBack {
		t.Errorf("a hold failure then a judged failure: %s, want %s", d, RollBack)
	}
}
