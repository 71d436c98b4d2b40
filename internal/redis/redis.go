// Package redis opens the platform's Redis client and names its keys.
//
// PLATFORM_REDIS_URL names one of three deployments, and Open returns a
// go-redis UniversalClient for each:
//
//	redis://[user:password@]host:port[/db]             one server (rediss:// for TLS)
//	redis-sentinel://[user:password@]host:port[,host:port…]/master[?db=N&sentinel_password=P]
//	redis-cluster://[user:password@]host:port[,host:port…]
//
// Sentinel addresses are the sentinels', not the servers'; the client asks
// them for the current primary and follows a failover by itself. The
// userinfo authenticates to the servers; sentinel_password (and
// sentinel_username) to the sentinels when they require it. A cluster URL
// lists seed nodes; the client discovers the rest.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// URL schemes of PLATFORM_REDIS_URL besides redis:// and rediss://.
const (
	SchemeSentinel = "redis-sentinel"
	SchemeCluster  = "redis-cluster"
)

// Open parses url and returns a client with short timeouts, so that a Redis
// outage degrades requests quickly instead of stalling them.
func Open(url string) (goredis.UniversalClient, error) {
	opts, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	return goredis.NewUniversalClient(opts), nil
}

// ParseURL reads any of the three URL forms into universal options with the
// platform's timeouts. NewUniversalClient then makes a plain client (one
// address), a sentinel-backed failover client (MasterName set) or a cluster
// client (IsClusterMode).
func ParseURL(raw string) (*goredis.UniversalOptions, error) {
	scheme, _, _ := strings.Cut(raw, "://")
	var (
		opts *goredis.UniversalOptions
		err  error
	)
	switch scheme {
	case "redis", "rediss":
		opts, err = parseSingle(raw)
	case SchemeSentinel:
		opts, err = parseSentinel(raw)
	case SchemeCluster:
		opts, err = parseCluster(raw)
	default:
		return nil, fmt.Errorf("scheme must be redis, rediss, %s or %s", SchemeSentinel, SchemeCluster)
	}
	if err != nil {
		return nil, err
	}
	withTimeouts(opts)
	return opts, nil
}

func withTimeouts(opts *goredis.UniversalOptions) {
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	opts.PoolTimeout = time.Second
	opts.MaxRetries = 1
	// Honour the caller's context deadline on every command.
	opts.ContextTimeoutEnabled = true
	if opts.MasterName != "" || opts.IsClusterMode {
		// A failover or a slot migration answers READONLY, MASTERDOWN or
		// MOVED for a moment; a few retries with backoff ride it out within
		// the callers' deadlines instead of failing the request.
		opts.MaxRetries = 5
		opts.MinRetryBackoff = 50 * time.Millisecond
		opts.MaxRetryBackoff = 500 * time.Millisecond
	}
}

func parseSingle(raw string) (*goredis.UniversalOptions, error) {
	o, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return &goredis.UniversalOptions{
		Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB,
		TLSConfig: o.TLSConfig, ClientName: o.ClientName, Protocol: o.Protocol,
	}, nil
}

// multiHost splits a URL whose authority lists several host:port pairs,
// which net/url does not parse (IPv6 literals in particular), into the
// addresses and a one-host URL carrying the rest.
func multiHost(raw, scheme string) ([]string, *url.URL, error) {
	rest := strings.TrimPrefix(raw, scheme+"://")
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, nil, fmt.Errorf("%q is not host:port", h)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, nil, fmt.Errorf("%q has a bad port", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	u, err := url.Parse("redis://" + userinfo + "host" + tail)
	if err != nil {
		return nil, nil, errors.New("malformed URL")
	}
	return addrs, u, nil
}

func credentials(u *url.URL) (user, password string) {
	if u.User == nil {
		return "", ""
	}
	password, _ = u.User.Password()
	return u.User.Username(), password
}

// parseSentinel reads redis-sentinel://[user:pw@]h:p[,h:p…]/master[?db=N&sentinel_username=U&sentinel_password=P].
func parseSentinel(raw string) (*goredis.UniversalOptions, error) {
	addrs, u, err := multiHost(raw, SchemeSentinel)
	if err != nil {
		return nil, err
	}
	master := strings.Trim(u.Path, "/")
	if master == "" || strings.Contains(master, "/") {
		return nil, errors.New("the path must be the master name, as in redis-sentinel://host:26379/mymaster")
	}
	o := &goredis.UniversalOptions{Addrs: addrs, MasterName: master}
	o.Username, o.Password = credentials(u)
	q := u.Query()
	for name := range q {
		switch name {
		case "db", "sentinel_username", "sentinel_password":
		default:
			return nil, fmt.Errorf("unknown parameter %q (db, sentinel_username, sentinel_password)", name)
		}
	}
	if v := q.Get("db"); v != "" {
		if o.DB, err = strconv.Atoi(v); err != nil || o.DB < 0 {
			return nil, fmt.Errorf("db %q is not a database number", v)
		}
	}
	o.SentinelUsername, o.SentinelPassword = q.Get("sentinel_username"), q.Get("sentinel_password")
	return o, nil
}

// parseCluster reads redis-cluster://[user:pw@]h:p[,h:p…]. A cluster has
// only database 0, so a path or parameters are refused.
func parseCluster(raw string) (*goredis.UniversalOptions, error) {
	addrs, u, err := multiHost(raw, SchemeCluster)
	if err != nil {
		return nil, err
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, errors.New("a cluster URL takes no path or parameters: a cluster has only database 0")
	}
	o := &goredis.UniversalOptions{Addrs: addrs, IsClusterMode: true}
	o.Username, o.Password = credentials(u)
	return o, nil
}

// OpenTraced is Open with every command and pipeline traced by tp.
func OpenTraced(url string, tp trace.TracerProvider) (goredis.UniversalClient, error) {
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
func Trace(c goredis.UniversalClient, tp trace.TracerProvider) error {
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
func Ping(ctx context.Context, c goredis.UniversalClient) error {
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

// Tag makes s a Redis Cluster hash tag: keys that contain the same tag, and
// nothing but equal text before it, hash to the same slot, so one script or
// transaction may touch all of them. s must not contain '}'.
func Tag(s string) string { return "{" + s + "}" }

// ServerURL is a redis:// URL of the server that holds the data now, for
// tools that speak to one server (redis-cli --rdb for backups): url itself
// for one server, the current primary as the sentinels name it for
// Sentinel. A cluster spreads its data over several primaries, which one
// snapshot cannot hold, so it is refused.
func ServerURL(ctx context.Context, raw string) (string, error) {
	opts, err := ParseURL(raw)
	if err != nil {
		return "", err
	}
	switch {
	case opts.IsClusterMode:
		return "", errors.New("a Redis Cluster has no single server to snapshot: back up each primary with its own tooling")
	case opts.MasterName == "":
		return raw, nil
	}
	addr, err := masterAddr(ctx, opts)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "redis", Host: addr, Path: "/" + strconv.Itoa(opts.DB)}
	if opts.Username != "" || opts.Password != "" {
		u.User = url.UserPassword(opts.Username, opts.Password)
	}
	return u.String(), nil
}

// masterAddr asks each sentinel in turn for the primary's address.
func masterAddr(ctx context.Context, opts *goredis.UniversalOptions) (string, error) {
	var last error
	for _, a := range opts.Addrs {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: a, Username: opts.SentinelUsername,
			Password: opts.SentinelPassword, DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, MaxRetries: -1})
		hp, err := c.GetMasterAddrByName(ctx, opts.MasterName).Result()
		_ = c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the primary of %q: %v", opts.MasterName, last)
}
