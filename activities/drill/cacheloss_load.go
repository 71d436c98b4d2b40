package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/acme/platform/workflows/drill"
)

const (
	// idempotencyPool is how many Idempotency-Keys the writes cycle
	// through: every key is replayed many times, before and after the
	// fault, so a lost idempotency record would show as a second job.
	idempotencyPool = 8
	// maxInFlight bounds the load's concurrent requests (200/s for a 1.5 s
	// stall is 300); a tick that finds them all busy is skipped and
	// counted as skipped, which is the load generator's limit, not the
	// API's failure.
	maxInFlight = 512
	// requestTimeout bounds one request of the load.
	requestTimeout = 10 * time.Second
	// webhookTarget is where the drill's jobs deliver: a documentation
	// address (RFC 5737) that the egress guard refuses before dialling, so
	// the jobs fail at once and no packet leaves the machine.
	webhookTarget = "http://192.0.2.1/cache-loss-drill"
)

// sample is one request of the load.
type sample struct {
	at      time.Time
	latency time.Duration
	status  int    // 0: no answer
	key     int    // idempotency key index of a write, -1 for a read
	jobID   string // of a 201
	skipped bool   // not sent: maxInFlight requests were in flight
}

// loadGen sends reads (GET /v1/jobs?limit=5) and idempotent writes (POST
// /v1/jobs with a key of the pool) in turn at a fixed rate, and keeps
// every answer.
type loadGen struct {
	base, secret, drillID string
	rate                  int
	client                *http.Client

	mu      sync.Mutex
	samples []sample
}

func newLoadGen(base, secret, drillID string, rate int) *loadGen {
	return &loadGen{base: base, secret: secret, drillID: drillID, rate: rate,
		client: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}}}
}

// run sends the load until ctx ends, then waits for the requests in
// flight. Every fifth write is sent twice at once, so concurrent replays
// (409 in progress, or a replay) happen too.
func (g *loadGen) run(ctx context.Context) {
	defer g.client.CloseIdleConnections()
	tick := time.NewTicker(time.Second / time.Duration(g.rate))
	defer tick.Stop()
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	send := func(key int) {
		select {
		case slots <- struct{}{}:
		default:
			g.add(sample{at: time.Now(), key: key, skipped: true})
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			g.add(g.request(key))
		}()
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		if n%2 == 0 {
			send(-1)
			continue
		}
		key := (n / 2) % idempotencyPool
		send(key)
		if (n/2)%5 == 0 {
			send(key)
		}
	}
}

func (g *loadGen) add(s sample) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.samples = append(g.samples, s)
}

// request sends one read (key < 0) or write. It does not use the load's
// context: a request in flight when the load ends is finished and counted.
func (g *loadGen) request(key int) sample {
	s := sample{at: time.Now(), key: key}
	req, err := g.newRequest(key)
	if err != nil {
		return s
	}
	resp, err := g.client.Do(req)
	s.latency = time.Since(s.at)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	s.status = resp.StatusCode
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if key >= 0 && resp.StatusCode == http.StatusCreated {
		var job struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &job)
		s.jobID = job.ID
	}
	return s
}

func (g *loadGen) newRequest(key int) (*http.Request, error) {
	if key < 0 {
		req, err := http.NewRequest(http.MethodGet, g.base+"/v1/jobs?limit=5", nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+g.secret)
		}
		return req, err
	}
	// The body depends on the key alone: a replay must be byte for byte
	// the same request, or it is 422 key reused.
	body, _ := json.Marshal(map[string]any{"type": "webhook",
		"input": map[string]any{"url": webhookTarget, "payload": map[string]any{"drill": g.drillID, "n": key}},
		"retry": map[string]any{"max_attempts": 1}})
	req, err := http.NewRequest(http.MethodPost, g.base+"/v1/jobs", bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+g.secret)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "cache-loss-"+g.drillID+"-"+strconv.Itoa(key))
	}
	return req, err
}

// summarise counts the answers, the duplicates and the latencies per phase:
// before the fault, during it (until Redis-backed limiting was back, or at
// least until the fault ended) and after, each request by when it was
// sent.
func (g *loadGen) summarise(res *drill.CacheLossResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	res.Statuses = map[string]int{}
	recovered := res.FaultEndedAt
	if res.LimitingBackSeconds >= 0 {
		back := res.FaultStartedAt.Add(time.Duration(res.LimitingBackSeconds * float64(time.Second)))
		recovered = maxTime(recovered, back)
	}
	phases := map[string][]time.Duration{}
	jobs := map[int]map[string]bool{}
	for _, s := range g.samples {
		if s.skipped {
			res.Skipped++
			continue
		}
		res.Requests++
		res.Statuses[statusClass(s.status)]++
		switch {
		case s.status == 0:
			res.TransportErrors++
			continue
		case s.status >= 500:
			res.Errors5xx++
		}
		phase := "after"
		switch {
		case s.at.Before(res.FaultStartedAt):
			phase = "before"
		case !s.at.After(recovered):
			phase = "during"
		}
		phases[phase] = append(phases[phase], s.latency)
		if s.jobID != "" {
			if jobs[s.key] == nil {
				jobs[s.key] = map[string]bool{}
			}
			jobs[s.key][s.jobID] = true
		}
	}
	res.IdempotencyKeys = len(jobs)
	for _, ids := range jobs {
		if len(ids) > 1 {
			res.Duplicates++
		}
	}
	res.Latency = latencies(phases)
}

func statusClass(status int) string {
	switch {
	case status == 0:
		return "transport"
	case status == http.StatusTooManyRequests:
		return "429"
	}
	return fmt.Sprintf("%dxx", status/100)
}

// latencies are p50, p95 and p99 in milliseconds of each phase.
func latencies(phases map[string][]time.Duration) map[string]float64 {
	out := map[string]float64{}
	for phase, ds := range phases {
		slices.Sort(ds)
		for _, q := range []int{50, 95, 99} {
			out[fmt.Sprintf("p%d_ms_%s", q, phase)] = percentile(ds, q)
		}
	}
	return out
}

// percentile is the nearest-rank q-th percentile of sorted ds, in ms.
func percentile(ds []time.Duration, q int) float64 {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(q)/100*float64(len(ds)))) - 1
	i = max(0, min(i, len(ds)-1))
	return math.Round(float64(ds[i].Microseconds())/100) / 10
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
