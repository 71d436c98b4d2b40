package drill

import (
	"context"
	"fmt"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.temporal.io/sdk/activity"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/drills/invariants"
	"github.com/acme/platform/workflows/drill"
)

// Capacity ramps the request mix against the platform's own API and finds
// each class's knee, with a key it mints for the run and revokes after.
// Between steps it heartbeats with the step reached; an abort (a
// cancelled context) stops the attack within a heartbeat.
func (a *Activities) Capacity(ctx context.Context, in drill.CapacityInput) (drill.CapacityResult, error) {
	p := in.Params
	rates := p.Rates()
	ramp := time.Duration(len(rates)*p.StepSeconds) * time.Second
	keyID, secret, err := a.mintKey(ctx, "capacity drill "+in.DrillID, experimentScopes, ramp+keyGrace)
	if err != nil {
		return drill.CapacityResult{}, err
	}
	defer a.revokeDrillKey(ctx, keyID)
	defer keepAlive(ctx)()

	base := a.Config.DrillAPIURL
	jobID, err := seedJob(ctx, base, secret, in.DrillID)
	if err != nil {
		return drill.CapacityResult{}, err
	}
	m := &mix{base: base, secret: secret, drillID: in.DrillID, jobID: jobID}
	baseline := scrape(ctx, a.Config.DrillMetricsURL)
	var res drill.CapacityResult
	var perStep []map[string]float64
	var acked []string
	for i, rate := range rates {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, i)
		}
		before := scrape(ctx, a.Config.DrillMetricsURL)
		t, err := attackStep(ctx, m, rate, time.Duration(p.StepSeconds)*time.Second)
		if err != nil {
			return res, err
		}
		step := t.step(float64(rate), float64(p.StepSeconds))
		res.Steps = append(res.Steps, step)
		acked = append(acked, t.acked...)
		perStep = append(perStep, resources(before, scrape(ctx, a.Config.DrillMetricsURL), float64(p.StepSeconds)))
		if pastEveryKnee(step) {
			res.Stopped = fmt.Sprintf("every class past its bound at %d requests/s", rate)
			break
		}
	}
	res.Knees = experiment.Knees(res.Steps, nil)
	res.AtKnee = atKnee(res.Knees, perStep)
	res.Invariants = a.checkInvariants(ctx, m, acked, baseline)
	return res, nil
}

// attackStep offers rate requests per second of the mix for d.
func attackStep(ctx context.Context, m *mix, rate int, d time.Duration) (*tally, error) {
	atk, closeIdle := newAttacker()
	defer closeIdle()
	t := newTally()
	results := atk.Attack(m.targeter(), vegeta.Rate{Freq: rate, Per: time.Second}, d, "capacity")
	for {
		select {
		case r, ok := <-results:
			if !ok {
				return t, ctx.Err()
			}
			t.add(r)
		case <-ctx.Done():
			atk.Stop()
			for r := range results {
				t.add(r)
			}
			return t, ctx.Err()
		}
	}
}

// pastEveryKnee: no class held its bound at this step, so a higher rate
// would only load the platform further without measuring more.
func pastEveryKnee(s experiment.Step) bool {
	for class, c := range s.Classes {
		if c.Within(experiment.DefaultP99[class]) {
			return false
		}
	}
	return len(s.Classes) > 0
}

// atKnee are the resources of the step of the lowest knee found.
func atKnee(knees []experiment.Knee, perStep []map[string]float64) map[string]float64 {
	at := -1
	for _, k := range knees {
		if k.OK && (at < 0 || k.Step < at) {
			at = k.Step
		}
	}
	if at < 0 || at >= len(perStep) {
		return nil
	}
	return perStep[at]
}

// checkInvariants runs the checks every experiment ends with.
func (a *Activities) checkInvariants(ctx context.Context, m *mix, acked []string, baseline map[string]float64) []invariants.Result {
	out := []invariants.Result{a.jobsNotLost(ctx, acked)}
	out = append(out, duplicatesProbe(ctx, m), a.cursorProbe(ctx, m))
	if len(baseline) > 0 {
		after := settle(ctx, a.Config.DrillMetricsURL, resourcesOf(baseline))
		out = append(out, invariants.Returned(resourcesOf(baseline), after, invariants.DefaultSlack))
	}
	return out
}

// settle scrapes until the resources are back within slack of baseline,
// for at most settleFor (idle connections close, the GC runs), and returns the
// last reading.
func settle(ctx context.Context, url string, baseline invariants.Resources) invariants.Resources {
	deadline := time.Now().Add(settleFor)
	for {
		now := resourcesOf(scrape(ctx, url))
		if invariants.Returned(baseline, now, invariants.DefaultSlack).Held || time.Now().After(deadline) || ctx.Err() != nil {
			return now
		}
		time.Sleep(time.Second)
	}
}

// settleFor is how long the no-leak check waits for the API's goroutines
// and heap to come back: keep-alive connections of the load close after
// the API's idle timeout, and a loaded 2-core box delays the GC.
const settleFor = 45 * time.Second
