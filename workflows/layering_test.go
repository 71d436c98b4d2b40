// Package workflows_test guards the project's layering, which lives in
// docs/architecture.md: workflows import no database, Redis or HTTP code,
// and imports only point down the layers.
package workflows_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/acme/platform/"

// mayImport lists, for each top-level folder, the project's folders its
// packages may import. Imports point one way: cmd and tests may use
// anything, api and worker sit side by side over activities and workflows,
// which sit over the leaves (flags, jobs, drills, the scaling drivers in
// scaling/) and the shared plumbing (internal); deploy/ holds only tests of
// the manifests and imports none of the project.
var mayImport = map[string][]string{
	"internal":   {"internal"},
	"jobs":       {"internal", "jobs"},
	"drills":     {"internal", "drills"},
	"flags":      {"internal", "flags"},
	"slo":        {"slo"},
	"scaling":    {"internal", "scaling"},
	"deploy":     {},
	"workflows":  {"internal", "jobs", "drills", "flags", "scaling", "workflows"},
	"activities": {"internal", "jobs", "drills", "flags", "slo", "scaling", "workflows", "activities"},
	"api":        {"internal", "jobs", "drills", "flags", "slo", "scaling", "workflows", "api"},
	"worker":     {"internal", "jobs", "drills", "flags", "slo", "scaling", "workflows", "activities", "worker"},
}

// goList runs go list with a template and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var lines []string
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	return lines
}

func top(pkg string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(pkg, module), "/")
	return first
}

// TestWorkflowsImportNoDatabaseRedisOrHTTP checks the whole dependency
// closure of workflows/...: no pgx and no go-redis anywhere in it, and no
// package of the project in it imports net/http. (The Temporal SDK's gRPC
// transport links net/http itself, so the closure cannot be free of it;
// what matters is that no workflow code can reach it.)
func TestWorkflowsImportNoDatabaseRedisOrHTTP(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./workflows/...") {
		if strings.HasPrefix(dep, "github.com/jackc/pgx") || strings.HasPrefix(dep, "github.com/redis/go-redis") {
			t.Errorf("workflows/... depend on %s", dep)
		}
	}
	for _, line := range goList(t, "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./workflows/...") {
		fields := strings.Fields(line)
		if strings.HasPrefix(fields[0], module) && slices.Contains(fields[1:], "net/http") {
			t.Errorf("%s, in the closure of workflows/..., imports net/http", fields[0])
		}
	}
}

// TestImportsPointDownTheLayers checks every import between the project's
// packages against mayImport.
func TestImportsPointDownTheLayers(t *testing.T) {
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		from := top(fields[0])
		allowed, ruled := mayImport[from]
		if !ruled {
			continue // cmd and tests sit on top
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, module) && !slices.Contains(allowed, top(imp)) {
				t.Errorf("%s imports %s: %s/ may import only %v", fields[0], imp, from, allowed)
			}
		}
	}
}
