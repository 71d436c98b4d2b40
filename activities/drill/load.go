package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/internal/ids"
)

// experimentScopes are what the experiments' key may do: read and create
// jobs and evaluate flags. Nothing administrative.
var experimentScopes = []string{"jobs:read", "jobs:write", "flags:read"}

// mintKey stores a key for the reserved "system" principal with scopes,
// expiring after ttl; only the secret's SHA-256 is stored and the secret
// lives in this activity's memory alone.
func (a *Activities) mintKey(ctx context.Context, name string, scopes []string, ttl time.Duration) (id, secret string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	secret = "plk_" + base64.RawURLEncoding.EncodeToString(b)
	hash := sha256.Sum256([]byte(secret))
	id = ids.New(ids.Key)
	_, err = a.DB.Exec(ctx, `
INSERT INTO api_keys (id, principal, name, scopes, hash, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`,
		id, CacheLossPrincipal, clipName(name), scopes, hash[:], ttl.Seconds())
	if err != nil {
		return "", "", fmt.Errorf("mint the drill's API key: %w", err)
	}
	return id, secret, nil
}

// mix is the experiments' request mix: get by id, list, create (each with
// its own Idempotency-Key) and an OFREP evaluation, in turn.
type mix struct {
	base, secret, drillID, jobID string
	n                            atomic.Uint64
}

// flagKey is the flag the OFREP requests evaluate: a flag that need not
// exist (FLAG_NOT_FOUND is a complete answer from the same code path).
const flagKey = "drill-experiment"

func (m *mix) targeter() vegeta.Targeter {
	header := func() http.Header {
		return http.Header{"Authorization": {"Bearer " + m.secret}, "Content-Type": {"application/json"}}
	}
	return func(t *vegeta.Target) error {
		n := m.n.Add(1)
		*t = vegeta.Target{Header: header()}
		switch n % 4 {
		case 0:
			t.Method, t.URL = http.MethodGet, m.base+"/v1/jobs/"+m.jobID
		case 1:
			t.Method, t.URL = http.MethodGet, m.base+"/v1/jobs?limit=20"
		case 2:
			t.Method, t.URL, t.Body = http.MethodPost, m.base+"/v1/jobs", jobBody(m.drillID, int(n))
			t.Header.Set("Idempotency-Key", "exp-"+m.drillID+"-"+strconv.FormatUint(n, 10))
		default:
			t.Method, t.URL, t.Body = http.MethodPost, m.base+"/ofrep/v1/evaluate/flags/"+flagKey, []byte(`{"context":{"targetingKey":"drill"}}`)
		}
		return nil
	}
}

// jobBody is a webhook job to a documentation address the egress guard
// refuses before dialling: it fails at once and reaches a final state.
func jobBody(drillID string, n int) []byte {
	b, _ := json.Marshal(map[string]any{"type": "webhook",
		"input": map[string]any{"url": webhookTarget, "payload": map[string]any{"drill": drillID, "n": n}},
		"retry": map[string]any{"max_attempts": 1}})
	return b
}

// classOf is a result's endpoint class.
func classOf(method, url string) string {
	switch {
	case strings.Contains(url, "/ofrep/"):
		return experiment.ClassOFREP
	case method == http.MethodPost:
		return experiment.ClassCreate
	case strings.Contains(url, "/v1/jobs?"):
		return experiment.ClassList
	}
	return experiment.ClassGetByID
}

// tally collects one stretch of results per class, and the job ids the
// creates were acknowledged with.
type tally struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	stats     map[string]experiment.ClassStats
	acked     []string
}

func newTally() *tally {
	return &tally{latencies: map[string][]time.Duration{}, stats: map[string]experiment.ClassStats{}}
}

// add counts r: errors are no answer or a 5xx, except a 503 with
// Retry-After when shed counts as expected (the degraded mode's answer).
func (t *tally) add(r *vegeta.Result) {
	class := classOf(r.Method, r.URL)
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.stats[class]
	c.Requests++
	switch {
	case r.Code == 0 || r.Code >= 500:
		c.Errors++
	case r.Code == http.StatusTooManyRequests:
		c.Limited++
	}
	t.stats[class] = c
	t.latencies[class] = append(t.latencies[class], r.Latency)
	if class == experiment.ClassCreate && r.Code == http.StatusCreated {
		var job struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(r.Body, &job) == nil && job.ID != "" {
			t.acked = append(t.acked, job.ID)
		}
	}
}

// step closes the tally as one step of seconds at rate.
func (t *tally) step(rate float64, seconds float64) experiment.Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := experiment.Step{Rate: rate, Seconds: seconds, Classes: map[string]experiment.ClassStats{}}
	for class, c := range t.stats {
		ds := t.latencies[class]
		slices.Sort(ds)
		c.P50, c.P90, c.P99 = percentile(ds, 50), percentile(ds, 90), percentile(ds, 99)
		c.Rate = float64(c.Requests) / max(seconds, 0.001)
		s.Classes[class] = c
	}
	return s
}

// newAttacker is the load's vegeta attacker: bounded workers and
// connections, so the load generator itself cannot exhaust the worker.
// closeIdle closes its connections once the attack is over, so that they
// do not hold the API's connection goroutines open and read as a leak.
func newAttacker() (atk *vegeta.Attacker, closeIdle func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: maxInFlight, MaxConnsPerHost: maxInFlight, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Timeout: requestTimeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	atk = vegeta.NewAttacker(vegeta.Client(client), vegeta.MaxWorkers(maxInFlight), vegeta.MaxBody(1<<16))
	return atk, tr.CloseIdleConnections
}

// seedJob creates the job the get-by-id requests read.
func seedJob(ctx context.Context, base, secret, drillID string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/jobs", bytes.NewReader(jobBody(drillID, -1)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "exp-"+drillID+"-seed")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("seed job: %w", err)
	}
	defer resp.Body.Close()
	var job struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&job) != nil {
		return "", fmt.Errorf("seed job: the API answered %d", resp.StatusCode)
	}
	return job.ID, nil
}
