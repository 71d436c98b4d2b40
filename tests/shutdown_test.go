package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/devserver"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
)

// buildPlatform compiles the binary once per test run.
var buildPlatform = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "platform-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "platform")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/platform").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// TestShutdown_SIGTERMDrainsInFlightRequests sends SIGTERM to a real
// "platform api" process during a burst: every response that started is
// complete, a slow in-flight request still succeeds, and the process exits 0
// within the drain timeout.
func TestShutdown_SIGTERMDrainsInFlightRequests(t *testing.T) {
	bin, err := buildPlatform()
	if err != nil {
		t.Fatal(err)
	}
	db, dbURL := testenv.Postgres(t)
	_, secret, err := (&keys.Store{DB: db}).Create(t.Context(), keys.NewKey{ID: ids.New(ids.Key), Principal: "ops", Name: "burst", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	_, keys := testenv.Redis(t)
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(),
		"PLATFORM_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"PLATFORM_OPS_ADDR=127.0.0.1:0", // any free port: tests run beside other stacks
		"PLATFORM_DATABASE_URL="+dbURL,
		"PLATFORM_REDIS_URL="+testenv.RedisURL(),
		"PLATFORM_REDIS_PREFIX="+string(keys),
		"PLATFORM_TEMPORAL_ADDRESS="+testenv.TemporalAddress(t),
		"PLATFORM_TASK_QUEUE="+testenv.TaskQueue(t),
		"PLATFORM_DRAIN_TIMEOUT=10s",
		"PLATFORM_LOG_LEVEL=warn",
		"PLATFORM_RATE_LIMIT_WRITE=100000/60s",
		"PLATFORM_RATE_LIMIT_READ=100000/60s",
		"PLATFORM_RATE_LIMIT_ANON=100000/60s",
	)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	eventually(t, 20*time.Second, "the api to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	slow := make(chan error, 1)
	go func() { slow <- slowPing(base, secret, time.Second) }()
	time.Sleep(200 * time.Millisecond) // the slow request is in flight

	var completed, refused atomic.Int64
	var failures []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				err := burstRequest(base, secret, i)
				switch {
				case err == nil:
					completed.Add(1)
				case errors.Is(err, errNoResponse):
					refused.Add(1)
				default:
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-slow; err != nil {
		t.Errorf("in-flight slow request: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("process exit: %v, want status 0", err)
		}
		t.Logf("exited %s after SIGTERM; %d responses complete, %d requests found no server",
			time.Since(sent).Round(time.Millisecond), completed.Load(), refused.Load())
	case <-time.After(12 * time.Second):
		t.Fatal("process did not exit within the drain timeout")
	}
	if len(failures) > 0 {
		t.Errorf("%d responses cut off or wrong, first: %s", len(failures), failures[0])
	}
	if completed.Load() == 0 {
		t.Error("no request completed during the burst")
	}
}

var errNoResponse = errors.New("no response: server gone before the request was accepted")

// burstRequest alternates readiness probes and workflow starts. A request
// either gets no response at all (the listener is closed) or a whole one.
func burstRequest(base, secret string, i int) error {
	var req *http.Request
	if i%2 == 0 {
		req, _ = http.NewRequest(http.MethodGet, base+"/readyz", nil)
	} else {
		req, _ = http.NewRequest(http.MethodPost, base+"/v1/ping", strings.NewReader(`{"message":"burst"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return errNoResponse
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("status %d body cut off after %d bytes: %v", resp.StatusCode, len(body), err)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return fmt.Errorf("status %d: %d of %d bytes", resp.StatusCode, len(body), resp.ContentLength)
	}
	switch resp.StatusCode {
	case 200, 202, 503:
		return nil
	}
	return fmt.Errorf("unexpected status %d: %s", resp.StatusCode, body)
}

// slowPing sends a ping whose body trickles in over d, so that it is still
// being read when SIGTERM arrives.
func slowPing(base, secret string, d time.Duration) error {
	pr, pw := io.Pipe()
	go func() {
		parts := []string{`{"mess`, `age":`, `"slow`, `"}`}
		for _, p := range parts {
			time.Sleep(d / time.Duration(len(parts)))
			_, _ = pw.Write([]byte(p))
		}
		pw.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/ping", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// TestShutdown_LameDuckRefusesNoOne plays a load balancer against a real
// "platform api": clients keep keep-alive connections busy while a prober
// polls /readyz; after SIGTERM, /readyz turns 503 while everything is still
// served, responses ask keep-alive clients to close, and no request made
// before the prober saw 503 is refused or reset. Then the process exits 0.
func TestShutdown_LameDuckRefusesNoOne(t *testing.T) {
	bin, err := buildPlatform()
	if err != nil {
		t.Fatal(err)
	}
	_, dbURL := testenv.Postgres(t)
	_, keys := testenv.Redis(t)
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(),
		"PLATFORM_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"PLATFORM_OPS_ADDR=127.0.0.1:0",
		"PLATFORM_DATABASE_URL="+dbURL,
		"PLATFORM_REDIS_URL="+testenv.RedisURL(),
		"PLATFORM_REDIS_PREFIX="+string(keys),
		"PLATFORM_TEMPORAL_ADDRESS="+testenv.TemporalAddress(t),
		"PLATFORM_TASK_QUEUE="+testenv.TaskQueue(t),
		"PLATFORM_SHUTDOWN_DELAY=1s",
		"PLATFORM_DRAIN_TIMEOUT=10s",
		"PLATFORM_LOG_LEVEL=warn",
		"PLATFORM_RATE_LIMIT_ANON=100000/60s",
	)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	eventually(t, 20*time.Second, "the api to be ready", func() bool {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// get reports a request's failure to get a whole response, and whether
	// the server asked to close the connection.
	get := func(path string) (status int, closed bool, err error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, false, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, false, err
		}
		return resp.StatusCode, resp.Close, nil
	}
	var out atomic.Bool // the prober saw 503: the balancer sends no more
	var mu sync.Mutex
	var failures []string
	var sent, closedAfterTERM atomic.Int64
	var terminated atomic.Bool
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; !out.Load(); i++ {
				path := []string{"/healthz", "/openapi.json", "/v1/nowhere"}[i%3]
				status, closed, err := get(path)
				sent.Add(1)
				switch {
				case err != nil:
					fail("GET %s: %v", path, err)
				case status != 200 && status != 404:
					fail("GET %s = %d", path, status)
				case closed && terminated.Load():
					closedAfterTERM.Add(1)
				}
			}
		})
	}
	probed := make(chan time.Time, 1)
	wg.Go(func() {
		for !out.Load() {
			status, closed, err := get("/readyz")
			switch {
			case err != nil:
				fail("GET /readyz: %v", err)
				out.Store(true)
			case status == http.StatusServiceUnavailable:
				if !closed {
					fail("the draining 503 did not ask to close the connection")
				}
				probed <- time.Now()
				out.Store(true)
			case status != 200:
				fail("GET /readyz = %d", status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	sentAt := time.Now()
	terminated.Store(true)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case at := <-probed:
		t.Logf("/readyz said 503 %s after SIGTERM; %d requests, %d asked to close after SIGTERM",
			at.Sub(sentAt).Round(time.Millisecond), sent.Load(), closedAfterTERM.Load())
	default:
		t.Error("/readyz never answered 503")
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed before the balancer stopped, first: %s", len(failures), failures[0])
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("process exit: %v, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("process did not exit after the delay and the drain")
	}
}
