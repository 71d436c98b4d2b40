// Package redis opens the platform's Redis client and names its keys.
package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Open parses url and returns a client with short timeouts, so that a Redis
// outage degrades requests quickly instead of stalling them.
func Open(url string) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	opts.PoolTimeout = time.Second
	opts.MaxRetries = 1
	// Honour the caller's context deadline on every command.
	opts.ContextTimeoutEnabled = true
	return goredis.NewClient(opts), nil
}

// OpenTraced is Open with every command and pipeline traced by tp.
func OpenTraced(url string, tp trace.TracerProvider) (*goredis.Client, error) {
	c, err := Open(url)
	if err != nil {
		return nil, err
	}
	if err := Trace(c, tp); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Trace adds a client span to every command and pipeline of c (redisotel).
// Spans carry the command name, not its arguments: keys and values can hold
// tenants' data, and the caller lookup is a stack walk per command.
func Trace(c *goredis.Client, tp trace.TracerProvider) error {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(tp),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	return nil
}

// Ping reports whether Redis answers within the context's deadline.
func Ping(ctx context.Context, c *goredis.Client) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Keys builds Redis keys under one prefix, so that tests and deployments that
// share a Redis server never see each other's keys.
type Keys string

// Key joins the prefix and parts with ':'.
func (k Keys) Key(parts ...string) string {
	n := len(k)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, k...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	return string(b)
}
