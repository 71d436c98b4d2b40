package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// rolloutView is the part of GET /v1/rollouts/{id} the tests read.
type rolloutView struct {
	ID          string `json:"id"`
	Flag        string `json:"flag"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	CurrentStep int    `json:"current_step"`
	Percent     int    `json:"percent"`
	FlagVersion *int64 `json:"flag_version"`
	Steps       []struct {
		Percent   int        `json:"percent"`
		StartedAt *time.Time `json:"started_at"`
		EndedAt   *time.Time `json:"ended_at"`
		Decision  string     `json:"decision"`
		Failures  int        `json:"failures"`
		Checks    []struct {
			At       time.Time `json:"at"`
			Phase    string    `json:"phase"`
			Verdict  string    `json:"verdict"`
			Decision string    `json:"decision"`
			Result   struct {
				ControlErrorRate   float64 `json:"control_error_rate"`
				TreatmentErrorRate float64 `json:"treatment_error_rate"`
				Observation        struct {
					Control   struct{ Samples int } `json:"control"`
					Treatment struct{ Samples int } `json:"treatment"`
				} `json:"observation"`
			} `json:"result"`
			Evidence struct {
				Source  string             `json:"source"`
				Queries map[string]string  `json:"queries"`
				Values  map[string]float64 `json:"values"`
			} `json:"evidence"`
		} `json:"checks"`
	} `json:"steps"`
	Evidence *struct {
		Decision string `json:"decision"`
		Step     int    `json:"step"`
		Checks   []any  `json:"checks"`
		Evidence *struct {
			Source  string            `json:"source"`
			Queries map[string]string `json:"queries"`
		} `json:"evidence"`
	} `json:"evidence"`
	FinishedAt *time.Time `json:"finished_at"`
}

// startRollout posts a rollout and returns its id.
func (s *stack) startRollout(t *testing.T, secret string, body map[string]any) string {
	t.Helper()
	r := s.do("POST", "/v1/rollouts", body, bearer(secret)...)
	if r.Status != 202 {
		t.Fatalf("POST /v1/rollouts: %d %s", r.Status, r.Body)
	}
	var v rolloutView
	r.JSON(t, &v)
	return v.ID
}

func (s *stack) rollout(t *testing.T, secret, id string) rolloutView {
	t.Helper()
	r := s.do("GET", "/v1/rollouts/"+id, nil, bearer(secret)...)
	if r.Status != 200 {
		t.Fatalf("GET rollout: %d %s", r.Status, r.Body)
	}
	var v rolloutView
	r.JSON(t, &v)
	return v
}

// waitForStatus polls the rollout until it has status, failing on another
// terminal status.
func (s *stack) waitForStatus(t *testing.T, secret, id, status string, timeout time.Duration) rolloutView {
	t.Helper()
	var v rolloutView
	eventually(t, timeout, "rollout "+id+" to be "+status, func() bool {
		r := s.do("GET", "/v1/rollouts/"+id, nil, bearer(secret)...)
		if r.Status == 404 {
			return false // started outside the API: the row comes with the first activity
		}
		v = rolloutView{}
		r.JSON(t, &v)
		switch v.Status {
		case status:
			return true
		case "succeeded", "rolled_back", "aborted", "failed":
			t.Fatalf("rollout ended %s (%s), want %s", v.Status, v.Reason, status)
		}
		return false
	})
	return v
}

// traffic plays the services behind a flag: every 100ms, 40 new users are
// served the variant the OpenFeature client gives them, and the outcomes
// are reported to the rollout. failing says whether the treatment fails at
// a given percentage.
func (s *stack) traffic(t *testing.T, secret, id, flag string, failing func(percent int) bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tick := 0; ctx.Err() == nil; tick++ {
			if !s.reportOutcomes(ctx, secret, id, flag, tick, failing) {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// reportOutcomes reports one tick of outcomes; false once the rollout has ended.
func (s *stack) reportOutcomes(ctx context.Context, secret, id, flag string, tick int, failing func(int) bool) bool {
	status, percent := s.rolloutProgress(ctx, id)
	if status != "running" && status != "paused" {
		return status == "" // not written yet
	}
	events := make([]map[string]any, 0, 40)
	for i := range 40 {
		user := fmt.Sprintf("user-%d-%d", tick, i)
		d, _ := s.Flags.Client.BooleanValueDetails(ctx, flag, false, openfeature.NewEvaluationContext(user, nil))
		fails := d.Variant == "on" && failing(percent) && i%2 == 0
		events = append(events, map[string]any{"targeting_key": user, "variant": d.Variant, "error": fails,
			"latency_ms": 10 + rand.Float64()*2})
	}
	r := s.do(http.MethodPost, "/v1/rollouts/"+id+"/events", map[string]any{"events": events}, bearer(secret)...)
	return r.Status == 202
}

// rolloutProgress reads the rollout's row directly, so the traffic does not
// count against the test principal's read quota.
func (s *stack) rolloutProgress(ctx context.Context, id string) (string, int) {
	var status string
	var percent int
	_ = s.DB.QueryRow(ctx, `SELECT status, percent FROM rollouts WHERE id = $1`, id).Scan(&status, &percent)
	return status, percent
}

// flagDefinition reads a flag's stored definition.
func (s *stack) flagDefinition(t *testing.T, key string) (map[string]any, int64, string) {
	t.Helper()
	var def map[string]any
	var version int64
	var by string
	if err := s.DB.QueryRow(context.Background(), `SELECT definition, version, updated_by FROM flags WHERE key = $1`, key).
		Scan(&def, &version, &by); err != nil {
		t.Fatal(err)
	}
	return def, version, by
}

// eventsGuard is an events guard with small numbers, for quick tests.
func eventsGuard(extra map[string]any) map[string]any {
	g := map[string]any{"source": "events", "interval_seconds": 1, "min_samples": 20}
	for k, v := range extra {
		g[k] = v
	}
	return g
}

func steps(pairs ...int) []map[string]any {
	var out []map[string]any
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, map[string]any{"percent": pairs[i], "hold_seconds": pairs[i+1]})
	}
	return out
}
