package api

import (
	"net/http"
	"sync"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/internal/database"
)

// routeReads tells the stores how the request reads (see database.Router):
// a GET or HEAD may read from a replica that has the caller's last write; any
// other method reads from the primary, and its commit position becomes the
// caller's last write before the response goes out, so the caller's next
// read, on any API process, sees it. Without a router it does nothing.
func routeReads(router *database.Router) Middleware {
	return func(next http.Handler) http.Handler {
		if router == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := auth.FromContext(r.Context())
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				next.ServeHTTP(w, r.WithContext(database.ReadingAs(r.Context(), p.Name)))
				return
			}
			ctx := database.Writing(r.Context())
			rw := &rememberWrite{ResponseWriter: w, remember: func() { router.RememberWrite(ctx, p.Name) }}
			next.ServeHTTP(rw, r.WithContext(ctx))
			rw.once.Do(rw.remember) // a handler that wrote no response
		})
	}
}

// rememberWrite records the write position once, before the first byte of
// the response: by then the handler has committed what it wrote.
type rememberWrite struct {
	http.ResponseWriter
	remember func()
	once     sync.Once
}

func (w *rememberWrite) WriteHeader(code int) {
	w.once.Do(w.remember)
	w.ResponseWriter.WriteHeader(code)
}

func (w *rememberWrite) Write(b []byte) (int, error) {
	w.once.Do(w.remember)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *rememberWrite) Unwrap() http.ResponseWriter { return w.ResponseWriter }
