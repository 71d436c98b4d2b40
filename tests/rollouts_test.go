package tests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/workflows/rollout"
)

// generousLimits keeps traffic generators under the rate limits.
func generousLimits(c *config.Config) {
	c.RateLimitRead = config.Rate{Limit: 100_000, Period: time.Minute}
	c.RateLimitWrite = config.Rate{Limit: 100_000, Period: time.Minute}
}

// TestRollout_HealthyVariantReaches100 runs a rollout end to end on the dev
// server, with outcome events from users served by the OpenFeature client.
func TestRollout_HealthyVariantReaches100(t *testing.T) {
	s := newStack(t, generousLimits)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "checkout", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "checkout", "variant": "on",
		"steps": steps(10, 2, 50, 2, 100, 2), "guard": eventsGuard(nil)})
	stop := s.traffic(t, admin, id, "checkout", func(int) bool { return false })
	defer stop()

	v := s.waitForStatus(t, admin, id, "succeeded", 30*time.Second)
	var decisions []string
	for _, st := range v.Steps {
		decisions = append(decisions, st.Decision)
		last := st.Checks[len(st.Checks)-1]
		if last.Verdict != "pass" || last.Result.Observation.Treatment.Samples < 20 || last.Evidence.Queries["events"] == "" {
			t.Errorf("step %d%%: last check %+v", st.Percent, last)
		}
	}
	if !cmp.Equal(decisions, []string{"advance", "advance", "advance"}) || v.Percent != 100 {
		t.Errorf("decisions %v percent %d", decisions, v.Percent)
	}
	def, _, by := s.flagDefinition(t, "checkout")
	if by != "rollout:"+id || def["defaultVariant"] != "off" || !strings.Contains(mustJSON(t, def["targeting"]), `["on",100]`) {
		t.Errorf("flag after the rollout: %v by %s", def, by)
	}
	// The platform's own OpenFeature client now serves the variant to everyone.
	s.waitForRevision()
	if !s.Flags.Client.Boolean(context.Background(), "checkout", false, openfeature.NewEvaluationContext("someone", nil)) {
		t.Error("the provider does not serve the rolled-out variant")
	}
}

// TestRollout_ErrorsAt25PercentAreRolledBackWithinAnInterval injects errors
// into the treatment once the split reaches 25%.
func TestRollout_ErrorsAt25PercentAreRolledBackWithinAnInterval(t *testing.T) {
	s := newStack(t, generousLimits)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "search", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "search", "variant": "on",
		"steps": steps(10, 2, 25, 30, 100, 2), "guard": eventsGuard(map[string]any{"failure_limit": 2})})
	stop := s.traffic(t, admin, id, "search", func(percent int) bool { return percent >= 25 })
	defer stop()

	v := s.waitForStatus(t, admin, id, "rolled_back", 30*time.Second)
	step := v.Steps[1]
	if step.Decision != "roll_back" || step.Failures != 2 || step.StartedAt == nil || v.FinishedAt == nil {
		t.Fatalf("25%% step: %+v", step)
	}
	// Checks run every interval (1s) during the 30s hold; the second failure
	// rolls back at once, long before the hold ends.
	var firstFailure time.Time
	for _, c := range step.Checks {
		if c.Verdict == "fail" {
			firstFailure = c.At
			break
		}
	}
	t.Logf("25%% split at %s; first failing check +%s; rolled back +%s", step.StartedAt.Format(time.StampMilli),
		firstFailure.Sub(*step.StartedAt).Round(time.Millisecond), v.FinishedAt.Sub(*step.StartedAt).Round(time.Millisecond))
	if d := v.FinishedAt.Sub(firstFailure); d > 2*time.Second {
		t.Errorf("rolled back %s after the first failing check; the analysis interval is 1s", d)
	}
	if d := v.FinishedAt.Sub(*step.StartedAt); d > 5*time.Second {
		t.Errorf("rolled back %s after the 25%% split", d)
	}
	last := step.Checks[len(step.Checks)-1]
	if last.Result.TreatmentErrorRate < 0.3 || last.Result.ControlErrorRate != 0 {
		t.Errorf("evidence numbers: %+v", last.Result)
	}
	if v.Evidence == nil || v.Evidence.Decision != "roll_back" || v.Evidence.Step != 1 || len(v.Evidence.Checks) < 2 ||
		v.Evidence.Evidence == nil || v.Evidence.Evidence.Queries["events"] == "" {
		t.Errorf("evidence kept: %+v", v.Evidence)
	}
	def, version, by := s.flagDefinition(t, "search")
	if def["targeting"] != nil || def["defaultVariant"] != "off" || def["state"] != "ENABLED" || by != "rollout:"+id {
		t.Errorf("flag not back to control: %v by %s", def, by)
	}
	if v.FlagVersion == nil || *v.FlagVersion != version {
		t.Errorf("rollout's flag version %v, flag's %d", v.FlagVersion, version)
	}
	var reason string
	if err := s.DB.QueryRow(context.Background(), `SELECT reason FROM flag_audit WHERE key = 'search' ORDER BY id DESC LIMIT 1`).Scan(&reason); err != nil ||
		!strings.Contains(reason, "regression") {
		t.Errorf("audit reason %q (%v)", reason, err)
	}
	if got := metricValue(t, s, "rollout_rollbacks_total", `flag="search"`); got != 1 {
		t.Errorf("rollout_rollbacks_total{flag=search} = %v", got)
	}
}

// TestRollout_NoDataExtendsTheHoldAndNeverPasses runs a rollout nobody
// reports outcomes for.
func TestRollout_NoDataExtendsTheHoldAndNeverPasses(t *testing.T) {
	s := newStack(t)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "quiet", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "quiet", "variant": "on",
		"steps": steps(10, 1, 100, 1), "guard": eventsGuard(map[string]any{"max_inconclusive_extensions": 2})})
	v := s.waitForStatus(t, admin, id, "failed", 20*time.Second)
	if !strings.HasPrefix(v.Reason, "inconclusive") {
		t.Errorf("reason %q", v.Reason)
	}
	var got []string
	for _, c := range v.Steps[0].Checks {
		got = append(got, c.Phase+":"+c.Verdict+":"+c.Decision)
	}
	want := []string{"judge:inconclusive:hold_more", "judge:inconclusive:hold_more", "judge:inconclusive:stuck"}
	if !cmp.Equal(want, got) {
		t.Errorf("checks %v, want %v", got, want)
	}
	if v.Steps[1].StartedAt != nil {
		t.Error("the rollout advanced without a passing check")
	}
	if def, _, _ := s.flagDefinition(t, "quiet"); def["targeting"] != nil || def["defaultVariant"] != "off" {
		t.Errorf("flag not back to control: %v", def)
	}
}

// TestRollout_CommandsAndAHumanChange drives pause, resume and abort over
// the API and changes the flag by hand during the rollout.
func TestRollout_CommandsAndAHumanChange(t *testing.T) {
	s := newStack(t)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	human := s.key("ops", "flags:write")
	s.putFlag(admin, "menu", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "menu", "variant": "on",
		"steps": steps(10, 60, 100, 60), "guard": eventsGuard(nil)})
	eventually(t, 10*time.Second, "the first split", func() bool {
		v := s.rollout(t, admin, id)
		return len(v.Steps) > 0 && v.Steps[0].StartedAt != nil
	})
	command := func(name string, want int) map[string]any {
		t.Helper()
		r := s.do("POST", "/v1/rollouts/"+id+"/"+name, `{"reason": "test"}`, bearer(admin)...)
		if r.Status != want {
			t.Fatalf("%s: %d %s, want %d", name, r.Status, r.Body, want)
		}
		return r.Map(t)
	}
	if p := command("resume", 409); p["code"] != "conflict" {
		t.Errorf("resume while running: %v", p)
	}
	if v := command("pause", 200); v["status"] != "paused" {
		t.Errorf("pause: %v", v)
	}
	command("pause", 409)
	// Resuming re-applies the split on whatever version the flag has (it
	// adopts it). Wait for a guard check made after the resume, which comes
	// after the re-apply: the rollout's name on the flag proves nothing (the
	// split from before the pause carries it), and a person's edit landing
	// before the re-apply would be adopted, not noticed.
	resumed := time.Now()
	if v := command("resume", 200); v["status"] != "running" {
		t.Errorf("resume: %v", v)
	}
	s.waitForStatus(t, admin, id, "running", 20*time.Second)
	eventually(t, 20*time.Second, "a check after the resume", func() bool {
		v := s.rollout(t, admin, id)
		for _, st := range v.Steps {
			for _, c := range st.Checks {
				if c.At.After(resumed) {
					return true
				}
			}
		}
		return false
	})
	eventually(t, 20*time.Second, "the split re-applied", func() bool {
		_, _, by := s.flagDefinition(t, "menu")
		return by == "rollout:"+id
	})

	// A person edits the flag: the rollout pauses and keeps their change.
	edited := boolFlagDef("off")
	edited["metadata"] = map[string]any{"note": "hotfix"}
	s.putFlag(human, "menu", edited)
	_, humanVersion, _ := s.flagDefinition(t, "menu")
	v := s.waitForStatus(t, admin, id, "paused", 20*time.Second)
	if !strings.Contains(v.Reason, "changed by ops/") {
		t.Errorf("pause reason %q does not name the person", v.Reason)
	}
	command("abort", 200)
	v = s.waitForStatus(t, admin, id, "aborted", 20*time.Second)
	if !strings.Contains(v.Reason, "left as") {
		t.Errorf("abort reason %q", v.Reason)
	}
	if def, version, _ := s.flagDefinition(t, "menu"); version != humanVersion || def["metadata"] == nil {
		t.Errorf("the person's version %d was overwritten: now %d %v", humanVersion, version, def)
	}
	command("abort", 409)

	list := s.do("GET", "/v1/rollouts?flag=menu", nil, bearer(admin)...)
	if list.Status != 200 || !strings.Contains(string(list.Body), id) {
		t.Errorf("list: %d %s", list.Status, list.Body)
	}
}

// TestRollout_RequestsAreValidated covers the create and events endpoints'
// refusals.
func TestRollout_RequestsAreValidated(t *testing.T) {
	s := newStack(t)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	other := s.key("other", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "menu", boolFlagDef("off"))

	bad := s.do("POST", "/v1/rollouts", map[string]any{"flag": "menu", "variant": "on",
		"steps": steps(50, 0, 40, 10), "guard": map[string]any{"source": "logs", "min_samples": 0}}, bearer(admin)...)
	want := []string{"#/steps/0/hold_seconds", "#/steps/1/percent", "#/steps/1/percent", "#/guard/source", "#/guard/min_samples"}
	if got := problemPointers(t, bad); !cmp.Equal(want, got) {
		t.Errorf("pointers %v, want %v", got, want)
	}
	misspelt := s.do("POST", "/v1/rollouts", map[string]any{"flag": "menu", "variant": "on",
		"steps": []map[string]any{{"percent": 10, "hold_secs": 1}}, "guard": eventsGuard(nil)}, bearer(admin)...)
	if got := problemPointers(t, misspelt); !cmp.Equal(got, []string{"#/steps/0/hold_secs"}) {
		t.Errorf("a misspelt nested field points at %v, want #/steps/0/hold_secs", got)
	}
	unknown := s.do("POST", "/v1/rollouts", map[string]any{"flag": "menu", "variant": "maybe",
		"steps": steps(10, 1, 100, 1), "guard": eventsGuard(nil)}, bearer(admin)...)
	if got := problemPointers(t, unknown); !cmp.Equal(got, []string{"#/variant"}) {
		t.Errorf("unknown variant: %v", got)
	}

	// Two starts racing on one flag: whichever workflow writes its row first
	// runs (a unique index on the flag's active rollout); the other answers
	// 409 with the reason, and its row says failed.
	body := map[string]any{"flag": "menu", "variant": "on", "steps": steps(10, 60, 100, 60), "guard": eventsGuard(nil)}
	answers := make(chan response, 2)
	for range 2 {
		go func() { answers <- s.do("POST", "/v1/rollouts", body, bearer(admin)...) }()
	}
	a, b := <-answers, <-answers
	if a.Status != 202 {
		a, b = b, a
	}
	if a.Status != 202 || b.Status != 409 || !strings.Contains(string(b.Body), "already has an active rollout") {
		t.Fatalf("racing starts: %d %s / %d %s, want one 202 and one 409", a.Status, a.Body, b.Status, b.Body)
	}
	var started rolloutView
	a.JSON(t, &started)
	id := started.ID
	if started.Status != "running" {
		t.Errorf("the started rollout is %s", started.Status)
	}
	if r := s.do("POST", "/v1/rollouts", body, bearer(admin)...); r.Status != 409 {
		t.Errorf("a second active rollout on the flag: %d", r.Status)
	}
	events := s.do("POST", "/v1/rollouts/"+id+"/events", map[string]any{"events": []map[string]any{
		{"targeting_key": "u1", "variant": "on", "error": false, "latency_ms": 3},
		{"targeting_key": "", "variant": "blue", "latency_ms": -1},
	}}, bearer(admin)...)
	want = []string{"#/events/1/targeting_key", "#/events/1/variant", "#/events/1/error", "#/events/1/latency_ms"}
	if got := problemPointers(t, events); !cmp.Equal(want, got) {
		t.Errorf("event pointers %v, want %v", got, want)
	}
	if r := s.do("GET", "/v1/rollouts/"+id, nil, bearer(other)...); r.Status != 404 {
		t.Errorf("another principal's rollout: %d", r.Status)
	}
	if r := s.do("POST", "/v1/rollouts/rol_nope/events", map[string]any{"events": []any{}}, bearer(admin)...); r.Status != 404 {
		t.Errorf("events of an unknown rollout: %d", r.Status)
	}
	s.do("POST", "/v1/rollouts/"+id+"/abort", nil, bearer(admin)...)
	s.waitForStatus(t, admin, id, "aborted", 20*time.Second)

	// The platform's kill switch, evaluated through its OpenFeature client.
	// platform.* flags are admin-only.
	s.putFlag(s.key("ops", "admin"), "platform.rollouts.enabled", boolFlagDef("off"))
	s.waitForRevision()
	if r := s.do("POST", "/v1/rollouts", body, bearer(admin)...); r.Status != 409 || !strings.Contains(string(r.Body), "switched off") {
		t.Errorf("with the kill switch off: %d %s", r.Status, r.Body)
	}
}

// metricValue reads one series from the stack's registry.
func metricValue(t *testing.T, s *stack, name, labels string) float64 {
	t.Helper()
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(ls, ",") == labels {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRollout_StartsAndAbortsFromPlainJSON does what an operator does in the
// Temporal UI: start platform.rollout by name with plain JSON, then send the
// abort signal.
func TestRollout_StartsAndAbortsFromPlainJSON(t *testing.T) {
	s := newStack(t)
	admin := s.key("ops", "admin")
	s.putFlag(admin, "banner", boolFlagDef("off"))
	ctx := context.Background()
	input := json.RawMessage(`{"flag": "banner", "variant": "on",
		"steps": [{"percent": 20, "hold_seconds": 600}, {"percent": 100, "hold_seconds": 600}],
		"guard": {"source": "events"}}`)
	var in map[string]any
	if err := json.Unmarshal(input, &in); err != nil {
		t.Fatal(err)
	}
	const id = "rol_from_the_ui"
	if _, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.cfg.TaskQueue},
		rollout.Name, in); err != nil {
		t.Fatal(err)
	}
	v := s.waitForStatus(t, admin, id, "running", 10*time.Second)
	if v.Flag != "banner" || len(v.Steps) != 2 {
		t.Fatalf("rollout %+v", v)
	}
	eventually(t, 20*time.Second, "the first split", func() bool { _, _, by := s.flagDefinition(t, "banner"); return by == "rollout:"+id })
	if err := s.Temporal.SignalWorkflow(ctx, id, "", rollout.Abort, nil); err != nil {
		t.Fatal(err)
	}
	s.waitForStatus(t, admin, id, "aborted", 20*time.Second)
	if def, _, _ := s.flagDefinition(t, "banner"); def["targeting"] != nil {
		t.Errorf("abort left the split: %v", def)
	}
}

// TestRollout_DetailShowsTheNewestChecksOfEachStep: a rollout's detail is
// bounded however long it has been checking (review M10): the newest
// ChecksPerStep checks of each step, with the step's total beside them.
func TestRollout_DetailShowsTheNewestChecksOfEachStep(t *testing.T) {
	s := newStack(t)
	admin := s.key("acme", "flags:write", "rollouts:write", "rollouts:read")
	s.putFlag(admin, "long", boolFlagDef("off"))
	id := s.startRollout(t, admin, map[string]any{"flag": "long", "variant": "on", "steps": steps(10, 3600, 100, 60),
		"guard": eventsGuard(map[string]any{"interval_seconds": 3600})})
	if _, err := s.DB.Exec(context.Background(), `INSERT INTO rollout_checks (rollout_id, seq, step, attempt, at, phase, verdict, decision, result, evidence)
		SELECT $1, 1000 + g, 0, 1, now(), 'hold', 'inconclusive', 'hold', '{}', '{}' FROM generate_series(1, 120) g`, id); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Steps []struct {
			Checks      []struct{ Seq int } `json:"checks"`
			ChecksTotal int                 `json:"checks_total"`
		} `json:"steps"`
	}
	s.do("GET", "/v1/rollouts/"+id, nil, bearer(admin)...).JSON(t, &v)
	st := v.Steps[0]
	if len(st.Checks) != 50 || st.ChecksTotal < 120 || st.Checks[len(st.Checks)-1].Seq != 1120 || st.Checks[0].Seq != 1071 {
		t.Fatalf("step 0: %d checks of %d, first %v", len(st.Checks), st.ChecksTotal, st.Checks[:min(2, len(st.Checks))])
	}
	s.do("POST", "/v1/rollouts/"+id+"/abort", nil, bearer(admin)...)
}
