package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/acme/platform/slo"
)

// repoRoot is the module root, one level above tests/.
const repoRoot = ".."

// ruleFiles are the Prometheus rule files the platform ships.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("rule files: %v %v", files, err)
	}
	return files
}

func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	return bin
}

// TestPromtool_RulesAndTests: every rule file passes promtool check rules,
// and the unit tests in deploy/prometheus/tests (each alert firing on a
// series that should fire it, quiet on one that should not) pass.
func TestPromtool_RulesAndTests(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, append([]string{"check", "rules"}, ruleFiles(t)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/tests/*.yaml"))
	if len(tests) == 0 {
		t.Fatal("no promtool tests in deploy/prometheus/tests")
	}
	out, err = exec.Command(bin, append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestSLORules_MatchSpec regenerates the SLO rules from deploy/slo/slos.yaml
// with tools/slogen (its own module) and fails when the committed file
// differs: run `make slo-rules` after changing the spec.
func TestSLORules_MatchSpec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tools/slogen")
	}
	spec, _ := filepath.Abs(filepath.Join(repoRoot, "deploy/slo/slos.yaml"))
	out := filepath.Join(t.TempDir(), "slo-rules.yaml")
	cmd := exec.Command("go", "run", ".", "-in", spec, "-out", out)
	cmd.Dir = filepath.Join(repoRoot, "tools/slogen")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run tools/slogen: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/slo-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("deploy/prometheus/slo-rules.yaml is not what deploy/slo/slos.yaml generates: run make slo-rules")
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// runbookPrefix is where every runbook_url points: a file of docs/runbooks.
const runbookPrefix = "https://github.com/acme/platform/blob/main/"

// TestAlerts_RunbooksExist: every alert of every rule file has a runbook_url
// naming a file under docs/runbooks/ that exists, and a heading there for
// its anchor.
func TestAlerts_RunbooksExist(t *testing.T) {
	alerts := 0
	for _, file := range ruleFiles(t) {
		var rf ruleFile
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts++
				if err := checkRunbook(r.Annotations["runbook_url"]); err != nil {
					t.Errorf("%s: alert %s: %v", filepath.Base(file), r.Alert, err)
				}
			}
		}
	}
	if alerts < 20 {
		t.Errorf("found %d alerts, want the 16 SLO alerts and the platform's others", alerts)
	}
}

func checkRunbook(url string) error {
	path, ok := strings.CutPrefix(url, runbookPrefix)
	if !ok || !strings.HasPrefix(path, "docs/runbooks/") {
		return fmt.Errorf("runbook_url %q is not %sdocs/runbooks/…", url, runbookPrefix)
	}
	path, anchor, _ := strings.Cut(path, "#")
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		return fmt.Errorf("runbook %s: %w", path, err)
	}
	if anchor == "" {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") && slug(title) == anchor {
			return nil
		}
	}
	return fmt.Errorf("runbook %s has no heading for #%s", path, anchor)
}

var notSlug = regexp.MustCompile(`[^a-z0-9 _-]`)

// slug is GitHub's anchor for a heading: lower case, punctuation dropped,
// spaces as hyphens.
func slug(title string) string {
	s := notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(title)), "")
	return strings.ReplaceAll(s, " ", "-")
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Alert: no good backup in 26 hours":                        "alert-no-good-backup-in-26-hours",
		"reads-availability":                                       "reads-availability",
		"Failover drill, rebuilding the old primary, failing back": "failover-drill-rebuilding-the-old-primary-failing-back",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSLOSpec_MatchesObjectives: deploy/slo/slos.yaml (what Prometheus
// alerts on) and slo.Objectives (what GET /v1/slos reports) declare the same
// SLOs: names, classes, objectives and latency thresholds.
func TestSLOSpec_MatchesObjectives(t *testing.T) {
	var spec struct {
		SLOs []struct {
			Name      string            `yaml:"name"`
			Objective float64           `yaml:"objective"`
			Labels    map[string]string `yaml:"labels"`
			SLI       struct {
				Events struct {
					Error string `yaml:"error_query"`
					Total string `yaml:"total_query"`
				} `yaml:"events"`
			} `yaml:"sli"`
		} `yaml:"slos"`
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy/slo/slos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	le := regexp.MustCompile(`le="([0-9.]+)"`)
	var got, want []string
	for _, s := range spec.SLOs {
		threshold := 0.0
		if m := le.FindStringSubmatch(s.SLI.Events.Error); m != nil {
			threshold, _ = strconv.ParseFloat(m[1], 64)
		}
		class := s.Labels["class"]
		if !strings.Contains(s.SLI.Events.Error, `class="`+class+`"`) || !strings.Contains(s.SLI.Events.Total, `class="`+class+`"`) {
			t.Errorf("%s: queries do not select class %q", s.Name, class)
		}
		got = append(got, fmt.Sprintf("%s %s %s %.4f %g", s.Name, class, s.Labels["sli"], s.Objective/100, threshold))
	}
	for _, o := range slo.Objectives {
		want = append(want, fmt.Sprintf("%s %s %s %.4f %g", o.Name, o.Class, o.SLI, o.Target, o.Threshold))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slos.yaml:\n%s\nslo.Objectives:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
