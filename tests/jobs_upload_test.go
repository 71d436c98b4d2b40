package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/internal/config"
)

// uploadJSON is the answer of POST /v1/uploads.
type uploadJSON struct {
	ID          string `json:"id"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	JobID       string `json:"job_id"`
}

// upload posts body with contentType to path; body is sent chunked (no
// Content-Length) when it is an io.Reader that is not a *bytes.Reader.
func (s *stack) upload(t *testing.T, path, contentType string, body io.Reader, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func (s *stack) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestJobsUpload_CSVIsStoredVerifiedAndSummarised(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	csv := "id,name,city\n1,ann,oslo\n2,\"bob, jr\",rome\n3,cy,lima\n"
	res := s.upload(t, "/v1/uploads?process=true", "text/csv", strings.NewReader(csv), auth...)
	if res.Status != http.StatusCreated {
		t.Fatalf("upload = %d %s", res.Status, res.Body)
	}
	var up uploadJSON
	res.JSON(t, &up)
	sum := sha256.Sum256([]byte(csv))
	if !strings.HasPrefix(up.ID, "upl_") || up.Size != int64(len(csv)) || up.SHA256 != hex.EncodeToString(sum[:]) ||
		up.ContentType != "text/csv" || !strings.HasPrefix(up.JobID, "job_") {
		t.Fatalf("upload = %+v", up)
	}
	done := s.waitJob(t, up.JobID, 15*time.Second, auth...)
	var summary struct {
		UploadID   string `json:"upload_id"`
		Format     string
		Rows       int
		Columns    int
		SHA256     string
		FirstError *struct{ Line int } `json:"first_error"`
	}
	if err := json.Unmarshal(done.Result, &summary); err != nil {
		t.Fatalf("result %s: %v", done.Result, err)
	}
	if done.Status != "succeeded" || done.Type != "upload.process" || summary.UploadID != up.ID || summary.Format != "csv" ||
		summary.Rows != 3 || summary.Columns != 3 || summary.SHA256 != up.SHA256 || summary.FirstError != nil {
		t.Errorf("job %+v, summary %+v", done, summary)
	}
}

func TestJobsUpload_CorruptFilesFailAtOnce(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	cases := []struct {
		name, contentType, body, message string
	}{
		{"ragged csv", "text/csv", "id,name\n1,ann\n2\n3,cy\n", "line 3: wrong number of fields"},
		{"broken ndjson", "application/x-ndjson", "{\"a\":1}\n{\"a\":2}\n{\"a\":\n", "line 3: not valid JSON"},
		{"binary declared as csv", "text/csv", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "declared text/csv but the content looks like image/png"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.upload(t, "/v1/uploads?process=true", c.contentType, strings.NewReader(c.body), auth...)
			var up uploadJSON
			res.JSON(t, &up)
			done := s.waitJob(t, up.JobID, 15*time.Second, auth...)
			if done.Status != "failed" || done.Attempts != 1 || done.LastError == nil || done.LastError.Retryable ||
				!strings.Contains(done.LastError.Message, c.message) {
				t.Errorf("job = %+v, last_error %+v", done, done.LastError)
			}
		})
	}
}

func TestJobsUpload_ChecksumMismatchFailsAtOnce(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	res := s.upload(t, "/v1/uploads", "application/x-ndjson", strings.NewReader("{\"a\":1}\n{\"a\":2}\n"), auth...)
	var up uploadJSON
	res.JSON(t, &up)
	if up.JobID != "" {
		t.Fatalf("an upload without ?process=true started job %s", up.JobID)
	}
	// Storage corruption: one byte of the stored object changes.
	if _, err := s.DB.Exec(context.Background(), `SELECT lo_put(oid, 2, 'b') FROM uploads WHERE id = $1`, up.ID); err != nil {
		t.Fatal(err)
	}
	job := s.createJob(t, map[string]any{"type": "upload.process", "input": map[string]any{"upload_id": up.ID}}, auth...)
	done := s.waitJob(t, job.ID, 15*time.Second, auth...)
	if done.Status != "failed" || done.Attempts != 1 || done.LastError == nil || done.LastError.Retryable ||
		!strings.Contains(done.LastError.Message, "is corrupt: stored with sha256 "+up.SHA256) {
		t.Errorf("job = %+v, last_error %+v", done, done.LastError)
	}
}

func TestJobsUpload_OverTheLimitIs413AndStoresNothing(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.UploadMaxBytes = 1024 })
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	objects := func() int { return s.count(t, `SELECT count(*) FROM pg_largeobject_metadata`) }
	before := objects()
	big := bytes.Repeat([]byte("x"), 2048)
	checkProblem(t, s.upload(t, "/v1/uploads", "text/plain", bytes.NewReader(big), auth...), 413, "payload_too_large")
	// Without a Content-Length the limit is found while streaming; the
	// transaction that held the partial object rolls back.
	chunked := io.MultiReader(bytes.NewReader(big))
	checkProblem(t, s.upload(t, "/v1/uploads", "text/plain", chunked, auth...), 413, "payload_too_large")
	if n := s.count(t, `SELECT count(*) FROM uploads`); n != 0 || objects() != before {
		t.Errorf("%d uploads and %d large objects (was %d) after refused uploads", n, objects(), before)
	}
	if res := s.upload(t, "/v1/uploads", "text/plain", bytes.NewReader(big[:1000]), auth...); res.Status != http.StatusCreated {
		t.Errorf("an upload under the limit = %d %s", res.Status, res.Body)
	}
}

func TestJobsUpload_RetryWithTheSameKeyReturnsTheSameUploadAndJob(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read", "jobs:write"))
	key := []string{"Idempotency-Key", "upload-1"}
	body := "a,b\n1,2\n"
	var first, second uploadJSON
	s.upload(t, "/v1/uploads?process=true", "text/csv", strings.NewReader(body), with(auth, key)...).JSON(t, &first)
	// The idempotency store is lost: the derived ids still collide.
	s.flushRedis(t)
	res := s.upload(t, "/v1/uploads?process=true", "text/csv", strings.NewReader(body), with(auth, key)...)
	res.JSON(t, &second)
	if res.Status != http.StatusCreated || second.ID != first.ID || second.JobID != first.JobID {
		t.Errorf("retry = %d %+v, first %+v", res.Status, second, first)
	}
	if n := s.count(t, `SELECT count(*) FROM uploads`); n != 1 {
		t.Errorf("%d uploads, want 1", n)
	}
	s.flushRedis(t)
	other := s.upload(t, "/v1/uploads?process=true", "text/csv", strings.NewReader("other\n"), with(auth, key)...)
	checkProblem(t, other, http.StatusConflict, "conflict")
}

// flushRedis deletes the test's Redis keys: the idempotency store is lost.
func (s *stack) flushRedis(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	iter := s.Redis.Scan(ctx, 0, string(s.Keys)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		s.Redis.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}

// stalledUpload opens a raw connection and starts an upload that announces
// size bytes and then sends one byte per interval until stop is closed or
// the connection breaks. The response (if any) arrives on the channel.
func (s *stack) stalledUpload(t *testing.T, secret string, size int, interval time.Duration, stop <-chan struct{}) <-chan *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fmt.Fprintf(conn, "POST /v1/uploads HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", secret, size)
	go func() {
		for i := 0; i < size; i++ {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	out := make(chan *http.Response, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			out <- nil
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		out <- resp
	}()
	return out
}

// H5: uploads trickling at a few bytes per second end with 408 once below
// the minimum rate, and never hold a Postgres connection while they trickle.
func TestJobsUpload_StalledUploadsGet408WithoutHoldingAConnection(t *testing.T) {
	s := newAPIStack(t, func(c *config.Config) {
		c.UploadMinBytesPerSecond = 1024
		c.UploadMinRateGrace = 2 * time.Second
	})
	secret := s.key("acme", "jobs:write")
	const stalled = 3
	stop := make(chan struct{})
	defer close(stop)
	var answers []<-chan *http.Response
	for range stalled {
		answers = append(answers, s.stalledUpload(t, secret, 100000, 200*time.Millisecond, stop))
	}
	time.Sleep(500 * time.Millisecond) // past authentication's lookups
	maxHeld := int32(0)
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for i := 0; i < 40; i++ {
			maxHeld = max(maxHeld, s.DB.Stat().AcquiredConns())
			time.Sleep(25 * time.Millisecond)
		}
	}()
	<-sampling
	for i, ch := range answers {
		resp := <-ch
		if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("stalled upload %d: got %+v, want 408", i, resp)
		}
	}
	if maxHeld >= stalled {
		t.Errorf("%d Postgres connections held while %d uploads stalled", maxHeld, stalled)
	}
	if n := s.count(t, `SELECT count(*) FROM uploads`); n != 0 {
		t.Errorf("%d uploads stored", n)
	}
}

// H5: one principal's uploads in progress are capped: of three that never
// finish, with a cap of two, one is refused at once with 429 and
// Retry-After; other principals are not affected.
func TestJobsUpload_ConcurrentUploadsOfOnePrincipalAreCapped(t *testing.T) {
	s := newAPIStack(t, func(c *config.Config) {
		c.UploadMaxConcurrentPerPrincipal = 2
		c.UploadMinRateGrace = time.Minute
	})
	secret := s.key("acme", "jobs:write")
	stop := make(chan struct{})
	defer close(stop)
	answers := make(chan *http.Response, 3)
	for range 3 {
		ch := s.stalledUpload(t, secret, 1000, time.Second, stop)
		go func() { answers <- <-ch }()
	}
	select {
	case resp := <-answers:
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("first answer = %+v, want 429 with Retry-After", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("three uploads of one principal in progress and none refused")
	}
	select {
	case resp := <-answers:
		t.Errorf("a second upload ended: %+v", resp)
	case <-time.After(500 * time.Millisecond):
	}
	other := s.upload(t, "/v1/uploads", "text/plain", strings.NewReader("small"), bearer(s.key("globex", "jobs:write"))...)
	if other.Status != http.StatusCreated {
		t.Errorf("another principal's upload = %d %s", other.Status, other.Body)
	}
	extra := s.upload(t, "/v1/uploads", "text/plain", strings.NewReader("small"), bearer(secret)...)
	checkProblem(t, extra, http.StatusTooManyRequests, "rate_limited")
}

// chunkGuard is an upload body that fails the test when one Read asks for
// more than a MiB: buffering the body whole (io.ReadAll) asks for ever
// larger reads, streaming it does not.
type chunkGuard struct {
	t    *testing.T
	left int
}

func (g *chunkGuard) Read(p []byte) (int, error) {
	if len(p) > 1<<20 {
		g.t.Fatalf("the upload body was read into a %d-byte buffer", len(p))
	}
	if g.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), g.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	g.left -= n
	return n, nil
}

// H5: an idempotent 8 MiB upload is streamed to its spool, not held in
// memory by the idempotency middleware.
func TestJobsUpload_IdempotentUploadIsNotBufferedInMemory(t *testing.T) {
	s := newAPIStack(t)
	const size = 8 << 20
	req := httptest.NewRequest(http.MethodPost, "/v1/uploads", &chunkGuard{t: t, left: size})
	req.Header.Set("Authorization", "Bearer "+s.key("acme", "jobs:write"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Idempotency-Key", "big-1")
	rec := httptest.NewRecorder()
	s.API.Handler().ServeHTTP(rec, req)
	var up uploadJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &up); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("upload = %d %s", rec.Code, rec.Body)
	}
	sum := sha256.Sum256(bytes.Repeat([]byte("x"), size))
	if up.Size != size || up.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("upload = %+v", up)
	}
	retry := httptest.NewRequest(http.MethodPost, "/v1/uploads", &chunkGuard{t: t, left: size})
	retry.Header = req.Header.Clone()
	rec = httptest.NewRecorder()
	s.API.Handler().ServeHTTP(rec, retry)
	if rec.Code != http.StatusCreated || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %d replayed %q", rec.Code, rec.Header().Get("Idempotent-Replayed"))
	}
}
