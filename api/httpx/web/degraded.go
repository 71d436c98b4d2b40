package web

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/platform/api/httpx/problem"
)

// Degraded turns a dependency failure that reached a handler unhandled
// into the documented degraded answer, 503 with Retry-After: a database
// that cannot be reached, that dropped the connection, or that did not
// answer before the request's deadline. Anything else, and every problem
// already chosen by a handler, is left as it is (a bug stays a 500).
func Degraded(err error) error {
	var pe *problem.Error
	if err == nil || errors.As(err, &pe) || !dependencyDown(err) {
		return err
	}
	return problem.UnavailableAfter(2, "a dependency is unavailable or too slow; retry shortly", err)
}

func dependencyDown(err error) bool {
	var connect *pgconn.ConnectError
	var netErr *net.OpError
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	// pgx reports a connection it already found broken, and a pool being
	// closed, by these messages only.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn busy")
}
