// Package release_test checks that a release is the same bytes wherever it
// is built: `make release-binary` runs in two separate clones of the
// current commit, the first with the caller's Go build cache and the second
// with an empty one (so it compiles the standard library, every dependency
// and the platform itself again rather than reusing the first build's
// objects), and the two binaries must have the same sha256.
package release_test

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// clone checks out commit from the repository at gitDir into a new
// directory; --shared borrows the objects instead of copying them.
func clone(t *testing.T, gitDir, commit string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	run(t, ".", nil, "git", "clone", "--quiet", "--shared", "--no-checkout", gitDir, dir)
	run(t, dir, nil, "git", "checkout", "--quiet", "--detach", commit)
	return dir
}

// build runs the Makefile's release build in src and returns the binary.
func build(t *testing.T, src string, env ...string) (path string, sum string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "release")
	run(t, src, env, "make", "--no-print-directory", "release-binary", "RELEASE_DIR="+out)
	path = filepath.Join(out, "platform")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	return path, hex.EncodeToString(h[:])
}

func TestReleaseBinaryIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the platform twice, once with an empty build cache")
	}
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if err := exec.Command("git", "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout: nothing to clone")
	}
	gitDir, err := filepath.Abs(run(t, ".", nil, "git", "rev-parse", "--git-common-dir"))
	if err != nil {
		t.Fatal(err)
	}
	commit := run(t, ".", nil, "git", "rev-parse", "HEAD")

	srcA, srcB := clone(t, gitDir, commit), clone(t, gitDir, commit)
	binA, sumA := build(t, srcA)
	binB, sumB := build(t, srcB, "GOCACHE="+t.TempDir())
	t.Logf("clone A (shared build cache): %s\nclone B (empty build cache):  %s", sumA, sumB)
	if sumA != sumB {
		t.Errorf("two builds of %s differ: %s and %s", commit, sumA, sumB)
	}

	checkStamp(t, binA, commit)
	data, err := os.ReadFile(binA)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{srcA, srcB} {
		if bytes.Contains(data, []byte(dir)) {
			t.Errorf("the binary contains the build path %s (is -trimpath missing?)", dir)
		}
	}
	if id := run(t, ".", nil, "go", "tool", "buildid", binB); id != "" {
		t.Errorf("build id = %q, want none (-ldflags=-buildid=)", id)
	}
}

// checkStamp reads what `go version -m` shows: the commit, a clean tree,
// and the release flags.
func checkStamp(t *testing.T, bin, commit string) {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"vcs.revision": commit,
		"vcs.modified": "false",
		"-trimpath":    "true",
		"CGO_ENABLED":  "0",
		"-ldflags":     "-buildid=",
	}
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("build setting %s = %q, want %q (go version -m)", k, got[k], v)
		}
	}
	if info.Path != "github.com/acme/platform/cmd/platform" {
		t.Errorf("main package %q", info.Path)
	}
}
