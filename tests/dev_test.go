package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme/platform/internal/devserver"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/scaling/local"
)

// devProcess is a running "platform dev" of a test.
type devProcess struct {
	*platformProcess
	api *stack // requests to its API (only t and URL are set)
	key string // its admin key
}

// startDev runs "platform dev" with its own dev and scaling directories,
// database, Redis prefix and task queues, on the tests' Temporal server
// (which it finds answering, so it starts none). Every worker child it left
// is killed in t.Cleanup, by the pids of the supervisor's status file.
func startDev(t *testing.T, devDir, dbURL, prefix, queue, control string) *devProcess {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	t.Cleanup(func() { // runs after startPlatform's kill of platform dev itself
		var st local.Status
		if b, err := os.ReadFile(filepath.Join(devDir, "scaling", "worker.status.json")); err == nil && json.Unmarshal(b, &st) == nil {
			for _, c := range st.Children {
				_ = syscall.Kill(c.PID, syscall.SIGKILL)
			}
		}
	})
	p := startPlatform(t, []string{
		"PLATFORM_DEV_DIR=" + devDir,
		"PLATFORM_SCALING_LOCAL_DIR=" + filepath.Join(devDir, "scaling"),
		"PLATFORM_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"PLATFORM_PUBLIC_BASE_URL=" + base,
		"PLATFORM_OPS_ADDR=127.0.0.1:0",
		"PLATFORM_DATABASE_URL=" + dbURL,
		"PLATFORM_REDIS_URL=" + testenv.RedisURL(),
		"PLATFORM_REDIS_PREFIX=" + prefix,
		"PLATFORM_TEMPORAL_ADDRESS=" + testenv.TemporalAddress(t),
		"PLATFORM_TASK_QUEUE=" + queue,
		"PLATFORM_CONTROL_TASK_QUEUE=" + control,
		"PLATFORM_DRILL_BACKUP_SCHEDULE=",
		"PLATFORM_DRILL_RESTORE_SCHEDULE=",
		"PLATFORM_DRAIN_TIMEOUT=10s",
		"PLATFORM_LOG_LEVEL=warn",
	}, "dev")
	waitReady(t, base, "platform dev's API", 60*time.Second)
	key, err := os.ReadFile(filepath.Join(devDir, "admin-key"))
	if err != nil {
		t.Fatal(err)
	}
	return &devProcess{platformProcess: p, api: &stack{t: t, URL: base}, key: strings.TrimSpace(string(key))}
}

// devWorkers is the desired and ready worker count the supervisor reports
// in dir: -1s until it has written its first status (the API can be ready
// before the supervisor's first tick).
func devWorkers(dir string) [2]int32 {
	d, r, err := local.Driver{Dir: dir}.Replicas(context.Background(), "worker")
	if err != nil {
		return [2]int32{-1, -1}
	}
	return [2]int32{d, r}
}

// stop sends Ctrl-C's signal and waits for platform dev to exit 0.
func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("platform dev exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("platform dev did not exit within 60s of SIGINT")
	}
}

// TestDev_SupervisesItsWorkersWithTheLocalDriver runs "platform dev": its
// worker is a supervised child process that runs workflows, a scaling action
// with the local driver really starts a second one, Ctrl-C drains and stops
// both, and the next start comes up with one worker again.
func TestDev_SupervisesItsWorkersWithTheLocalDriver(t *testing.T) {
	devDir := t.TempDir()
	dbURL := testenv.DatabaseURL(t)
	_, keys := testenv.Redis(t)
	queue, control := testenv.TaskQueue(t), testenv.TaskQueue(t)
	scalingDir := filepath.Join(devDir, "scaling")

	dev := startDev(t, devDir, dbURL, string(keys), queue, control)
	admin := bearer(dev.key)
	eventually(t, 60*time.Second, "one ready worker child", func() bool { return devWorkers(scalingDir) == [2]int32{1, 1} })
	var ping struct{ ID string }
	dev.api.do(http.MethodPost, "/v1/ping", map[string]string{"message": "dev"}, admin...).JSON(t, &ping)
	eventually(t, 30*time.Second, "the worker child to run the ping workflow", func() bool {
		return strings.Contains(string(dev.api.do(http.MethodGet, "/v1/ping/"+ping.ID, nil, admin...).Body), `"completed"`)
	})

	var a scalingActionJSON
	r := dev.api.do(http.MethodPost, "/v1/scaling/actions", map[string]any{"target": "worker", "replicas": 2, "reason": "dev test", "driver": "local"},
		append(admin, "Idempotency-Key", "dev-scale-up-"+testenv.Suffix())...)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/scaling/actions = %d %s", r.Status, r.Body)
	}
	r.JSON(t, &a)
	if a = dev.api.waitAction(t, a.ID, 90*time.Second, admin...); a.Status != "succeeded" {
		t.Fatalf("scale-up action = %+v", a)
	}
	var st local.Status
	if b, err := os.ReadFile(filepath.Join(scalingDir, "worker.status.json")); err != nil || json.Unmarshal(b, &st) != nil || st.Ready != 2 {
		t.Fatalf("worker status after the action = %+v (%v)", st, err)
	}

	dev.stop(t)
	for _, c := range st.Children {
		if syscall.Kill(c.PID, 0) == nil {
			t.Errorf("worker child %d (pid %d) still runs after platform dev exited", c.Index, c.PID)
		}
	}

	dev = startDev(t, devDir, dbURL, string(keys), queue, control)
	eventually(t, 60*time.Second, "one ready worker child after a restart", func() bool { return devWorkers(scalingDir) == [2]int32{1, 1} })
	dev.stop(t)
}
