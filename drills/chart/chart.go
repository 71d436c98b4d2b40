// Package chart draws a load experiment's charts as hand-written SVG: for
// one endpoint class, latency percentiles (p50, p90, p99) and the error
// rate against the offered rate, the class's p99 bound and its knee
// marked. The input is the drill's recorded measurements (rebuilt by
// experiment.FromMeasurements), so a chart can be drawn for any drill,
// long after its run.
package chart

import (
	"fmt"
	"math"
	"strings"

	"github.com/acme/platform/drills/experiment"
)

// Names are the charts a drill may have: one per endpoint class.
var Names = experiment.Classes

// Find returns the series named name from a drill's measurements; ok is
// false for an unknown name or a class the drill has no load data for.
func Find(m map[string]float64, name string) (experiment.Series, bool) {
	for _, s := range experiment.FromMeasurements(m) {
		if s.Class == name {
			return s, true
		}
	}
	return experiment.Series{}, false
}

const (
	width, height       = 640, 480
	left, right, gap    = 60, 20, 50
	top                 = 40
	panelH              = 160
	errTop              = top + panelH + gap
	plotW               = width - left - right
	colP50, colP90, col = "#1f77b4", "#ff7f0e", "#d62728"
)

// SVG draws s with its p99 bound in milliseconds.
func SVG(s experiment.Series, boundMS float64) []byte {
	maxRate, maxMS, maxErr := 1.0, boundMS, 0.01
	for _, p := range s.Points {
		maxRate = math.Max(maxRate, p.Rate)
		maxMS = math.Max(maxMS, p.P99)
		maxErr = math.Max(maxErr, p.ErrorRate)
	}
	maxMS *= 1.1
	x := func(rate float64) float64 { return left + rate/maxRate*plotW }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s: latency and errors against offered rate</text>`+"\n", left, s.Class)

	panel(&b, top, "latency (ms)", maxMS, maxRate)
	yMS := func(v float64) float64 { return top + panelH - v/maxMS*panelH }
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="gray" stroke-dasharray="4 3"/><text x="%d" y="%.1f" fill="gray" text-anchor="end">p99 bound %.0f ms</text>`+"\n",
		left, width-right, yMS(boundMS), yMS(boundMS), width-right, yMS(boundMS)-3, boundMS)
	line(&b, s.Points, x, func(p experiment.Point) float64 { return yMS(p.P50) }, colP50, "p50")
	line(&b, s.Points, x, func(p experiment.Point) float64 { return yMS(p.P90) }, colP90, "p90")
	line(&b, s.Points, x, func(p experiment.Point) float64 { return yMS(p.P99) }, col, "p99")
	legend(&b)

	panel(&b, errTop, "error rate (%)", maxErr*100, maxRate)
	yErr := func(v float64) float64 { return errTop + panelH - v/maxErr*panelH }
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="gray" stroke-dasharray="4 3"/>`+"\n",
		left, width-right, yErr(experiment.MaxErrorRate), yErr(experiment.MaxErrorRate))
	line(&b, s.Points, x, func(p experiment.Point) float64 { return yErr(p.ErrorRate) }, col, "error rate")

	if s.HasKnee {
		kx := x(s.Knee)
		fmt.Fprintf(&b, `<g id="knee"><line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-width="1.5"/><text x="%.1f" y="%d">knee %.0f/s</text></g>`+"\n",
			kx, kx, top, errTop+panelH, kx+4, top+12, s.Knee)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">offered rate (requests/s)</text>`+"\n", left+plotW/2, height-8)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// panel draws a frame with its y label and the x axis ticks.
func panel(b *strings.Builder, y0 int, label string, maxY, maxRate float64) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", left, y0, plotW, panelH)
	fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", left, y0-6, label)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%.3g</text><text x="%d" y="%d" text-anchor="end">0</text>`+"\n",
		left-4, y0+10, maxY, left-4, y0+panelH)
	for i := 0; i <= 4; i++ {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", float64(left)+float64(i)*plotW/4, y0+panelH+14, maxRate*float64(i)/4)
	}
}

// line draws one series as a polyline with a dot per step.
func line(b *strings.Builder, ps []experiment.Point, x func(float64) float64, y func(experiment.Point) float64, color, name string) {
	pts := make([]string, len(ps))
	for i, p := range ps {
		pts[i] = fmt.Sprintf("%.1f,%.1f", x(p.Rate), y(p))
	}
	fmt.Fprintf(b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", name, color, strings.Join(pts, " "))
	for _, p := range pts {
		xy := strings.Split(p, ",")
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2" fill="%s"/>`, xy[0], xy[1], color)
	}
	b.WriteString("\n")
}

func legend(b *strings.Builder) {
	for i, l := range []struct{ name, color string }{{"p50", colP50}, {"p90", colP90}, {"p99", col}} {
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="%s">%s</text>`, left+8+i*40, top+14, l.color, l.name)
	}
	b.WriteString("\n")
}
