package tests

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/acme/platform/internal/devserver"
)

// platformProcess is a "platform" subcommand a test runs.
type platformProcess struct {
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
}

// startPlatform starts the platform binary with args, in this process's
// environment plus env, its output in a file of the test's that is shown if
// the test failed. It is killed in t.Cleanup: after the cleanups registered
// later, before those registered earlier.
func startPlatform(t *testing.T, env []string, args ...string) *platformProcess {
	t.Helper()
	bin, err := buildPlatform()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(t.TempDir(), args[0]+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &platformProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("platform %s log:\n%s", args[0], out)
		}
	})
	return p
}

// waitReady waits until base/readyz answers 200.
func waitReady(t *testing.T, base, what string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, what+" to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startAPIProcess runs "platform api" on dbURL and redisURL with the
// stack's Redis prefix, Temporal and task queues, rate limits out of the
// way, and returns its base URL and its /metrics URL. The process is
// killed in t.Cleanup; its log is shown if the test failed.
func startAPIProcess(t *testing.T, s *stack, dbURL, redisURL string) (base, metrics string) {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	startPlatform(t, []string{
		"PLATFORM_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"PLATFORM_OPS_ADDR=127.0.0.1:" + strconv.Itoa(ops),
		"PLATFORM_DATABASE_URL=" + dbURL,
		"PLATFORM_REDIS_URL=" + redisURL,
		"PLATFORM_REDIS_PREFIX=" + string(s.Keys),
		"PLATFORM_TEMPORAL_ADDRESS=" + s.cfg.TemporalAddress,
		"PLATFORM_TASK_QUEUE=" + s.cfg.TaskQueue,
		"PLATFORM_CONTROL_TASK_QUEUE=" + s.cfg.ControlTaskQueue,
		"PLATFORM_LOG_LEVEL=error",
		"PLATFORM_RATE_LIMIT_WRITE=1000000/60s",
		"PLATFORM_RATE_LIMIT_READ=1000000/60s",
		"PLATFORM_RATE_LIMIT_ANON=1000000/60s",
	}, "api")
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, base, "the api process", 30*time.Second)
	return base, "http://127.0.0.1:" + strconv.Itoa(ops) + "/metrics"
}
