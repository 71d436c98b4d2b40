package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Supervisor keeps N children of one target running, N being the count in
// the target's desired file (Initial until a driver writes one). A removed
// child gets SIGTERM and is given StopTimeout to drain (a worker finishes
// its running activities; an API replica its requests) before SIGKILL; a
// child that exits on its own is replaced.
type Supervisor struct {
	Dir     string
	Target  string
	Initial int32
	// Reset makes Initial the desired count at start even when a driver
	// wrote another before (platform dev comes up the same every time).
	Reset bool
	// Command makes the child with the given index, whose ops listener
	// (/readyz, /metrics) must be at opsAddr.
	Command func(index int, opsAddr string) *exec.Cmd
	// Tick is how often it reconciles and probes; 0 means 500 ms.
	Tick time.Duration
	// StopTimeout bounds a removed child's drain; 0 means 30 s.
	StopTimeout time.Duration
	Log         *slog.Logger

	mu       sync.Mutex
	children []*child
	draining sync.WaitGroup
	nDrain   int
	// drainingIdx holds the indexes of draining children: a new child does
	// not take an index (and so a port) until its holder has exited.
	drainingIdx map[int]bool
}

type child struct {
	index   int
	opsAddr string
	cmd     *exec.Cmd
	exited  chan struct{}
	ready   bool
}

// Run supervises until ctx is done, then stops every child gracefully.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.Dir, err)
	}
	if s.Tick == 0 {
		s.Tick = 500 * time.Millisecond
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = 30 * time.Second
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if err := s.initDesired(); err != nil {
		return err
	}
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.stopAll()
			return nil
		case <-t.C:
		}
	}
}

// initDesired writes Initial as the desired count when no driver has, or
// with Reset.
func (s *Supervisor) initDesired() error {
	var d Desired
	err := readJSON(desiredPath(s.Dir, s.Target), &d)
	if s.Reset || errors.Is(err, fs.ErrNotExist) || (err == nil && d.Replicas < 0) {
		return writeJSON(desiredPath(s.Dir, s.Target), Desired{Replicas: s.Initial, UpdatedAt: time.Now().UTC()})
	}
	return err
}

func (s *Supervisor) desired() int32 {
	var d Desired
	if err := readJSON(desiredPath(s.Dir, s.Target), &d); err != nil {
		s.Log.Warn("desired count unreadable; keeping the current one", "error", err)
		return int32(len(s.children))
	}
	return d.Replicas
}

// reconcile replaces exited children, starts or stops children to match
// the desired count, probes readiness and writes the status.
func (s *Supervisor) reconcile(ctx context.Context) {
	want := s.desired()
	s.mu.Lock()
	alive := s.children[:0]
	for _, c := range s.children {
		select {
		case <-c.exited:
			s.Log.Warn("child exited; replacing it", "target", s.Target, "index", c.index)
		default:
			alive = append(alive, c)
		}
	}
	s.children = alive
	for int32(len(s.children)) > want {
		last := s.children[len(s.children)-1]
		s.children = s.children[:len(s.children)-1]
		s.drain(last)
	}
	s.mu.Unlock()
	for int32(len(s.children)) < want {
		if err := s.start(); err != nil {
			s.Log.Error("child not started", "target", s.Target, "error", err)
			break
		}
	}
	s.probe(ctx)
	s.writeStatus(want)
}

// freeIndex is the lowest index no live or draining child holds. Called
// with mu held.
func (s *Supervisor) freeIndex() int {
	used := map[int]bool{}
	for _, c := range s.children {
		used[c.index] = true
	}
	for i := 0; ; i++ {
		if !used[i] && !s.drainingIdx[i] {
			return i
		}
	}
}

func (s *Supervisor) start() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.mu.Lock()
	idx := s.freeIndex()
	s.mu.Unlock()
	cmd := s.Command(idx, addr)
	// Its own process group: a Ctrl-C to the supervisor's terminal does not
	// reach the children; the supervisor stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s child %d: %w", s.Target, idx, err)
	}
	c := &child{index: idx, opsAddr: addr, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	s.Log.Info("child started", "target", s.Target, "index", idx, "pid", cmd.Process.Pid, "ops_addr", addr)
	return nil
}

// drain sends SIGTERM and, after StopTimeout, SIGKILL. Called with mu held.
func (s *Supervisor) drain(c *child) {
	s.Log.Info("child draining", "target", s.Target, "index", c.index, "pid", c.cmd.Process.Pid)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	s.nDrain++
	if s.drainingIdx == nil {
		s.drainingIdx = map[int]bool{}
	}
	s.drainingIdx[c.index] = true
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		select {
		case <-c.exited:
		case <-time.After(s.StopTimeout):
			s.Log.Warn("child did not drain in time; killing it", "target", s.Target, "index", c.index)
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		s.mu.Lock()
		s.nDrain--
		delete(s.drainingIdx, c.index)
		s.mu.Unlock()
	}()
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	for len(s.children) > 0 {
		last := s.children[len(s.children)-1]
		s.children = s.children[:len(s.children)-1]
		s.drain(last)
	}
	s.mu.Unlock()
	s.draining.Wait()
	_ = os.Remove(statusPath(s.Dir, s.Target))
}

func (s *Supervisor) probe(ctx context.Context) {
	s.mu.Lock()
	kids := append([]*child(nil), s.children...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range kids {
		wg.Go(func() { c.ready = readyz(ctx, c.opsAddr) })
	}
	wg.Wait()
}

var probeClient = &http.Client{Timeout: time.Second}

func readyz(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Supervisor) writeStatus(want int32) {
	s.mu.Lock()
	st := Status{Desired: want, Draining: s.nDrain, Children: []Child{}, UpdatedAt: time.Now().UTC()}
	for _, c := range s.children {
		st.Children = append(st.Children, Child{Index: c.index, PID: c.cmd.Process.Pid, OpsAddr: c.opsAddr, Ready: c.ready})
		if c.ready {
			st.Ready++
		}
	}
	s.mu.Unlock()
	if err := writeJSON(statusPath(s.Dir, s.Target), st); err != nil {
		s.Log.Error("status not written", "target", s.Target, "error", err)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
