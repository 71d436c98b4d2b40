package tests

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func runPlatform(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, buildErr := buildPlatform()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestCLI_KeysCreatePrintsAWorkingSecret is the CLI twin of POST /v1/keys.
func TestCLI_KeysCreatePrintsAWorkingSecret(t *testing.T) {
	s := newStack(t)
	out, errOut, err := runPlatform(t, []string{"PLATFORM_DATABASE_URL=" + s.DBURL},
		"keys", "create", "--principal", "acme", "--name", "ci", "--scopes", "keys:admin,jobs:read")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "plk_") || strings.Contains(secret, "\n") {
		t.Fatalf("stdout = %q, want only the secret", out)
	}
	res := s.do("GET", "/v1/keys", nil, bearer(secret)...)
	var page struct {
		Data []struct{ ID, Principal, Name string }
	}
	res.JSON(t, &page)
	if res.Status != 200 || len(page.Data) != 1 || page.Data[0].Principal != "acme" {
		t.Fatalf("GET /v1/keys with the CLI's key = %d %s", res.Status, res.Body)
	}
	if _, errOut, err := runPlatform(t, []string{"PLATFORM_DATABASE_URL=" + s.DBURL}, "keys", "revoke", page.Data[0].ID); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, errOut)
	}
	// Another process revoked it: this API sees it within its cache TTL.
	eventually(t, 5*time.Second, "the revoked key to stop working", func() bool {
		return s.do("GET", "/v1/keys", nil, bearer(secret)...).Status == 401
	})
}

func TestCLI_InvalidInputFailsWithOneClearLine(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad variable", []string{"PLATFORM_DRAIN_TIMEOUT=soon"}, []string{"api"}, "PLATFORM_DRAIN_TIMEOUT"},
		{"bad flag", nil, []string{"worker", "--temporal-address", "nohost"}, "--temporal-address"},
		{"bad scope", nil, []string{"keys", "create", "--principal", "acme", "--name", "x", "--scopes", "jobs:everything"}, "--scopes"},
		{"bad principal", nil, []string{"keys", "create", "--principal", "Not Valid", "--name", "x", "--scopes", "jobs:read"}, "--principal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, err := runPlatform(t, c.env, c.args...)
			if err == nil {
				t.Fatal("exit status 0")
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr = %q, want one line naming %s", errOut, c.want)
			}
		})
	}
}
