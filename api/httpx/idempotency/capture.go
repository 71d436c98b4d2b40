package idempotency

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// storedHeaders are the response headers a replay repeats: those that
// describe the stored body or the resource it created. Everything else
// belongs to the exchange that carried it (Set-Cookie, RateLimit-*,
// X-Request-Id, X-Trace-Id, Date, Retry-After) and is never stored.
var storedHeaders = []string{
	"Allow",
	"Cache-Control",
	"Content-Encoding",
	"Content-Language",
	"Content-Location",
	"Content-Type",
	"ETag",
	"Last-Modified",
	"Link",
	"Location",
}

// response is what a completed request answered, as stored for replays.
// Withheld marks a response that carried a secret: only its status and
// headers are kept (a tombstone), never its body.
type response struct {
	Status   int         `json:"status"`
	Header   http.Header `json:"header"`
	Body     []byte      `json:"-"`
	Withheld bool        `json:"-"`
}

// recorder writes through to the client and keeps a copy of the status, the
// stored subset of headers and up to limit bytes of body.
type recorder struct {
	http.ResponseWriter
	limit    int
	status   int
	header   http.Header
	body     bytes.Buffer
	overflow bool
	noStore  bool
}

func newRecorder(w http.ResponseWriter, limit int) *recorder {
	return &recorder{ResponseWriter: w, limit: limit}
}

// WriteHeader records the final status and the headers as they are sent.
func (c *recorder) WriteHeader(code int) {
	c.capture(code)
	c.ResponseWriter.WriteHeader(code)
}

// Write records the body up to the limit.
func (c *recorder) Write(b []byte) (int, error) {
	// net/http answers 200 on the first Write; the underlying writer does
	// that itself, so only the recorder needs telling (and Content-Type
	// sniffing still happens downstream).
	c.capture(http.StatusOK)
	n, err := c.ResponseWriter.Write(b)
	c.keep(b[:n])
	return n, err
}

// Flush lets streaming handlers flush through the recorder.
func (c *recorder) Flush() {
	c.capture(http.StatusOK)
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (c *recorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *recorder) capture(code int) {
	// 1xx responses (103 Early Hints) precede the final one.
	if c.status != 0 || code < 200 {
		return
	}
	c.status = code
	c.noStore = noStore(c.Header())
	c.header = http.Header{}
	for _, name := range storedHeaders {
		if vs := c.Header().Values(name); len(vs) > 0 {
			c.header[http.CanonicalHeaderKey(name)] = append([]string(nil), vs...)
		}
	}
}

func (c *recorder) keep(b []byte) {
	if c.overflow || c.noStore {
		return
	}
	if c.body.Len()+len(b) > c.limit {
		c.overflow = true
		c.body = bytes.Buffer{} // free it: it will not be stored
		return
	}
	c.body.Write(b)
}

// result returns the response as answered, and false when it was too big to
// store.
func (c *recorder) result() (response, bool) {
	c.capture(http.StatusOK) // a handler that wrote nothing answered 200
	if c.overflow {
		return response{}, false
	}
	if c.noStore {
		return response{Status: c.status, Header: c.header, Withheld: true}, true
	}
	return response{Status: c.status, Header: c.header, Body: c.body.Bytes()}, true
}

// noStore reports whether h forbids storing the response. Handlers mark
// responses that carry a secret (a new API key, a webhook signing secret)
// Cache-Control: no-store, and the idempotency store is a cache of
// responses: it keeps such a response's status and headers as a tombstone,
// never its body, so no secret reaches Redis, in plaintext or otherwise.
func noStore(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// storable reports whether resp may be replayed. The contract stores 2xx and
// 4xx except 401, 403, 409 and 429: those depend on credentials, state or
// quota at the moment and a retry should see the present. 5xx (and anything
// else) releases the key so the retry runs again. A withheld response is
// kept (as a tombstone) only when it succeeded: a failure created nothing,
// so its retry may as well run again.
func storable(resp response) bool {
	status := resp.Status
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	if resp.Withheld {
		return status >= 200 && status < 300
	}
	return status >= 200 && status < 300 || status >= 400 && status < 500
}

// problemType is the media type of the RFC 9457 documents package web writes.
const problemType = "application/problem+json"

// restamp returns the JSON object body with the members named in values set
// to them, keeping every other member and the order as they were (bytes
// included). A body that is not a JSON object comes back unchanged.
func restamp(body []byte, values map[string]string) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return body
	}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		var value json.RawMessage
		if err != nil || !ok || dec.Decode(&value) != nil {
			return body
		}
		if v, ok := values[name]; ok {
			value, _ = json.Marshal(v)
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		quoted, _ := json.Marshal(name)
		out.Write(quoted)
		out.WriteByte(':')
		out.Write(value)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return body
	}
	out.WriteString("}\n")
	return out.Bytes()
}
