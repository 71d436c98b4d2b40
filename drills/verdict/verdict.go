// Package verdict judges a drill: RTO and RPO arithmetic, and whether the
// drill met its objectives. It is pure, so the workflow (which stores the
// verdict in the row) and the report (which explains it) agree.
package verdict

import (
	"fmt"
	"strconv"
	"time"

	"github.com/acme/platform/drills"
)

// RTO is the recovery time in seconds: from t0, when the disaster was
// declared, to t1, when the restored copy first answered. Never negative.
func RTO(t0, t1 time.Time) float64 { return drills.Seconds(t1.Sub(t0)) }

// RPO is the recovery point in seconds: the data written between the
// backup's snapshot and t0 is what a restore loses. Never negative.
func RPO(t0, snapshot time.Time) float64 { return drills.Seconds(t0.Sub(snapshot)) }

// Check is one objective against its measurement.
type Check struct {
	Name        string   // as people say it: "RTO", "RPO"
	Measurement string   // its measurement's name: "rto_seconds"
	Target      *float64 // nil: no objective was set
	Measured    *float64 // nil: not measured
}

// Judged reports whether the check has an objective to hold.
func (c Check) Judged() bool { return c.Target != nil }

// Held reports whether the objective held: measured, and not over it.
func (c Check) Held() bool { return c.Measured != nil && c.Target != nil && *c.Measured <= *c.Target }

// Reason says why a judged objective missed, or "" when it held or was
// not set.
func (c Check) Reason() string {
	switch {
	case !c.Judged() || c.Held():
		return ""
	case c.Measured == nil:
		return fmt.Sprintf("%s was not measured (objective %s s)", c.Name, Format(*c.Target))
	}
	return fmt.Sprintf("%s was %s s, over the objective of %s s", c.Name, Format(*c.Measured), Format(*c.Target))
}

// Checks are the drill's objectives against its measurements: RTO, then
// RPO, whether set or not.
func Checks(obj drills.Objectives, measurements map[string]float64) []Check {
	checks := []Check{
		{Name: "RTO", Measurement: drills.RTOSeconds, Target: obj.RTOSeconds},
		{Name: "RPO", Measurement: drills.RPOSeconds, Target: obj.RPOSeconds},
	}
	for i, c := range checks {
		if v, ok := measurements[c.Measurement]; ok {
			checks[i].Measured = &v
		}
	}
	return checks
}

// Judge returns the drill's verdict and, when it is missed, one reason for
// a status other than succeeded, one per failed step, and one per objective
// that was not measured or did not hold. Met needs status succeeded and no
// reason at all.
func Judge(status string, obj drills.Objectives, measurements map[string]float64, timeline []drills.Step) (string, []string) {
	var reasons []string
	if r := statusReason(status); r != "" {
		reasons = append(reasons, r)
	}
	for _, s := range timeline {
		if s.Status == drills.StepFailed {
			reasons = append(reasons, StepReason(s))
		}
	}
	for _, c := range Checks(obj, measurements) {
		if r := c.Reason(); r != "" {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) > 0 {
		return drills.Missed, reasons
	}
	return drills.Met, nil
}

func statusReason(status string) string {
	switch status {
	case drills.Succeeded:
		return ""
	case drills.Aborted:
		return "the drill was aborted before it finished"
	case drills.Queued, drills.Running:
		return "the drill has not finished"
	default:
		return "the drill ended " + status + ", not succeeded"
	}
}

// StepReason says why a failed step misses the drill.
func StepReason(s drills.Step) string {
	if s.Detail == "" {
		return fmt.Sprintf("step %s failed", s.Name)
	}
	return fmt.Sprintf("step %s failed: %s", s.Name, s.Detail)
}

// Format writes a number of seconds or bytes the shortest way that keeps
// its value: 300, 412.5, 0.001.
func Format(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
