package tests

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	drillacts "github.com/acme/platform/activities/drill"
	"github.com/acme/platform/internal/testenv"
)

// drillJSON is the part of a drill the tests read.
type drillJSON struct {
	ID           string             `json:"id"`
	Scenario     string             `json:"scenario"`
	Status       string             `json:"status"`
	Verdict      *string            `json:"verdict"`
	Reasons      []string           `json:"reasons"`
	Measurements map[string]float64 `json:"measurements"`
	Timeline     []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"timeline"`
	BackupID  *string `json:"backup_id"`
	Principal string  `json:"principal"`
}

func (d drillJSON) step(name string) string {
	status := ""
	for _, s := range d.Timeline {
		if s.Name == name {
			status = s.Status
		}
	}
	return status
}

func (s *stack) startDrill(t *testing.T, body any, auth ...string) drillJSON {
	t.Helper()
	r := s.do(http.MethodPost, "/v1/drills", body, auth...)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/drills = %d %s", r.Status, r.Body)
	}
	var d drillJSON
	r.JSON(t, &d)
	return d
}

// waitDrill polls the drill until it has ended.
func (s *stack) waitDrill(t *testing.T, id string, timeout time.Duration, auth ...string) drillJSON {
	t.Helper()
	var d drillJSON
	eventually(t, timeout, "drill "+id+" to end", func() bool {
		d = drillJSON{}
		r := s.do(http.MethodGet, "/v1/drills/"+id, nil, auth...)
		if r.Status != http.StatusOK {
			t.Fatalf("GET drill = %d %s", r.Status, r.Body)
		}
		r.JSON(t, &d)
		return d.Status == "succeeded" || d.Status == "failed" || d.Status == "aborted"
	})
	return d
}

// noScratchLeft checks that a restore drill left no scratch database and no
// scratch redis-server directory behind.
func (s *stack) noScratchLeft(t *testing.T, drillID string) {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`,
		drillacts.ScratchDatabase(drillID)).Scan(&n); err != nil || n != 0 {
		t.Errorf("scratch database left behind: %d (%v)", n, err)
	}
	entries, err := os.ReadDir(s.cfg.DrillScratchDir)
	if err != nil || len(entries) != 0 {
		t.Errorf("scratch directory holds %v (%v)", entries, err)
	}
}

// TestDrills_BackupThenRestoreVerifyIsMet takes a real backup of the test's
// database and Redis, restores it into scratch targets, checks the copy,
// and judges RTO and RPO against objectives; the report and the backup's
// manifest show the evidence.
func TestDrills_BackupThenRestoreVerifyIsMet(t *testing.T) {
	s := newStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	if err := s.Redis.Set(context.Background(), string(s.Keys)+"drill-probe", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	b := s.waitDrill(t, s.startDrill(t, map[string]any{"scenario": "backup"}, ops...).ID, 90*time.Second, ops...)
	if b.Status != "succeeded" || b.BackupID == nil || b.Measurements["total_bytes"] <= 0 || b.Measurements["postgres_bytes"] <= 0 {
		t.Fatalf("backup drill = %+v", b)
	}
	var m struct {
		ID        string `json:"id"`
		Artefacts []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"artefacts"`
		Postgres struct {
			Tables map[string]int64 `json:"tables"`
		} `json:"postgres"`
	}
	s.do(http.MethodGet, "/v1/backups/"+*b.BackupID, nil, ops...).JSON(t, &m)
	if m.ID != *b.BackupID || len(m.Artefacts) != 3 || m.Postgres.Tables["api_keys"] < 1 {
		t.Fatalf("manifest = %+v", m)
	}
	var list struct{ Data []struct{ ID string } }
	s.do(http.MethodGet, "/v1/backups", nil, ops...).JSON(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != m.ID {
		t.Errorf("backups = %+v", list)
	}

	r := s.startDrill(t, map[string]any{"scenario": "restore_verify",
		"objectives": map[string]any{"rto_seconds": 600, "rpo_seconds": 3600},
		"params":     map[string]any{"backup_id": m.ID}}, ops...)
	r = s.waitDrill(t, r.ID, 120*time.Second, ops...)
	if r.Status != "succeeded" || r.Verdict == nil || *r.Verdict != "met" {
		t.Fatalf("restore drill = %+v", r)
	}
	if _, ok := r.Measurements["rto_seconds"]; !ok || r.Measurements["rpo_seconds"] <= 0 || r.step("cleanup") != "succeeded" {
		t.Errorf("measurements %v, timeline %+v", r.Measurements, r.Timeline)
	}
	s.noScratchLeft(t, r.ID)

	rep := s.do(http.MethodGet, "/v1/drills/"+r.ID+"/report", nil, ops...)
	body := string(rep.Body)
	if rep.Status != 200 || !strings.HasPrefix(rep.Header.Get("Content-Type"), "text/markdown") ||
		!strings.Contains(body, m.ID) || !strings.Contains(body, m.Artefacts[0].SHA256) || !strings.Contains(body, "RTO") {
		t.Errorf("report %d %q:\n%s", rep.Status, rep.Header.Get("Content-Type"), body)
	}
}

// TestDrills_CorruptBackupFailsAtTheChecksum flips one byte of the dump in
// the store: restore_verify ends failed, missed, at the verify step.
func TestDrills_CorruptBackupFailsAtTheChecksum(t *testing.T) {
	s := newStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	b := s.waitDrill(t, s.startDrill(t, map[string]any{"scenario": "backup"}, ops...).ID, 90*time.Second, ops...)
	if b.Status != "succeeded" || b.BackupID == nil {
		t.Fatalf("backup drill = %+v", b)
	}
	dump := filepath.Join(strings.TrimPrefix(s.cfg.BackupURL, "file://"), *b.BackupID, "postgres.dump")
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(dump, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.startDrill(t, map[string]any{"scenario": "restore_verify", "params": map[string]any{"backup_id": *b.BackupID}}, ops...)
	r = s.waitDrill(t, r.ID, 90*time.Second, ops...)
	if r.Status != "failed" || r.Verdict == nil || *r.Verdict != "missed" || r.step("verify_backup") != "failed" ||
		r.step("restore") != "" {
		t.Fatalf("drill = %+v", r)
	}
	s.noScratchLeft(t, r.ID)
}

// TestDrills_AbortedDrillLeavesNoScratchBehind aborts a restore once it has
// begun restoring: the drill ends aborted and its scratch database and
// redis-server are gone.
func TestDrills_AbortedDrillLeavesNoScratchBehind(t *testing.T) {
	s := newStack(t)
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	b := s.waitDrill(t, s.startDrill(t, map[string]any{"scenario": "backup"}, ops...).ID, 90*time.Second, ops...)
	if b.Status != "succeeded" {
		t.Fatalf("backup drill = %+v", b)
	}
	r := s.startDrill(t, map[string]any{"scenario": "restore_verify"}, ops...)
	eventually(t, 60*time.Second, "the restore step to begin", func() bool {
		var d drillJSON
		s.do(http.MethodGet, "/v1/drills/"+r.ID, nil, ops...).JSON(t, &d)
		return d.step("restore") != ""
	})
	if a := s.do(http.MethodPost, "/v1/drills/"+r.ID+"/abort", map[string]any{"reason": "test"}, ops...); a.Status != 202 {
		t.Fatalf("abort = %d %s", a.Status, a.Body)
	}
	r = s.waitDrill(t, r.ID, 60*time.Second, ops...)
	if r.Status != "aborted" || r.step("cleanup") != "succeeded" {
		t.Fatalf("drill = %+v", r)
	}
	s.noScratchLeft(t, r.ID)
	if a := s.do(http.MethodPost, "/v1/drills/"+r.ID+"/abort", nil, ops...); a.Status != 409 {
		t.Errorf("abort of an ended drill = %d, want 409", a.Status)
	}
}

// TestDrills_StartedFromTheTemporalCLIShowInTheAPI starts platform.drill as
// an operator would from the Temporal UI or CLI, under a workflow id of its
// own choosing, and finds it in GET /v1/drills under that id.
func TestDrills_StartedFromTheTemporalCLIShowInTheAPI(t *testing.T) {
	s := newStack(t)
	admin := bearer(s.key("ops", "admin"))
	id := "ui-drill-" + testenv.Suffix()
	cli, _ := filepath.Abs("../bin/temporal")
	if p := os.Getenv("PLATFORM_TEMPORAL_CLI"); p != "" {
		cli = p
	}
	out, err := exec.Command(cli, "workflow", "start", "--address", s.cfg.TemporalAddress,
		"--task-queue", s.cfg.ControlTaskQueue, "--type", "platform.drill", "--workflow-id", id,
		"--input", `{"scenario": "backup"}`).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow start: %v\n%s", err, out)
	}
	d := s.waitDrill(t, id, 90*time.Second, admin...)
	if d.ID != id || d.Status != "succeeded" || d.Principal != "system" {
		t.Fatalf("drill = %+v", d)
	}
	var list struct{ Data []drillJSON }
	s.do(http.MethodGet, "/v1/drills?scenario=backup", nil, admin...).JSON(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != id {
		t.Errorf("list = %+v", list.Data)
	}
	// A tenant's key does not see the platform's own drill.
	tenant := bearer(s.key("acme", "drills:read"))
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+id, nil, tenant...), 404, "not_found")
}

// TestDrills_Contract covers scopes, tenancy, bad and oversized input, and
// replays under one Idempotency-Key.
func TestDrills_Contract(t *testing.T) {
	s := newAPIStack(t) // no worker: nothing here needs a drill to run
	acme := bearer(s.key("acme", "drills:run", "drills:read"))
	reader := bearer(s.key("acme", "drills:read"))
	other := bearer(s.key("globex", "drills:run", "drills:read"))

	checkProblem(t, s.do(http.MethodPost, "/v1/drills", map[string]any{"scenario": "backup"}, reader...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills", nil, bearer(s.key("acme", "jobs:read"))...), 403, "insufficient_scope")
	checkProblem(t, s.do(http.MethodGet, "/v1/backups", nil, bearer(s.key("acme", "jobs:read"))...), 403, "insufficient_scope")

	for _, c := range []struct {
		body    string
		pointer string
	}{
		{`{"scenario":"meteor"}`, "#/scenario"},
		{`{"scenario":"restore_verify","objectives":{"rto_seconds":-1}}`, "#/objectives/rto_seconds"},
		{`{"scenario":"restore_verify","params":{"backup":"bkp_x"}}`, "#/params/backup"},
		{`{"scenario":"restore_verify","params":{"backup_id":"../../etc"}}`, "#/params/backup_id"},
		{`{"scenario":"backup","objectivs":{}}`, "#/objectivs"},
		{`{"scenario":"failover","params":{"driver":"patroni"}}`, "#/params/driver"}, // no PLATFORM_DRILL_PATRONI_URL
		{`{"scenario":"failover","params":{"driver":"patroni","patroni_url":"http://10.0.0.9:8008"}}`, "#/params/patroni_url"},
	} {
		p := checkProblem(t, s.do(http.MethodPost, "/v1/drills", c.body, acme...), 400, "validation_failed")
		if got := problemPointers(t, s.do(http.MethodPost, "/v1/drills", c.body, acme...)); len(got) == 0 || got[0] != c.pointer {
			t.Errorf("%s: pointers %v (%v), want %s", c.body, got, p["errors"], c.pointer)
		}
	}
	huge := `{"scenario":"backup","params":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
	checkProblem(t, s.do(http.MethodPost, "/v1/drills", huge, acme...), 413, "payload_too_large")
	var none struct{ Data []drillJSON }
	s.do(http.MethodGet, "/v1/drills", nil, acme...).JSON(t, &none)
	if len(none.Data) != 0 {
		t.Fatalf("bad input started drills: %+v", none.Data)
	}

	key := with(acme, []string{"Idempotency-Key", "drill-1"})
	first := s.do(http.MethodPost, "/v1/drills", map[string]any{"scenario": "backup"}, key...)
	again := s.do(http.MethodPost, "/v1/drills", map[string]any{"scenario": "backup"}, key...)
	var a, b drillJSON
	first.JSON(t, &a)
	again.JSON(t, &b)
	if first.Status != 201 || again.Status != 201 || a.ID != b.ID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s / %d %s", first.Status, a.ID, again.Status, b.ID)
	}
	checkProblem(t, s.do(http.MethodPost, "/v1/drills", map[string]any{"scenario": "restore_verify"}, key...), 422, "idempotency_key_reused")

	missing := checkProblem(t, s.do(http.MethodGet, "/v1/drills/drl_missing", nil, other...), 404, "not_found")
	hidden := checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+a.ID, nil, other...), 404, "not_found")
	if strings.ReplaceAll(hidden["detail"].(string), a.ID, "X") != strings.ReplaceAll(missing["detail"].(string), "drl_missing", "X") {
		t.Errorf("another principal's drill answers %q, a missing one %q", hidden["detail"], missing["detail"])
	}
	checkProblem(t, s.do(http.MethodPost, "/v1/drills/"+a.ID+"/abort", nil, other...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+a.ID+"/report", nil, other...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/backups/bkp_nothere", nil, acme...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills?status=done", nil, acme...), 400, "validation_failed")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills?status=queued&status=running", nil, acme...), 400, "validation_failed")
	checkProblem(t, s.do(http.MethodGet, "/v1/backups?sort=size", nil, acme...), 400, "validation_failed")
	checkProblem(t, s.do(http.MethodGet, "/v1/backups/..%2F..%2Fetc", nil, acme...), 404, "not_found")

	// A bad abort is a 400 that changes nothing; so is an unknown field.
	for _, body := range []string{`{"reason":"` + strings.Repeat("x", 501) + `"}`, `{"reasn":"typo"}`} {
		checkProblem(t, s.do(http.MethodPost, "/v1/drills/"+a.ID+"/abort", body, acme...), 400, "validation_failed")
	}
	var still drillJSON
	s.do(http.MethodGet, "/v1/drills/"+a.ID, nil, acme...).JSON(t, &still)
	if still.Status != "queued" {
		t.Errorf("a refused abort changed the drill: %+v", still)
	}
}

// TestDrills_CLIRunWaitPrintsTheReport runs `platform drill run backup
// --wait` against the test's Temporal server and worker: it prints the
// Markdown report of a met drill and exits 0; a scenario the platform does
// not know fails with one clear line before anything starts.
func TestDrills_CLIRunWaitPrintsTheReport(t *testing.T) {
	s := newStack(t)
	env := []string{"PLATFORM_TEMPORAL_ADDRESS=" + s.cfg.TemporalAddress, "PLATFORM_CONTROL_TASK_QUEUE=" + s.cfg.ControlTaskQueue,
		"PLATFORM_TASK_QUEUE=" + s.cfg.TaskQueue, "PLATFORM_BACKUP_URL=" + s.cfg.BackupURL}
	out, errOut, err := runPlatform(t, env, "drill", "run", "backup", "--wait")
	if err != nil {
		t.Fatalf("drill run: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "# ") || !strings.Contains(out, "backup") || !strings.Contains(out, "sha256") && !strings.Contains(out, "SHA-256") {
		t.Errorf("report:\n%s", out)
	}
	_, errOut, err = runPlatform(t, env, "drill", "run", "meteor")
	if err == nil || !strings.Contains(errOut, "scenario") {
		t.Errorf("unknown scenario: %v %q", err, errOut)
	}
}
