package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// jobJSON is a job as the API shows it.
type jobJSON struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError *struct {
		Message   string    `json:"message"`
		Attempt   int       `json:"attempt"`
		At        time.Time `json:"at"`
		Retryable bool      `json:"retryable"`
	} `json:"last_error"`
	Input      json.RawMessage `json:"input"`
	Result     json.RawMessage `json:"result"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Workflow   struct {
		ID    string `json:"id"`
		RunID string `json:"run_id"`
		URL   string `json:"url"`
	} `json:"workflow"`
}

// attemptJSON is one ended attempt.
type attemptJSON struct {
	Attempt   int     `json:"attempt"`
	Status    string  `json:"status"`
	Error     *string `json:"error"`
	Retryable bool    `json:"retryable"`
	Response  *struct {
		Status        int     `json:"status"`
		LatencyMS     float64 `json:"latency_ms"`
		Body          string  `json:"body"`
		BodyTruncated bool    `json:"body_truncated"`
	} `json:"response"`
}

var finalStatuses = map[string]bool{"succeeded": true, "failed": true, "canceled": true, "timed_out": true}

// createJob posts body to /v1/jobs and expects 201.
func (s *stack) createJob(t *testing.T, body any, headers ...string) jobJSON {
	t.Helper()
	res := s.do(http.MethodPost, "/v1/jobs", body, headers...)
	if res.Status != http.StatusCreated {
		t.Fatalf("POST /v1/jobs = %d %s", res.Status, res.Body)
	}
	var j jobJSON
	res.JSON(t, &j)
	return j
}

// job reads a job, expecting 200.
func (s *stack) job(t *testing.T, id string, headers ...string) jobJSON {
	t.Helper()
	res := s.do(http.MethodGet, "/v1/jobs/"+id, nil, headers...)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /v1/jobs/%s = %d %s", id, res.Status, res.Body)
	}
	var j jobJSON
	res.JSON(t, &j)
	return j
}

// waitJob polls a job until it reaches a final status.
func (s *stack) waitJob(t *testing.T, id string, timeout time.Duration, headers ...string) jobJSON {
	t.Helper()
	var j jobJSON
	eventually(t, timeout, "job "+id+" to end", func() bool {
		j = s.job(t, id, headers...)
		return finalStatuses[j.Status]
	})
	return j
}

// attempts lists a job's attempts, newest first.
func (s *stack) attempts(t *testing.T, id string, headers ...string) []attemptJSON {
	t.Helper()
	res := s.do(http.MethodGet, "/v1/jobs/"+id+"/attempts", nil, headers...)
	if res.Status != http.StatusOK {
		t.Fatalf("GET attempts = %d %s", res.Status, res.Body)
	}
	var p struct{ Data []attemptJSON }
	res.JSON(t, &p)
	return p.Data
}

// webhookJob is the body of a webhook job with quick retries.
func webhookJob(url string, payload any, retry map[string]any) map[string]any {
	if retry == nil {
		retry = map[string]any{"initial_interval_seconds": 0.2, "max_interval_seconds": 1}
	}
	return map[string]any{"type": "webhook", "input": map[string]any{"url": url, "payload": payload}, "retry": retry}
}

// delivery is one request a receiver got.
type delivery struct {
	At     time.Time
	Header http.Header
	Body   []byte
}

// receiver is a webhook receiver on loopback that answers with respond.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 0, 256)
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		rc.mu.Lock()
		rc.deliveries = append(rc.deliveries, delivery{At: time.Now(), Header: r.Header.Clone(), Body: body})
		n := len(rc.deliveries)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}
