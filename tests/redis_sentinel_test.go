package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/testenv"
)

// call is a goroutine-safe request: errors are returned, not fatal.
func (s *stack) call(method, path string, body any, headers ...string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// sentinelLoad is what the traffic saw: every key's job id and every 5xx.
type sentinelLoad struct {
	mu         sync.Mutex
	ids        map[string]string // Idempotency-Key → job id
	failures   []string
	requests   int
	inProgress int // 409 idempotency_request_in_progress answers
}

func (l *sentinelLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

// createOrReplay posts a job under key and checks it gets key's one job id.
func (l *sentinelLoad) createOrReplay(s *stack, auth []string, key, hook string) {
	status, hdr, body, err := s.call(http.MethodPost, "/v1/jobs", webhookJob(hook, map[string]any{"key": key}, nil),
		with(auth, []string{"Idempotency-Key", key})...)
	l.mu.Lock()
	l.requests++
	l.mu.Unlock()
	if status == http.StatusConflict && bytes.Contains(body, []byte("idempotency_request_in_progress")) && hdr.Get("Retry-After") != "" {
		// The contract's answer while the key's first request is unsettled:
		// a claim whose completion did not reach Redis during the switch
		// stays "in progress" until its lock expires. Not a 5xx, not a
		// duplicate; the client retries.
		l.mu.Lock()
		l.inProgress++
		l.mu.Unlock()
		return
	}
	if err != nil || status >= 500 || (status != 201 && status != 200) {
		l.fail("POST %s: %d %v %s (Retry-After %q)", key, status, err, body, hdr.Get("Retry-After"))
		return
	}
	var j jobJSON
	if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
		l.fail("POST %s: undecodable %s", key, body)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.ids[key]; ok && prev != j.ID {
		l.failures = append(l.failures, fmt.Sprintf("key %s made two jobs: %s and %s", key, prev, j.ID))
	}
	l.ids[key] = j.ID
}

func (l *sentinelLoad) read(s *stack, auth []string, key string) {
	l.mu.Lock()
	id := l.ids[key]
	l.requests++
	l.mu.Unlock()
	if id == "" {
		return
	}
	status, _, body, err := s.call(http.MethodGet, "/v1/jobs/"+id, nil, auth...)
	if err != nil || status != 200 {
		l.fail("GET %s: %d %v %s", id, status, err, body)
	}
}

// TestRedisSentinel_FailoverKeepsServingWithoutDuplicates runs the API
// against a real primary, replica and three sentinels through a
// redis-sentinel:// URL, drives creates with Idempotency-Keys (each retried
// at once) and reads, fails the primary over, and checks that no request
// got a 5xx, that no key made two jobs, and that the API's records land on
// the new primary afterwards.
func TestRedisSentinel_FailoverKeepsServingWithoutDuplicates(t *testing.T) {
	ha := testenv.RedisSentinel(t)
	s := newStack(t, generousLimits, func(c *config.Config) { c.RedisURL = ha.URL })
	s.APIRedis.AddHook(testenv.SlotGuard(t))
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	load := &sentinelLoad{ids: map[string]string{}}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("sentinel-%d-%d", w, i)
				load.createOrReplay(s, auth, key, rc.URL)
				load.createOrReplay(s, auth, key, rc.URL) // an immediate retry
				load.read(s, auth, key)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	old := ha.MasterAddr(context.Background())
	if err := ha.Failover(context.Background()); err != nil {
		stop()
		wg.Wait()
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	eventually(t, 20*time.Second, "the sentinels to promote the replica", func() bool {
		return ha.MasterAddr(context.Background()) == ha.Replica.Addr
	})
	t.Logf("failover: %s → %s", old, ha.Replica.Addr)
	time.Sleep(3 * time.Second) // traffic across and after the switch
	stop()
	wg.Wait()

	// Every key still names its one job: replays after the switch (from the
	// record, or from the job the key's resource id names) change nothing.
	for key := range load.ids {
		load.createOrReplay(s, auth, key, rc.URL)
	}
	for _, f := range load.failures {
		t.Error(f)
	}
	ids := map[string]bool{}
	for _, id := range load.ids {
		ids[id] = true
	}
	if len(ids) != len(load.ids) {
		t.Errorf("%d job ids for %d Idempotency-Keys", len(ids), len(load.ids))
	}
	// The worker writes each job's row; there must be one per key, never more.
	var jobs int
	eventually(t, 60*time.Second, "a row for every job", func() bool {
		err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE principal = 'acme'`).Scan(&jobs)
		return err == nil && jobs >= len(ids)
	})
	if jobs != len(ids) {
		t.Errorf("%d jobs for %d Idempotency-Keys: a key made a duplicate", jobs, len(ids))
	}
	t.Logf("%d requests, %d keys, %d jobs, %d answered 409 in progress, %d failures",
		load.requests, len(load.ids), jobs, load.inProgress, len(load.failures))

	// The API follows the switch: a new key's record is stored on the new
	// primary and replayed from there.
	eventually(t, 10*time.Second, "a replay served from the new primary", func() bool {
		key := "after-" + testenv.Suffix()
		load.createOrReplay(s, auth, key, rc.URL)
		_, hdr, _, err := s.call(http.MethodPost, "/v1/jobs", webhookJob(rc.URL, map[string]any{"key": key}, nil),
			with(auth, []string{"Idempotency-Key", key})...)
		return err == nil && hdr.Get("Idempotent-Replayed") == "true"
	})
	// Backups snapshot the current primary.
	if u, err := redis.ServerURL(context.Background(), ha.URL); err != nil || u != "redis://"+ha.Replica.Addr+"/0" {
		t.Errorf("ServerURL after the switch = %q, %v; want the new primary %s", u, err, ha.Replica.Addr)
	}
	primary := goredis.NewClient(&goredis.Options{Addr: ha.Replica.Addr})
	defer primary.Close()
	found, _, err := primary.Scan(context.Background(), 0, string(s.Keys)+"idem:*", 1000).Result()
	if err != nil || len(found) == 0 {
		t.Errorf("no idempotency records on the new primary (%v)", err)
	}
}
