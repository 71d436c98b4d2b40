package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"
)

// heartbeatEvery is how often long activities heartbeat; the workflow's
// heartbeat timeout must be a few times longer.
const heartbeatEvery = 5 * time.Second

// keepAlive heartbeats until the returned stop is called, so a lost worker
// is noticed and a cancellation reaches the activity's context.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// tool is an external program with the environment that carries its
// secrets: passwords go through the environment (PGPASSWORD,
// REDISCLI_AUTH), never argv, which every local user can read in ps.
type tool struct {
	path string
	args []string
	env  []string
}

func (t tool) command(ctx context.Context) (*exec.Cmd, *tailBuffer) {
	cmd := exec.CommandContext(ctx, t.path, t.args...)
	cmd.Env = append(os.Environ(), t.env...)
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	return cmd, stderr
}

func (t tool) failed(err error, stderr *tailBuffer) error {
	msg := bytes.TrimSpace(stderr.buf)
	if len(msg) > 0 {
		return fmt.Errorf("%s: %w: %s", filepath.Base(t.path), err, msg)
	}
	return fmt.Errorf("%s: %w", filepath.Base(t.path), err)
}

// run runs the tool with stdin (may be nil) and waits for it.
func (t tool) run(ctx context.Context, stdin io.Reader) error {
	cmd, stderr := t.command(ctx)
	cmd.Stdin = stdin
	if err := cmd.Run(); err != nil {
		return t.failed(err, stderr)
	}
	return nil
}

// stream runs the tool and hands its standard output to consume; the tool
// is stopped when consume fails, and consume sees the tool's failure as a
// read error.
func (t tool) stream(ctx context.Context, consume func(io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	cmd, stderr := t.command(ctx)
	cmd.Stdout = pw
	runErr := make(chan error, 1)
	go func() {
		err := cmd.Run()
		if err != nil {
			err = t.failed(err, stderr)
		}
		_ = pw.CloseWithError(err) // nil closes with EOF
		runErr <- err
	}()
	err := consume(pr)
	if err != nil {
		cancel()
		_ = pr.CloseWithError(err)
	}
	if rerr := <-runErr; rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// tailBuffer keeps the last max bytes written: enough of a tool's stderr to
// say why it failed.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

// pgTool returns a Postgres client tool (pg_dump, pg_restore) from binDir
// (empty: PATH) connecting to databaseURL, its password moved into the
// environment.
func pgTool(binDir, name, databaseURL string, args ...string) (tool, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return tool{}, errors.New("parse database url: not a URL") // the URL may hold a password
	}
	t := tool{path: name, env: []string{"PGAPPNAME=platform-drill"}}
	if binDir != "" {
		t.path = filepath.Join(binDir, name)
	}
	if p, ok := u.User.Password(); ok {
		t.env = append(t.env, "PGPASSWORD="+p)
		u.User = url.User(u.User.Username())
	}
	if q := u.Query(); q.Has("password") {
		t.env = append(t.env, "PGPASSWORD="+q.Get("password"))
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	t.args = append(args, "--dbname="+u.String())
	return t, nil
}

// withDatabase returns databaseURL naming database name instead.
func withDatabase(databaseURL, name string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", errors.New("parse database url: not a URL")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redisCLI returns redis-cli connecting to the server of redisURL, its
// password in REDISCLI_AUTH.
func redisCLI(bin, redisURL string, args ...string) (tool, error) {
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return tool{}, errors.New("parse redis url: not a redis URL")
	}
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return tool{}, fmt.Errorf("redis address: %w", err)
	}
	t := tool{path: bin, args: []string{"-h", host, "-p", port}}
	if opts.Username != "" {
		t.args = append(t.args, "--user", opts.Username)
	}
	if opts.Password != "" {
		t.env = append(t.env, "REDISCLI_AUTH="+opts.Password)
	}
	if opts.TLSConfig != nil {
		t.args = append(t.args, "--tls")
	}
	t.args = append(t.args, args...)
	return t, nil
}
