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

// startAPIProcess runs "platform api" on dbURL and redisURL with the
// stack's Redis prefix, Temporal and task queues, rate limits out of the
// way, and returns its base URL and its /metrics URL. The process is
// killed (by its pid) in t.Cleanup; its log is shown if the test failed.
func startAPIProcess(t *testing.T, s *stack, dbURL, redisURL string) (base, metrics string) {
	t.Helper()
	bin, err := buildPlatform()
	if err != nil {
		t.Fatal(err)
	}
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(),
		"PLATFORM_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"PLATFORM_OPS_ADDR=127.0.0.1:"+strconv.Itoa(ops),
		"PLATFORM_DATABASE_URL="+dbURL,
		"PLATFORM_REDIS_URL="+redisURL,
		"PLATFORM_REDIS_PREFIX="+string(s.Keys),
		"PLATFORM_TEMPORAL_ADDRESS="+s.cfg.TemporalAddress,
		"PLATFORM_TASK_QUEUE="+s.cfg.TaskQueue,
		"PLATFORM_CONTROL_TASK_QUEUE="+s.cfg.ControlTaskQueue,
		"PLATFORM_LOG_LEVEL=error",
		"PLATFORM_RATE_LIMIT_WRITE=1000000/60s",
		"PLATFORM_RATE_LIMIT_READ=1000000/60s",
		"PLATFORM_RATE_LIMIT_ANON=1000000/60s",
	)
	logf, err := os.Create(filepath.Join(t.TempDir(), "api.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("api log:\n%s", out)
		}
	})
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 30*time.Second, "the api process to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base, "http://127.0.0.1:" + strconv.Itoa(ops) + "/metrics"
}
