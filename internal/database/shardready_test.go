package database

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// tenantTables reads the migrations and returns the tables that have a
// principal column: the tenant-scoped tables, whose shard key is the
// principal.
func tenantTables(t *testing.T) map[string]bool {
	t.Helper()
	create := regexp.MustCompile(`(?is)CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);`)
	alter := regexp.MustCompile(`(?i)ALTER TABLE (?:IF EXISTS )?(\w+)\s+ADD COLUMN (?:IF NOT EXISTS )?principal\b`)
	principalCol := regexp.MustCompile(`(?m)^\s*principal\s`)
	out := map[string]bool{}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "+goose Down")
		for _, m := range create.FindAllStringSubmatch(up, -1) {
			if principalCol.MatchString(m[2]) {
				out[strings.ToLower(m[1])] = true
			}
		}
		for _, m := range alter.FindAllStringSubmatch(up, -1) {
			out[strings.ToLower(m[1])] = true
		}
	}
	return out
}

// statement is one SQL string found in the code: the literal parts of a
// string expression, other operands as "?".
type statement struct {
	pos string
	sql string
}

// sqlStatements collects the SQL string expressions of every non-test Go
// file under root.
func sqlStatements(t *testing.T, root string) []statement {
	t.Helper()
	verb := regexp.MustCompile(`(?i)\b(SELECT|INSERT|UPDATE|DELETE)\b`)
	var out []statement
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "bin" || d.Name() == "tools" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			e, ok := n.(ast.Expr)
			if !ok {
				return true
			}
			s, ok := literalText(e)
			if !ok {
				return true
			}
			if verb.MatchString(s) {
				rel, _ := filepath.Rel(root, fset.Position(e.Pos()).Filename)
				out = append(out, statement{pos: rel + ":" + strconv.Itoa(fset.Position(e.Pos()).Line), sql: s})
			}
			return false // the whole concatenation is one statement
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// literalText is the text of a string literal or a + chain holding at least
// one; operands that are not literals read as "?".
func literalText(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		l, lok := literalText(e.X)
		r, rok := literalText(e.Y)
		if !lok && !rok {
			return "", false
		}
		if !lok {
			l = "?"
		}
		if !rok {
			r = "?"
		}
		return l + r, true
	case *ast.ParenExpr:
		return literalText(e.X)
	}
	return "", false
}

// crossTenant lists the statements on tenant tables that do not name the
// principal, each with why. Keep it short: a new entry needs a reason a
// sharded deployment can live with (see docs/data-plane.md).
var crossTenant = []struct{ file, contains, why string }{
	// Platform-wide sweeps and reports: on a sharded deployment they run on
	// every shard (Citus fans them out; app-level routing loops over shards).
	{"activities/retention/retention.go", "FROM jobs j WHERE j.type", "retention sweep: uploads no job still needs, all tenants"},
	{"activities/retention/retention.go", "FROM uploads u WHERE created_at < $1", "retention sweep of expired uploads, all tenants"},
	{"activities/retention/retention.go", "FROM usage_events WHERE at < $1", "retention sweep of old usage events, all tenants"},
	{"activities/job/usage.go", "FROM usage_hourly WHERE hour >= $1", "the daily roll-up counts every tenant's hours"},
	{"activities/drill/metrics.go", "FROM drills WHERE finished_at IS NOT NULL", "drill verdict gauges, platform-wide (drills are operators' records)"},
	{"activities/drill/metrics.go", "FROM drills WHERE scenario = 'backup'", "last backup age gauge, platform-wide"},
	{"activities/drill/sweep.go", "SELECT id FROM drills WHERE status = ANY($1)", "scratch sweep: which drills still own scratch, platform-wide"},
	{"api/slos/store.go", "SELECT max(hour) FROM usage_hourly WHERE hour >= $1", "SLO budgets: the newest rolled-up hour, the same for every tenant"},
	{"activities/drill/load_invariants.go", "SELECT id, status FROM jobs WHERE id = ANY($1)", "experiment invariant: the jobs the drill's own probe key created, by id"},
	{"activities/drill/restore_check.go", "FROM jobs ORDER BY created_at DESC LIMIT 5", "restore check reads a restored scratch copy, not a shard"},
	{"activities/drill/cacheloss.go", "UPDATE api_keys SET revoked_at = now() WHERE id = $1", "the drill's own probe key, created by the drill"},
	// Admin lists: the principal condition is added when the caller is a
	// tenant or an admin passes ?principal=; without it the list spans
	// tenants (Citus: a multi-shard query merged by created_at, id).
	{"api/jobs/store.go", "FROM jobs WHERE %s ORDER BY", "list: principal condition optional for admins"},
	{"api/drills/store.go", "FROM drills WHERE %s ORDER BY", "list: principal condition optional for admins"},
	{"api/keys/store.go", "FROM api_keys WHERE ? ORDER BY", "list: principal condition optional for admins"},
	{"api/usage/store.go", "FROM usage_hourly WHERE hour >= $1 AND hour < $2 AND ($4", "admin usage list across tenants (the per-principal query names it)"},
	// Global by design: authentication finds the principal from the key, and
	// a flag (global) has at most one active rollout whoever owns it.
	{"api/keys/store.go", "FROM api_keys WHERE hash = $1", "authentication: the principal is what the lookup finds"},
	{"api/rollouts/store.go", "FROM rollouts WHERE flag = $1", "one active rollout per flag, across tenants"},
	{"activities/rollout/rollout.go", "FROM rollouts WHERE flag = $1", "one active rollout per flag, across tenants"},
	// Lookups by a globally unique id whose owner the caller checks after
	// reading (the same 404 for another tenant's id). They route by id, not
	// by principal: a sharded deployment needs the id → shard map described
	// in docs/data-plane.md (or the principal passed down) for these.
	{"api/jobs/store.go", "FROM jobs WHERE id = $1", "GET /v1/jobs/{id}: owner checked by the handler"},
	{"api/drills/store.go", "FROM drills WHERE id = $1", "GET /v1/drills/{id}: owner checked by the handler"},
	{"api/keys/store.go", "FROM api_keys WHERE id = $1", "GET/DELETE /v1/keys/{id}: owner checked by the handler; revocation walks the key's tree, one tenant's"},
	{"api/keys/store.go", "UPDATE api_keys SET last_used_at", "after LookupKey by hash: the key row just read"},
	{"api/rollouts/store.go", "FROM rollouts WHERE id = $1", "GET /v1/rollouts/{id}: owner checked by the handler"},
	{"api/ping/ping.go", "FROM pings WHERE id = $1", "GET /v1/ping/{id}: owner checked by the handler"},
	{"api/uploads/store.go", "FROM uploads WHERE id = $1", "an upload named in a job: owner checked by the caller"},
	{"activities/job/uploads.go", "FROM uploads WHERE id = $1", "the job's upload: owner checked against the job's principal"},
	{"activities/job/jobs.go", "UPDATE jobs SET status = $2", "the job's own workflow updates its row by id"},
	{"activities/rollout/rollout.go", "UPDATE rollouts SET status = $2", "the rollout's own workflow updates its row by id"},
}

// TestShardReady_TenantTablesQueriedByPrincipal: every statement the code
// sends to a tenant-scoped table (one with a principal column) names the
// principal in a condition or an inserted column list, unless crossTenant
// lists it with a reason. A statement that only selects the principal
// column does not count.
func TestShardReady_TenantTablesQueriedByPrincipal(t *testing.T) {
	tables := tenantTables(t)
	for _, want := range []string{"jobs", "api_keys", "drills", "uploads", "usage_events", "usage_hourly"} {
		if !tables[want] {
			t.Fatalf("tenant tables %v miss %s: the migration parser broke", tables, want)
		}
	}
	ref := regexp.MustCompile(`(?i)\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)`)
	byPrincipal := regexp.MustCompile(`(?i)\bprincipal\s*(=|<>|IN\b)|INSERT INTO \w+(?:\s+AS\s+\w+)?\s*\([^)]*\bprincipal\b`)
	used := make([]bool, len(crossTenant))
	var bad []string
	for _, s := range sqlStatements(t, "../..") {
		sql := strings.Join(strings.Fields(s.sql), " ")
		tenant := ""
		for _, m := range ref.FindAllStringSubmatch(sql, -1) {
			if tables[strings.ToLower(m[1])] {
				tenant = m[1]
				break
			}
		}
		if tenant == "" || byPrincipal.MatchString(sql) {
			continue
		}
		allowed := false
		for i, a := range crossTenant {
			if strings.HasPrefix(s.pos, a.file+":") && strings.Contains(sql, a.contains) {
				used[i], allowed = true, true
			}
		}
		if !allowed {
			bad = append(bad, fmt.Sprintf("%s: %s without the principal: %.160s", s.pos, tenant, sql))
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	for i, a := range crossTenant {
		if !used[i] {
			t.Errorf("crossTenant entry %s %q matches no statement: remove it", a.file, a.contains)
		}
	}
}
