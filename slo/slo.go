// Package slo holds the platform's service level objectives: the endpoint
// classes requests fall into, the objective of each class, and the error
// budget arithmetic. The same objectives are declared for Prometheus in
// deploy/slo/slos.yaml (a test keeps the two equal); GET /v1/slos evaluates
// them against the platform's own usage data.
package slo

import (
	"net/http"
	"strings"
	"time"
)

// Class is an endpoint class: a bounded label computed from the normalised
// method and the route template, never from anything a client chooses.
type Class string

// The endpoint classes. None is traffic no SLO covers: probes, unmatched
// routes and methods outside the standard set.
const (
	Reads    Class = "reads"
	Writes   Class = "writes"
	JobStart Class = "job_start"
	OFREP    Class = "ofrep"
	None     Class = "none"
)

// Classes lists the classes with SLOs, in a stable order.
var Classes = []Class{Reads, Writes, JobStart, OFREP}

// uncovered routes are probes and what no route matched.
var uncovered = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "unmatched": true}

// ClassOf returns the class of a request by its normalised method and route
// template (as the HTTP metrics label them). OFREP evaluations are POSTs but
// reads for clients, so they are a class of their own.
func ClassOf(method, route string) Class {
	switch {
	case uncovered[route]:
		return None
	case strings.HasPrefix(route, "/ofrep/"):
		return OFREP
	case method == http.MethodPost && route == "/v1/jobs":
		return JobStart
	case method == http.MethodGet || method == http.MethodHead:
		return Reads
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete:
		return Writes
	}
	return None
}

// ClassOfUsageRoute classifies a usage event's route, "METHOD /template".
func ClassOfUsageRoute(route string) Class {
	method, tmpl, ok := strings.Cut(route, " ")
	if !ok {
		return None
	}
	return ClassOf(method, tmpl)
}

// SLI kinds.
const (
	Availability = "availability"
	Latency      = "latency"
)

// LatencyBuckets are the upper bounds, in seconds, of the API's latency
// histogram and of the usage roll-ups' cumulative latency counts; every
// latency threshold below is one of them, so Prometheus and the roll-ups
// count slow requests alike.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Window is the period of every objective.
const Window = 28 * 24 * time.Hour

// BurnWindows are the windows burn rates are reported over: those of the
// multiwindow alerts' long windows.
var BurnWindows = []BurnWindow{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"1d", 24 * time.Hour}, {"3d", 72 * time.Hour}}

// BurnWindow is a named window ending now.
type BurnWindow struct {
	Name string
	Span time.Duration
}

// Objective is one SLO. A request is a bad event of an availability SLI when
// it was answered 5xx (4xx are the caller's), and of a latency SLI when it
// took longer than Threshold.
type Objective struct {
	Name      string // as in deploy/slo/slos.yaml
	Class     Class
	SLI       string  // Availability or Latency
	Target    float64 // the share of good events, such as 0.999
	Threshold float64 // latency SLIs: seconds, one of LatencyBuckets
}

// Objectives are the platform's SLOs, two per class.
var Objectives = []Objective{
	{Name: "reads-availability", Class: Reads, SLI: Availability, Target: 0.999},
	{Name: "reads-latency", Class: Reads, SLI: Latency, Target: 0.99, Threshold: 0.25},
	{Name: "writes-availability", Class: Writes, SLI: Availability, Target: 0.999},
	{Name: "writes-latency", Class: Writes, SLI: Latency, Target: 0.99, Threshold: 1},
	{Name: "job-start-availability", Class: JobStart, SLI: Availability, Target: 0.999},
	{Name: "job-start-latency", Class: JobStart, SLI: Latency, Target: 0.99, Threshold: 0.5},
	{Name: "ofrep-availability", Class: OFREP, SLI: Availability, Target: 0.9995},
	{Name: "ofrep-latency", Class: OFREP, SLI: Latency, Target: 0.99, Threshold: 0.05},
}

// Counts are the events of an SLI over some window.
type Counts struct {
	Total, Bad int64
}

// Add returns the sum of c and d.
func (c Counts) Add(d Counts) Counts { return Counts{Total: c.Total + d.Total, Bad: c.Bad + d.Bad} }

// ErrorRatio is the share of bad events, 0 without events.
func (c Counts) ErrorRatio() float64 {
	if c.Total == 0 {
		return 0
	}
	return float64(c.Bad) / float64(c.Total)
}

// BurnRate is how fast c spends the budget: 1 spends exactly the whole
// budget over the SLO's window, 14.4 spends 2 % of a 28-day budget in an hour.
func (o Objective) BurnRate(c Counts) float64 {
	return c.ErrorRatio() / (1 - o.Target)
}

// BudgetRemaining is the share of the window's error budget left after c,
// the window's events: 1 untouched, 0 spent, negative overspent.
func (o Objective) BudgetRemaining(c Counts) float64 {
	if c.Total == 0 {
		return 1
	}
	allowed := float64(c.Total) * (1 - o.Target)
	return 1 - float64(c.Bad)/allowed
}
