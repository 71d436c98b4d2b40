// Package report renders a drill as a Markdown postmortem draft: summary,
// hypothesis, timeline in UTC, objectives against measurements, artefacts
// with sizes and checksums, deviations, action items and a link to the run.
// It is pure: the API serves it as text/markdown and the CLI prints it.
package report

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/drills/verdict"
)

// Render writes the report of drill d. m is the manifest of the drill's
// backup when it can be read (nil otherwise); runURL links to the run in the
// Temporal UI ("" for no link).
func Render(d drills.Drill, m *drills.Manifest, runURL string) string {
	var b strings.Builder
	title := d.Scenario
	if d.Verdict != "" {
		title += ", " + d.Verdict
	}
	fmt.Fprintf(&b, "# Drill %s: %s\n\n", inline(d.ID), inline(title))
	b.WriteString("_A postmortem draft written from the drill's record. Check it, add what only people know, and keep it._\n")
	summary(&b, d)
	hypothesis(&b, d)
	timeline(&b, d)
	objectives(&b, d)
	charts(&b, d)
	artefacts(&b, d, m)
	reasons := deviations(d)
	section(&b, "Deviations")
	bullets(&b, reasons, "None: the drill succeeded and every objective held.")
	section(&b, "Action items")
	bullets(&b, actions(d), "None.")
	run(&b, d, runURL)
	return b.String()
}

func section(b *strings.Builder, title string) { fmt.Fprintf(b, "\n## %s\n\n", title) }

func summary(b *strings.Builder, d drills.Drill) {
	section(b, "Summary")
	rows := [][]string{
		{"Scenario", d.Scenario},
		{"Status", d.Status},
		{"Verdict", orDash(d.Verdict)},
		{"Started by", d.Principal},
		{"Started", when(d.StartedAt)},
		{"Finished", finished(d)},
		{"Backup", orDash(d.BackupID)},
	}
	table(b, []string{"Field", "Value"}, rows)
	if !drills.Final(d.Status) {
		b.WriteString("\nThe drill has not finished: this draft will change.\n")
	}
}

func finished(d drills.Drill) string {
	if d.FinishedAt == nil || d.StartedAt == nil {
		return when(d.FinishedAt)
	}
	return fmt.Sprintf("%s (%s s)", when(d.FinishedAt), verdict.Format(drills.Seconds(d.FinishedAt.Sub(*d.StartedAt))))
}

func hypothesis(b *strings.Builder, d drills.Drill) {
	section(b, "Hypothesis")
	b.WriteString(Hypothesis(d.Scenario, d.Objectives) + "\n")
}

// Hypothesis is what a drill of scenario sets out to show.
func Hypothesis(scenario string, obj drills.Objectives) string {
	rto, rpo := "within a recovery time we measure (no RTO objective was set)",
		"lose only what was written after the backup's snapshot (no RPO objective was set)"
	if obj.RTOSeconds != nil {
		rto = "within the RTO of " + verdict.Format(*obj.RTOSeconds) + " s"
	}
	if obj.RPOSeconds != nil {
		rpo = "lose at most " + verdict.Format(*obj.RPOSeconds) + " s of data"
	}
	switch scenario {
	case drills.ScenarioBackup:
		return "We can take a complete, restorable backup of Postgres, Redis and the configuration, with every artefact's " +
			"size and SHA-256 in its manifest, and keep the backup store within its retention."
	case drills.ScenarioRestoreVerify:
		return "We can restore the newest backup (or the one named) into a fresh target " + rto + " and " + rpo +
			": every table's row count and the schema version match the manifest, and the platform's own code reads the copy."
	case drills.ScenarioFailover:
		return "We can fence the primary and promote the standby " + rto + ", and " + strings.Replace(rpo, "of data", "of acknowledged writes", 1) + "."
	case drills.ScenarioCacheLoss:
		return "The platform keeps serving through the loss of its Redis: no 5xx responses, no duplicate resources from " +
			"replayed idempotent requests, and Redis-backed rate limiting back on its own."
	case drills.ScenarioCapacity:
		return "Each endpoint class (get by id, list, create, OFREP) has a knee: a highest offered rate at which its p99 stays " +
			"under its latency bound and its errors under 0.1 %; every acknowledged job survives, idempotent creates make one " +
			"resource, cursors neither repeat nor skip, and goroutines and heap return to their baseline."
	case drills.ScenarioDBDegraded:
		return "With Postgres slowed, starved, stalled or cut, the API answers in its documented degraded mode: 503 with " +
			"Retry-After when Postgres is gone, load shed before its pool queue grows without bound, never a 500; and no " +
			"acknowledged job is lost."
	case drills.ScenarioCacheDegraded:
		return "With Redis slowed, starved, stalled or cut, the API keeps serving with in-process rate limiting, never a 500, " +
			"and idempotent creates still make one resource."
	}
	return fmt.Sprintf("No hypothesis is written for scenario %q.", scenario)
}

func timeline(b *strings.Builder, d drills.Drill) {
	section(b, "Timeline (UTC)")
	if len(d.Timeline) == 0 {
		b.WriteString("No step has started.\n")
		return
	}
	rows := make([][]string, len(d.Timeline))
	for i, s := range d.Timeline {
		took := "—"
		if s.FinishedAt != nil {
			took = verdict.Format(s.Seconds()) + " s"
		}
		rows[i] = []string{stamp(s.StartedAt), s.Name, s.Status, took, orDash(s.Detail)}
	}
	table(b, []string{"Time", "Step", "Status", "Took", "Detail"}, rows)
}

func objectives(b *strings.Builder, d drills.Drill) {
	section(b, "Objectives")
	checks := verdict.Checks(d.Objectives, d.Measurements)
	if !slices.ContainsFunc(checks, func(c verdict.Check) bool { return c.Judged() || c.Measured != nil }) {
		b.WriteString("No RTO or RPO objective was set, and none was measured.\n")
	} else {
		checkTable(b, checks)
	}
	measurements(b, d.Measurements)
}

func checkTable(b *strings.Builder, checks []verdict.Check) {
	var rows [][]string
	for _, c := range checks {
		target, measured, result := "not set", "not measured", "not judged"
		if c.Target != nil {
			target = "≤ " + verdict.Format(*c.Target) + " s"
		}
		if c.Measured != nil {
			measured = verdict.Format(*c.Measured) + " s"
		}
		switch {
		case c.Held():
			result = "held"
		case c.Judged():
			result = "**missed**"
		}
		rows = append(rows, []string{c.Name, target, measured, result})
	}
	table(b, []string{"Objective", "Target", "Measured", "Result"}, rows)
}

// measurements lists the scenario's own measurements.
func measurements(b *strings.Builder, m map[string]float64) {
	var other [][]string
	for _, k := range sortedKeys(m) {
		if k != drills.RTOSeconds && k != drills.RPOSeconds {
			other = append(other, []string{k, verdict.Format(m[k])})
		}
	}
	if len(other) > 0 {
		b.WriteString("\nOther measurements (sizes in bytes, durations in seconds):\n\n")
		table(b, []string{"Measurement", "Value"}, other)
	}
}

func artefacts(b *strings.Builder, d drills.Drill, m *drills.Manifest) {
	section(b, "Artefacts")
	switch {
	case m == nil && d.BackupID == "":
		b.WriteString("The drill used no backup.\n")
		return
	case m == nil:
		fmt.Fprintf(b, "The manifest of backup %s could not be read for this report.\n", inline(d.BackupID))
		return
	}
	var rows int64
	for _, n := range m.Postgres.Tables {
		rows += n
	}
	fmt.Fprintf(b, "Backup %s, taken %s UTC, restores to the snapshot of %s UTC.\n", inline(m.ID), stamp(m.CreatedAt), stamp(m.SnapshotTime))
	fmt.Fprintf(b, "Postgres %s (database %s): schema version %d, WAL LSN %s, %d tables, %d rows. Redis %s: %d keys.\n\n",
		inline(orDash(m.Postgres.ServerVersion)), inline(orDash(m.Postgres.Database)), m.Postgres.SchemaVersion,
		inline(orDash(m.Postgres.WALLSN)), len(m.Postgres.Tables), rows, inline(orDash(m.Redis.ServerVersion)), m.Redis.Keys)
	out := make([][]string, len(m.Artefacts))
	for i, a := range m.Artefacts {
		out[i] = []string{a.Name, a.Kind, Size(a.Size), "`" + a.SHA256 + "`"}
	}
	table(b, []string{"Artefact", "Kind", "Size", "SHA-256"}, out)
}

// deviations are the drill's reasons: those the workflow recorded, or the
// verdict's while it runs.
func deviations(d drills.Drill) []string {
	if len(d.Reasons) > 0 || d.Verdict == drills.Met {
		return d.Reasons
	}
	_, reasons := verdict.Judge(d.Status, d.Objectives, d.Measurements, d.Timeline)
	return reasons
}

// actions are the follow-ups: one per failed step and per missed
// objective, and one for an aborted drill.
func actions(d drills.Drill) []string {
	var out []string
	if d.Status == drills.Aborted {
		out = append(out, "Write down why the drill was aborted, and run it again to the end.")
	}
	for _, s := range d.Timeline {
		if s.Status == drills.StepFailed {
			out = append(out, stepAction(s))
		}
	}
	for _, c := range verdict.Checks(d.Objectives, d.Measurements) {
		if a := objectiveAction(c); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func stepAction(s drills.Step) string {
	why := ""
	if s.Detail != "" {
		why = " (" + s.Detail + ")"
	}
	switch s.Name {
	case drills.BackupStep:
		return "Fix the backup" + why + ": until one succeeds, the newest good backup ages and the RPO of a real disaster grows."
	case drills.PruneStep:
		return "Fix pruning" + why + " before the backup store fills up."
	case drills.VerifyStep:
		return "Find why the backup failed verification" + why + ": check the store, take a fresh backup and verify it."
	case drills.RestoreStep:
		return "Make the restore succeed" + why + ": a backup that cannot be restored is not a backup."
	case drills.CheckStep:
		return "Find why the restored copy differs from its manifest" + why + "."
	case drills.CleanupStep:
		return "Remove the scratch targets the drill left behind by hand, and fix the cleanup" + why + "."
	}
	return "Find why step " + s.Name + " failed" + why + ", fix it, and run the drill again."
}

func objectiveAction(c verdict.Check) string {
	if !c.Judged() || c.Held() {
		return ""
	}
	if c.Measured == nil {
		return fmt.Sprintf("Make the drill measure %s: it ended before it could (objective %s s).", c.Name, verdict.Format(*c.Target))
	}
	how := "restore in parallel (pg_restore --jobs), keep dumps small, or restore onto a target provisioned in advance"
	if c.Name == "RPO" {
		how = "take backups more often (the backup schedule) or archive WAL continuously"
	}
	return fmt.Sprintf("Bring %s from %s s to at most %s s: %s.", c.Name, verdict.Format(*c.Measured), verdict.Format(*c.Target), how)
}

func run(b *strings.Builder, d drills.Drill, runURL string) {
	section(b, "The run")
	text := fmt.Sprintf("Workflow %s, run %s", inline(d.WorkflowID), inline(d.RunID))
	if runURL == "" {
		b.WriteString(text + ".\n")
		return
	}
	fmt.Fprintf(b, "[%s](<%s>) in the Temporal UI: its history is the drill's evidence.\n", text, strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20").Replace(runURL))
}

// Size is a byte count for people: exact below a KiB, else rounded with
// the exact count beside it.
func Size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n)/1024, 0
	for v >= 1024 && u < len(units)-1 {
		v, u = v/1024, u+1
	}
	return fmt.Sprintf("%.1f %s (%d B)", v, units[u], n)
}

func table(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(escapeAll(header), " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(escapeAll(r), " | ") + " |\n")
	}
}

func bullets(b *strings.Builder, items []string, none string) {
	if len(items) == 0 {
		b.WriteString(none + "\n")
		return
	}
	for _, it := range items {
		b.WriteString("- " + inline(it) + "\n")
	}
}

// escapeAll makes each value safe in a table cell: one line, no bare '|'.
func escapeAll(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.ReplaceAll(inline(c), "|", `\|`)
	}
	return out
}

// inline keeps a value on one line, so recorded text cannot start a
// heading or a list of its own.
func inline(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func when(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return stamp(*t) + " UTC"
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// charts links the load experiment's charts, one per endpoint class with
// load data; drills without any get no section.
func charts(b *strings.Builder, d drills.Drill) {
	series := experiment.FromMeasurements(d.Measurements)
	if len(series) == 0 {
		return
	}
	section(b, "Charts")
	b.WriteString("Latency percentiles and error rate against offered rate, the p99 bound and the knee marked (SVG):\n\n")
	for _, s := range series {
		fmt.Fprintf(b, "- [%s](/v1/drills/%s/charts/%s)\n", s.Class, url.PathEscape(d.ID), s.Class)
	}
}
