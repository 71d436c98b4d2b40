package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
)

// Limits bound what uploads in progress may hold. They are per API process:
// a principal may have MaxPerPrincipal uploads in progress on each replica.
type Limits struct {
	// MaxConcurrent is how many uploads the process receives at once; more
	// are 503 with Retry-After.
	MaxConcurrent int
	// MaxPerPrincipal is how many of them one principal may have; more are
	// 429 with Retry-After.
	MaxPerPrincipal int
	// MinBytesPerSecond and Grace set the slowest upload accepted: after n
	// bytes, the next must arrive by start + Grace + n/MinBytesPerSecond
	// (and before the request's deadline), or the upload ends with 408.
	MinBytesPerSecond int64
	Grace             time.Duration
	// SpoolDir holds the received bodies; empty means os.TempDir().
	SpoolDir string
}

// retryAfter is the Retry-After of a refused upload, in seconds.
const retryAfter = 1

// gate counts uploads in progress, in total and per principal.
type gate struct {
	limits Limits
	mu     sync.Mutex
	total  int
	per    map[string]int
}

func newGate(l Limits) *gate { return &gate{limits: l, per: map[string]int{}} }

// limit refuses an upload over the limits before a byte of it is read.
func (g *gate) limit(next http.Handler) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		caller, _ := auth.FromContext(r.Context())
		if err := g.acquire(caller.Name); err != nil {
			hangUp(w)
			return err
		}
		defer g.release(caller.Name)
		next.ServeHTTP(w, r)
		return nil
	})
}

func (g *gate) acquire(principal string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.per[principal] >= g.limits.MaxPerPrincipal {
		p := problem.Newf(problem.RateLimited, "at most %d uploads of one principal may be in progress at once", g.limits.MaxPerPrincipal)
		p.Header = http.Header{"Retry-After": {strconv.Itoa(retryAfter)}}
		p.Extra = map[string]any{"violated-policies": []string{"uploads"}}
		return p
	}
	if g.total >= g.limits.MaxConcurrent {
		return problem.UnavailableAfter(retryAfter, "too many uploads are in progress; retry shortly", nil)
	}
	g.per[principal]++
	g.total++
	return nil
}

func (g *gate) release(principal string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.per[principal]--; g.per[principal] <= 0 {
		delete(g.per, principal)
	}
}

// hangUp makes the server answer without reading the body it refuses and
// close the connection: net/http otherwise drains up to 256 KiB of a
// refused body before answering, at whatever pace the client sends it.
func hangUp(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// spool is an upload's body as received: an unlinked temporary file (its
// space is freed when it is closed, even if the process dies first), its
// size and its SHA-256.
type spool struct {
	file   *os.File
	size   int64
	sha256 string
}

type spoolKey struct{}

func spoolFrom(ctx context.Context) (*spool, bool) {
	sp, ok := ctx.Value(spoolKey{}).(*spool)
	return sp, ok
}

// receive spools the body to disk at no less than the minimum rate before
// next runs, so that nothing downstream (the idempotency middleware, the
// Postgres transaction) waits on the client. next finds the spool in the
// context and the body's SHA-256 given to the idempotency middleware.
func receive(l Limits, next http.Handler) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		sp, err := receiveBody(w, r, l)
		if err != nil {
			return err
		}
		defer sp.file.Close()
		ctx := context.WithValue(r.Context(), spoolKey{}, sp)
		ctx = idempotency.WithBodySHA256(ctx, sp.sha256)
		r = r.WithContext(ctx)
		r.Body = http.NoBody
		next.ServeHTTP(w, r)
		return nil
	})
}

// receiveBody copies the body (capped by the body-limit middleware) into a
// new spool, hashing it on the way.
func receiveBody(w http.ResponseWriter, r *http.Request, l Limits) (*spool, error) {
	f, err := os.CreateTemp(l.SpoolDir, "platform-upload-*")
	if err != nil {
		return nil, fmt.Errorf("create upload spool: %w", err)
	}
	_ = os.Remove(f.Name())
	sp := &spool{file: f}
	hash := sha256.New()
	pace := newPacer(w, r, l)
	buf := make([]byte, 64<<10)
	for {
		pace.extend(sp.size)
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				f.Close()
				return nil, fmt.Errorf("write upload spool: %w", err)
			}
			hash.Write(buf[:n])
			sp.size += int64(n)
		}
		if rerr == io.EOF {
			pace.stop()
			break
		}
		if rerr != nil {
			f.Close()
			hangUp(w)
			return nil, receiveError(rerr, l)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewind upload spool: %w", err)
	}
	sp.sha256 = hex.EncodeToString(hash.Sum(nil))
	return sp, nil
}

func receiveError(err error, l Limits) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return problem.Newf(problem.PayloadTooLarge, "the upload is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &problem.Error{Code: problem.RequestTimeout, Err: err,
			Detail: fmt.Sprintf("the upload arrived slower than %d bytes per second, or not within the request's deadline", l.MinBytesPerSecond)}
	}
	return fmt.Errorf("receive upload: %w", err)
}

// pacer moves the connection's read deadline as bytes arrive: a slow-loris
// upload then fails its read instead of holding a slot for the whole
// request timeout. Where the connection cannot take deadlines (in-process
// tests), it does nothing.
type pacer struct {
	rc    *http.ResponseController
	start time.Time
	end   time.Time // the request's deadline; zero when none
	l     Limits
	off   bool
}

func newPacer(w http.ResponseWriter, r *http.Request, l Limits) *pacer {
	end, _ := r.Context().Deadline()
	return &pacer{rc: http.NewResponseController(w), start: time.Now(), end: end, l: l}
}

// extend sets the deadline for the next byte after received ones.
func (p *pacer) extend(received int64) {
	if p.off {
		return
	}
	allowed := time.Duration(float64(received) / float64(p.l.MinBytesPerSecond) * float64(time.Second))
	d := p.start.Add(p.l.Grace + allowed)
	if !p.end.IsZero() && d.After(p.end) {
		d = p.end
	}
	if err := p.rc.SetReadDeadline(d); err != nil {
		p.off = true
	}
}

// stop clears the deadline once the body is in: the server's background
// read that follows must not hit it and cancel the request while the
// handler writes to Postgres. A body that failed keeps its passed deadline,
// so the server does not wait on the rest of it before answering.
func (p *pacer) stop() {
	if !p.off {
		_ = p.rc.SetReadDeadline(time.Time{})
	}
}
