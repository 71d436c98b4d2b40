package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/platform/internal/devserver"
)

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Process is a server a test started; Stop kills it and waits, and runs in
// t.Cleanup as well.
type Process struct {
	Name string
	Addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs bin args with its output in dir/name.log and waits up to 10s
// for addr to accept connections; the process is killed when the test ends.
func Start(t testing.TB, dir, name, addr, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Addr: addr, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); _ = out.Close(); close(p.done) }()
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited at start: %s", name, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s: %s", name, addr, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the process (by its PID) and waits for it to exit.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Log returns the process's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return fmt.Sprintf("%s output:\n%s", p.Name, b)
}
