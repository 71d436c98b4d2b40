package slos

import (
	"slices"
	"time"

	"github.com/acme/platform/slo"
)

// report is the answer of GET /v1/slos.
type report struct {
	AsOf time.Time `json:"as_of"`
	// Principal is the client the numbers are of; null is all traffic.
	Principal *string   `json:"principal"`
	Data      []sloView `json:"data"`
}

// sloView is one SLO evaluated over the usage data.
type sloView struct {
	Name               string             `json:"name"`
	Class              string             `json:"class"`
	SLI                string             `json:"sli"`
	Description        string             `json:"description"`
	Objective          float64            `json:"objective"`
	LatencyThresholdMS *float64           `json:"latency_threshold_ms"`
	Window             string             `json:"window"`
	Events             events             `json:"events"`
	SLIValue           *float64           `json:"sli_value"`
	BudgetRemaining    float64            `json:"error_budget_remaining"`
	BurnRates          map[string]float64 `json:"burn_rates"`
}

type events struct {
	Total int64 `json:"total"`
	Bad   int64 `json:"bad"`
}

// windowName is the SLO window as the spec writes it.
const windowName = "28d"

// evaluate computes every objective over rows, whose hours end with the one
// containing now. A window of span w covers the hours starting at or after
// now's hour + 1h - w: whole UTC hours, the current one so far.
func evaluate(rows []hourRoute, now time.Time) []sloView {
	current := now.UTC().Truncate(time.Hour)
	classes := make([]slo.Class, len(rows))
	for i, r := range rows {
		classes[i] = slo.ClassOfUsageRoute(r.Route)
	}
	counts := func(o slo.Objective, span time.Duration) slo.Counts {
		from := current.Add(time.Hour - span)
		var c slo.Counts
		for i, r := range rows {
			if classes[i] != o.Class || r.Hour.Before(from) {
				continue
			}
			c = c.Add(sliCounts(o, r))
		}
		return c
	}
	views := make([]sloView, 0, len(slo.Objectives))
	for _, o := range slo.Objectives {
		whole := counts(o, slo.Window)
		v := sloView{Name: o.Name, Class: string(o.Class), SLI: o.SLI, Description: describe(o), Objective: o.Target,
			Window: windowName, Events: events{Total: whole.Total, Bad: whole.Bad},
			BudgetRemaining: o.BudgetRemaining(whole), BurnRates: map[string]float64{}}
		if o.SLI == slo.Latency {
			ms := o.Threshold * 1000
			v.LatencyThresholdMS = &ms
		}
		if whole.Total > 0 {
			good := 1 - whole.ErrorRatio()
			v.SLIValue = &good
		}
		for _, w := range slo.BurnWindows {
			v.BurnRates[w.Name] = o.BurnRate(counts(o, w.Span))
		}
		views = append(views, v)
	}
	return views
}

// sliCounts are r's events as o counts them.
func sliCounts(o slo.Objective, r hourRoute) slo.Counts {
	if o.SLI == slo.Availability {
		return slo.Counts{Total: r.Count, Bad: r.Errors}
	}
	i := slices.Index(thresholds, slices.Index(slo.LatencyBuckets, o.Threshold))
	return slo.Counts{Total: r.LatencyTotal, Bad: r.LatencyTotal - r.Within[i]}
}

func describe(o slo.Objective) string {
	if o.SLI == slo.Availability {
		return "share of " + string(o.Class) + " requests answered without a 5xx"
	}
	return "share of " + string(o.Class) + " requests answered within the latency threshold"
}
