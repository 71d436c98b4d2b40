package tests

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/scaling/local"
	wf "github.com/acme/platform/workflows/scaling"
)

type scalingActionJSON struct {
	ID       string `json:"id"`
	Target   string `json:"target"`
	Status   string `json:"status"`
	Replicas int32  `json:"replicas"`
	Previous int32  `json:"previous_replicas"`
	Error    string `json:"error"`
	Steps    []struct {
		Name, Status, Detail string
	} `json:"steps"`
}

type scalingDecisionJSON struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	Current  int32     `json:"current_replicas"`
	Desired  int32     `json:"desired"`
	Combined int32     `json:"combined"`
	Outcome  string    `json:"outcome"`
	ActionID string    `json:"action_id"`
	Reason   string    `json:"reason"`
	Signals  []struct {
		Name     string   `json:"name"`
		Value    *float64 `json:"value"`
		Replicas int32    `json:"replicas"`
		Error    string   `json:"error"`
	} `json:"signals"`
}

func (s *stack) waitAction(t *testing.T, id string, timeout time.Duration, auth ...string) scalingActionJSON {
	t.Helper()
	var a scalingActionJSON
	eventually(t, timeout, "action "+id+" to finish", func() bool {
		s.do(http.MethodGet, "/v1/scaling/actions/"+id, nil, auth...).JSON(t, &a)
		return a.Status != "" && a.Status != "running"
	})
	return a
}

// decisions lists every decision of target, newest first, across pages.
func (s *stack) decisions(t *testing.T, target string, auth ...string) []scalingDecisionJSON {
	t.Helper()
	var all []scalingDecisionJSON
	path := "/v1/scaling/decisions?limit=100&target=" + target
	for {
		var page struct {
			Data       []scalingDecisionJSON
			NextCursor *string `json:"next_cursor"`
		}
		s.do(http.MethodGet, path, nil, auth...).JSON(t, &page)
		all = append(all, page.Data...)
		if page.NextCursor == nil || *page.NextCursor == "" || len(page.Data) == 0 {
			return all
		}
		path = "/v1/scaling/decisions?limit=100&target=" + target + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
}

// TestScaling_Contract covers scopes, bad and oversized input, ETags and
// Idempotency-Key replays of the scaling resources. They are platform-wide
// (an operator capability), so another principal with the scope sees the
// same policy rather than a 404.
func TestScaling_Contract(t *testing.T) {
	s := newAPIStack(t)
	ops := bearer(s.key("ops", "scaling:write", "scaling:read"))
	reader := bearer(s.key("ops", "scaling:read"))
	other := bearer(s.key("globex", "scaling:read"))
	policy := map[string]any{"driver": "dry_run", "max_replicas": 4, "signals": map[string]any{"backlog_per_replica": 10}}

	checkProblem(t, s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, reader...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/policies", nil, bearer(s.key("ops", "jobs:read"))...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodPost, "/v1/scaling/actions", map[string]any{"target": "worker", "replicas": 2, "reason": "x"}, reader...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/policies/database", nil, ops...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/policies/worker", nil, ops...), 404, "not_found")

	for _, c := range []struct{ body, pointer string }{
		{`{"driver":"dry_run","signals":{"backlog_per_replica":10}}`, "#/max_replicas"},
		{`{"driver":"ssh","max_replicas":4,"signals":{"backlog_per_replica":10}}`, "#/driver"},
		{`{"max_replicas":4,"min_replicas":5,"signals":{"backlog_per_replica":10}}`, "#/max_replicas"},
		{`{"max_replicas":4,"signals":{"cpu_utilization":1.5}}`, "#/signals/cpu_utilization"},
		{`{"max_replicas":4,"signals":{}}`, "#/signals"},
		{`{"max_replicas":4,"tolerance":2,"signals":{"backlog_per_replica":1}}`, "#/tolerance"},
		{`{"max_replicas":4,"signals":{"backlog_per_replica":1},"scale_down":{"period_seconds":0}}`, "#/scale_down/period_seconds"},
		{`{"max_replicas":4,"signals":{"backlog_per_replica":1},"scale_up":{"stabilisation_seconds":1}}`, "#/scale_up/stabilisation_seconds"},
	} {
		got := problemPointers(t, s.do(http.MethodPut, "/v1/scaling/policies/worker", c.body, ops...))
		if len(got) == 0 || got[0] != c.pointer {
			t.Errorf("%s: pointers %v, want %s", c.body, got, c.pointer)
		}
	}
	huge := `{"max_replicas":4,"signals":{"backlog_per_replica":1},"x":"` + strings.Repeat("a", 2<<20) + `"}`
	checkProblem(t, s.do(http.MethodPut, "/v1/scaling/policies/worker", huge, ops...), 413, "payload_too_large")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/policies/worker", nil, ops...), 404, "not_found")

	created := s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, ops...)
	if created.Status != 201 || created.Header.Get("ETag") != `"v1"` {
		t.Fatalf("create: %d %s %s", created.Status, created.Header.Get("ETag"), created.Body)
	}
	p := created.Map(t)
	down := p["scale_down"].(map[string]any)
	up := p["scale_up"].(map[string]any)
	if p["tolerance"] != 0.1 || down["stabilization_seconds"] != 300.0 || up["stabilization_seconds"] != 0.0 ||
		up["max_step_percent"] != 100.0 || up["max_step_replicas"] != 4.0 || p["interval_seconds"] != 15.0 || p["mode"] != "auto" {
		t.Errorf("HPA defaults not applied: %s", created.Body)
	}
	checkProblem(t, s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, with(ops, []string{"If-Match", `"v9"`})...), 412, "precondition_failed")
	if r := s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, with(ops, []string{"If-Match", `"v1"`})...); r.Status != 200 || r.Header.Get("ETag") != `"v2"` {
		t.Errorf("conditional replace: %d %s", r.Status, r.Header.Get("ETag"))
	}
	if r := s.do(http.MethodGet, "/v1/scaling/policies/worker", nil, other...); r.Status != 200 {
		t.Errorf("a platform-wide policy is hidden from another principal with scaling:read: %d", r.Status)
	}
	var list struct{ Data []map[string]any }
	s.do(http.MethodGet, "/v1/scaling/policies", nil, reader...).JSON(t, &list)
	if len(list.Data) != 1 {
		t.Errorf("list: %+v", list.Data)
	}

	for _, c := range []struct{ body, pointer string }{
		{`{"target":"db","replicas":2,"reason":"x"}`, "#/target"},
		{`{"target":"worker","replicas":0,"reason":"x"}`, "#/replicas"},
		{`{"target":"worker","replicas":2,"reason":""}`, "#/reason"},
		{`{"target":"api","replicas":2,"reason":"x"}`, "#/driver"}, // no policy, no driver
		{`{"target":"worker","replicas":2,"reason":"x","timeout_seconds":0}`, "#/timeout_seconds"},
	} {
		got := problemPointers(t, s.do(http.MethodPost, "/v1/scaling/actions", c.body, ops...))
		if len(got) == 0 || got[0] != c.pointer {
			t.Errorf("%s: pointers %v, want %s", c.body, got, c.pointer)
		}
	}
	checkProblem(t, s.do(http.MethodPost, "/v1/scaling/actions", `{"target":"worker","replicas":2,"reason":"`+strings.Repeat("a", 2<<20)+`"}`, ops...), 413, "payload_too_large")
	checkProblem(t, s.do(http.MethodPost, "/v1/scaling/policies/worker/override", `{"replicas":3}`, ops...), 400, "validation_failed")
	checkProblem(t, s.do(http.MethodPost, "/v1/scaling/policies/api/pause", nil, ops...), 404, "not_found")
	var none struct{ Data []scalingActionJSON }
	s.do(http.MethodGet, "/v1/scaling/actions", nil, ops...).JSON(t, &none)
	if len(none.Data) != 0 {
		t.Fatalf("bad input started actions: %+v", none.Data)
	}

	key := with(ops, []string{"Idempotency-Key", "scale-1"})
	body := map[string]any{"target": "worker", "replicas": 2, "reason": "test"}
	first := s.do(http.MethodPost, "/v1/scaling/actions", body, key...)
	again := s.do(http.MethodPost, "/v1/scaling/actions", body, key...)
	var a, b scalingActionJSON
	first.JSON(t, &a)
	again.JSON(t, &b)
	if first.Status != 201 || again.Status != 201 || a.ID != b.ID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s / %d %s", first.Status, a.ID, again.Status, b.ID)
	}
	checkProblem(t, s.do(http.MethodPost, "/v1/scaling/actions", map[string]any{"target": "worker", "replicas": 3, "reason": "test"}, key...), 422, "idempotency_key_reused")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/actions/sca_missing", nil, ops...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/decisions?target=db", nil, ops...), 400, "validation_failed")
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/actions?status=done", nil, ops...), 400, "validation_failed")

	if r := s.do(http.MethodDelete, "/v1/scaling/policies/worker", nil, with(ops, []string{"If-Match", `"v1"`})...); r.Status != 412 {
		t.Errorf("stale delete: %d", r.Status)
	}
	if r := s.do(http.MethodDelete, "/v1/scaling/policies/worker", nil, ops...); r.Status != 204 {
		t.Errorf("delete: %d", r.Status)
	}
	checkProblem(t, s.do(http.MethodGet, "/v1/scaling/policies/worker", nil, ops...), 404, "not_found")
}

// TestScaling_DryRunActionSucceedsWithSteps runs an action through the
// dry_run driver on the control queue.
func TestScaling_DryRunActionSucceedsWithSteps(t *testing.T) {
	s := newStack(t)
	ops := bearer(s.key("ops", "scaling:write", "scaling:read"))
	r := s.do(http.MethodPost, "/v1/scaling/actions", map[string]any{"target": "api", "replicas": 3, "reason": "more", "driver": "dry_run"}, ops...)
	var a scalingActionJSON
	r.JSON(t, &a)
	if r.Status != 201 || !strings.HasPrefix(a.ID, "sca_") {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	done := s.waitAction(t, a.ID, 30*time.Second, ops...)
	var names []string
	for _, st := range done.Steps {
		names = append(names, st.Name+":"+st.Status)
	}
	want := "read_current:succeeded apply:succeeded wait_ready:succeeded check_serving:succeeded"
	if done.Status != "succeeded" || done.Previous != 1 || strings.Join(names, " ") != want {
		t.Errorf("action: %+v (steps %v)", done, names)
	}
}

// TestScaling_ControllerOverridePauseAndRecommend drives a dry_run
// controller: an override applies its count, a pause records decisions
// that apply nothing, and recommend mode records a change it does not make.
func TestScaling_ControllerOverridePauseAndRecommend(t *testing.T) {
	s := newStack(t)
	ops := bearer(s.key("ops", "scaling:write", "scaling:read"))
	policy := map[string]any{"driver": "dry_run", "max_replicas": 4, "interval_seconds": 1,
		"signals": map[string]any{"backlog_per_replica": 10}, "scale_down": map[string]any{"stabilization_seconds": 0}}
	if r := s.do(http.MethodPut, "/v1/scaling/policies/api", policy, ops...); r.Status != 201 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := s.do(http.MethodPost, "/v1/scaling/policies/api/override", map[string]any{"replicas": 3, "until": until}, ops...); r.Status != 202 {
		t.Fatalf("override: %d %s", r.Status, r.Body)
	}
	var scaled scalingDecisionJSON
	eventually(t, 30*time.Second, "a decision that applies the override", func() bool {
		for _, d := range s.decisions(t, "api", ops...) {
			if d.Reason == "override" && d.Outcome == "scaled" && d.ActionID != "" {
				scaled = d
				return true
			}
		}
		return false
	})
	if a := s.waitAction(t, scaled.ActionID, 30*time.Second, ops...); a.Status != "succeeded" || a.Replicas != 3 {
		t.Errorf("override action: %+v", a)
	}
	// Pause, then clear the override: the backlog (none) says 1, nothing moves.
	if r := s.do(http.MethodPost, "/v1/scaling/policies/api/pause", nil, ops...); r.Status != 202 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	s.do(http.MethodPost, "/v1/scaling/policies/api/override", map[string]any{"replicas": 0}, ops...)
	eventually(t, 20*time.Second, "a paused decision", func() bool {
		ds := s.decisions(t, "api", ops...)
		return len(ds) > 0 && ds[0].Reason == "paused" && ds[0].Current == 3 && ds[0].Desired == 1 && ds[0].Outcome == "none"
	})
	var tv map[string]any
	s.do(http.MethodGet, "/v1/scaling/targets/api", nil, ops...).JSON(t, &tv)
	if tv["paused"] != true || tv["desired_replicas"] != 3.0 || tv["policy_version"] != 1.0 || tv["last_decision"] == nil {
		t.Errorf("target: %+v", tv)
	}
	// Recommend mode: resume, and the decision says 1 without applying it.
	policy["mode"] = "recommend"
	s.do(http.MethodPut, "/v1/scaling/policies/api", policy, ops...)
	s.do(http.MethodPost, "/v1/scaling/policies/api/resume", nil, ops...)
	eventually(t, 20*time.Second, "a recommend-mode decision", func() bool {
		ds := s.decisions(t, "api", ops...)
		return len(ds) > 0 && ds[0].Reason == "recommend_mode" && ds[0].Current == 3 && ds[0].Desired == 1
	})
	for _, d := range s.decisions(t, "api", ops...) {
		if len(d.Signals) != 1 || d.Signals[0].Name != "backlog" || (d.Signals[0].Value == nil && d.Signals[0].Error == "") {
			t.Fatalf("decision without its signal: %+v", d)
		}
	}
}

// TestScaling_WorkerStartRestartsControllers: a policy whose controller
// ended without the policy being deleted (terminated here) gets its
// controller back when a worker starts, with no PUT, pause or resume.
func TestScaling_WorkerStartRestartsControllers(t *testing.T) {
	s := newAPIStack(t)
	ops := bearer(s.key("ops", "scaling:write", "scaling:read"))
	policy := map[string]any{"driver": "dry_run", "max_replicas": 2, "interval_seconds": 1,
		"signals": map[string]any{"backlog_per_replica": 10}}
	if r := s.do(http.MethodPut, "/v1/scaling/policies/worker", policy, ops...); r.Status != 201 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	// No worker has run it yet: end it as a lost controller would end.
	if err := s.Temporal.TerminateWorkflow(context.Background(), wf.ControllerWorkflowID("worker"), "", "test: controller lost"); err != nil {
		t.Fatal(err)
	}
	if ds := s.decisions(t, "worker", ops...); len(ds) != 0 {
		t.Fatalf("decisions before any worker ran: %+v", ds)
	}
	s.startWorker()
	eventually(t, 30*time.Second, "a decision of the restarted controller", func() bool {
		return len(s.decisions(t, "worker", ops...)) > 0
	})
}

// TestScaling_ActionThatCannotBecomeReadyRollsBack scales a local target
// whose children never answer /readyz: the action waits its timeout, scales
// back to the previous count and ends rolled_back.
func TestScaling_ActionThatCannotBecomeReadyRollsBack(t *testing.T) {
	dir := t.TempDir()
	s := newStack(t, func(c *config.Config) { c.ScalingLocalDir = dir })
	ops := bearer(s.key("ops", "scaling:write", "scaling:read"))
	startSupervisor(t, &local.Supervisor{Dir: dir, Target: "api", Initial: 1, StopTimeout: time.Second,
		Command: func(int, string) *exec.Cmd { return exec.Command("sleep", "300") }})
	r := s.do(http.MethodPost, "/v1/scaling/actions", map[string]any{"target": "api", "replicas": 2, "reason": "try",
		"driver": "local", "timeout_seconds": 3}, ops...)
	var a scalingActionJSON
	r.JSON(t, &a)
	done := s.waitAction(t, a.ID, 60*time.Second, ops...)
	if done.Status != "rolled_back" || done.Previous != 1 || !strings.Contains(done.Error, "0 of 2 api replicas ready") {
		t.Fatalf("action: %+v", done)
	}
	desired, _, err := local.Driver{Dir: dir}.Replicas(context.Background(), "api")
	if err != nil || desired != 1 {
		t.Errorf("after the rollback the desired count is %d (%v), want 1", desired, err)
	}
}

// startSupervisor runs sup until the test ends.
func startSupervisor(t *testing.T, sup *local.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 10*time.Second, "the supervisor's status", func() bool {
		_, _, err := local.Driver{Dir: sup.Dir}.Replicas(ctx, sup.Target)
		return err == nil
	})
}

// stopScalingControllers ends, when the test ends, the controllers that run
// on s's control queue. Their workflow ids are fixed per target (one
// controller per target and namespace), and the tests share a namespace:
// a controller left running on a finished test's queue would be the
// "existing" controller the next test's PUT keeps, and nothing would poll it.
func (s *stack) stopScalingControllers(t testing.TB) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, target := range []string{"worker", "api"} {
			id := wf.ControllerWorkflowID(target)
			//lint:ignore SA1019 the task queue of a run is all this needs; DescribeWorkflow wraps the same call
			desc, err := s.Temporal.DescribeWorkflowExecution(ctx, id, "")
			if err != nil || desc.GetWorkflowExecutionInfo().GetTaskQueue() != s.cfg.ControlTaskQueue {
				continue
			}
			_ = s.Temporal.TerminateWorkflow(ctx, id, "", "test over")
		}
	})
}
