package slo

import (
	"math"
	"slices"
	"testing"
)

func TestClassOf(t *testing.T) {
	tests := []struct {
		method, route string
		want          Class
	}{
		{"GET", "/v1/jobs/{id}", Reads},
		{"HEAD", "/v1/jobs", Reads},
		{"POST", "/v1/jobs", JobStart},
		{"POST", "/v1/jobs/{id}/cancel", Writes},
		{"PUT", "/v1/flags/{key}", Writes},
		{"PATCH", "/v1/flags/{key}", Writes},
		{"DELETE", "/v1/keys/{id}", Writes},
		{"POST", "/ofrep/v1/evaluate/flags/{key}", OFREP},
		{"POST", "/ofrep/v1/evaluate/flags", OFREP},
		{"GET", "/healthz", None},
		{"GET", "/readyz", None},
		{"GET", "unmatched", None},
		{"_OTHER", "/v1/jobs", None},
		{"OPTIONS", "/v1/jobs", None},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.method, tt.route); got != tt.want {
			t.Errorf("ClassOf(%q, %q) = %q, want %q", tt.method, tt.route, got, tt.want)
		}
		if got := ClassOfUsageRoute(tt.method + " " + tt.route); got != tt.want {
			t.Errorf("ClassOfUsageRoute(%q) = %q, want %q", tt.method+" "+tt.route, got, tt.want)
		}
	}
	if got := ClassOfUsageRoute("garbage"); got != None {
		t.Errorf("ClassOfUsageRoute(garbage) = %q", got)
	}
}

func TestBudgetAndBurn(t *testing.T) {
	o := Objective{Target: 0.999}
	tests := []struct {
		c          Counts
		burn, left float64
	}{
		{Counts{}, 0, 1},
		{Counts{Total: 1000, Bad: 0}, 0, 1},
		{Counts{Total: 1000, Bad: 1}, 1, 0},
		{Counts{Total: 10000, Bad: 5}, 0.5, 0.5},
		{Counts{Total: 1000, Bad: 3}, 3, -2},
	}
	for _, tt := range tests {
		if got := o.BurnRate(tt.c); math.Abs(got-tt.burn) > 1e-9 {
			t.Errorf("BurnRate(%+v) = %v, want %v", tt.c, got, tt.burn)
		}
		if got := o.BudgetRemaining(tt.c); math.Abs(got-tt.left) > 1e-9 {
			t.Errorf("BudgetRemaining(%+v) = %v, want %v", tt.c, got, tt.left)
		}
	}
}

func TestObjectives_ThresholdsAreBuckets(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range Objectives {
		if seen[o.Name] {
			t.Errorf("%s declared twice", o.Name)
		}
		seen[o.Name] = true
		if !slices.Contains(Classes, o.Class) {
			t.Errorf("%s: class %q has no SLOs", o.Name, o.Class)
		}
		if o.SLI == Latency && !slices.Contains(LatencyBuckets, o.Threshold) {
			t.Errorf("%s: threshold %v is not a histogram bucket", o.Name, o.Threshold)
		}
		if o.Target <= 0 || o.Target >= 1 {
			t.Errorf("%s: target %v", o.Name, o.Target)
		}
	}
}
