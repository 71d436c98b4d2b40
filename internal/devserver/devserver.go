// Package devserver starts and stops a Temporal development server (the
// Temporal CLI's "server start-dev") for platform dev and for tests.
package devserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
)

// Options says how to start the server.
type Options struct {
	CLI       string // path to the temporal binary
	IP        string // default 127.0.0.1
	Port      int    // frontend gRPC port; 0 picks a free one
	UIPort    int    // Web UI port; ignored when Headless
	Headless  bool   // no Web UI
	DBFile    string // SQLite file; empty keeps state in memory
	Namespace string // created at launch besides "default"
	// Output receives the server's own log lines, each prefixed with
	// "temporal | "; nil discards them.
	Output io.Writer
}

// Server is a running dev server.
type Server struct {
	Address  string
	cmd      *exec.Cmd
	done     chan struct{}
	stopping atomic.Bool
}

// Answers reports whether a Temporal frontend answers at address.
func Answers(ctx context.Context, address string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Logger: quiet{},
		ConnectionOptions: client.ConnectionOptions{GetSystemInfoTimeout: 2 * time.Second}})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// Start launches the server and waits until its frontend answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	if _, err := os.Stat(o.CLI); err != nil {
		return nil, fmt.Errorf("temporal CLI not found at %s (run make bin/temporal): %w", o.CLI, err)
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	cmd := exec.Command(o.CLI, args(o)...)
	// Its own process group: Ctrl-C in a terminal reaches the platform, which
	// then stops the server itself after the worker has stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("pipe temporal output: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	s := &Server{Address: net.JoinHostPort(o.IP, strconv.Itoa(o.Port)), cmd: cmd, done: make(chan struct{})}
	go func() { s.forward(out, o.Output); _ = cmd.Wait(); close(s.done) }()
	if err := s.wait(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func args(o Options) []string {
	a := []string{"server", "start-dev", "--ip", o.IP, "--port", strconv.Itoa(o.Port), "--log-level", "warn"}
	if o.Headless {
		a = append(a, "--headless")
	} else if o.UIPort != 0 {
		a = append(a, "--ui-port", strconv.Itoa(o.UIPort))
	}
	if o.DBFile != "" {
		a = append(a, "--db-filename", o.DBFile)
	}
	if o.Namespace != "" && o.Namespace != "default" {
		a = append(a, "--namespace", o.Namespace)
	}
	return a
}

func (s *Server) wait(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("temporal dev server exited during start; see its log above")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if Answers(ctx, s.Address) {
			return nil
		}
	}
	return fmt.Errorf("temporal dev server did not answer at %s within %s", s.Address, limit)
}

// Stop terminates the server and waits for it to exit.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	// Its shutdown chatter (pollers losing their connection) is expected.
	s.stopping.Store(true)
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// FreePort asks the kernel for a free TCP port on the loopback interface.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) forward(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if w != nil && !s.stopping.Load() && len(sc.Bytes()) > 0 {
			fmt.Fprintf(w, "temporal | %s\n", sc.Bytes())
		}
	}
}

// quiet drops the SDK's log lines while probing.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
