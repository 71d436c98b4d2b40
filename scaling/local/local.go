// Package local is the local scaling driver and the supervisor it drives.
// A supervisor (platform supervise, or platform dev for the worker) runs N
// child processes of one target and keeps their number equal to the count
// in a small state file; the driver, in whichever worker runs the scaling
// activity, writes that file and reads the supervisor's status file.
//
// Files, not a control endpoint: the driver needs no address of the
// supervisor (any process on the machine that can write the directory can
// drive it, which is also its security boundary: keep it 0700), a desired
// count survives a supervisor restart, and both sides are a rename away
// from a consistent read. Per target, in the state directory:
//
//	<target>.desired.json  {"replicas": 3, "updated_at": …}     written by the driver
//	<target>.status.json   {"desired": 3, "ready": 2, "children": […], "updated_at": …}  by the supervisor
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Desired is the driver's file.
type Desired struct {
	Replicas  int32     `json:"replicas"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Child is one child process in the status.
type Child struct {
	Index   int    `json:"index"`
	PID     int    `json:"pid"`
	OpsAddr string `json:"ops_addr"`
	Ready   bool   `json:"ready"`
}

// Status is the supervisor's file.
type Status struct {
	Desired   int32     `json:"desired"`
	Ready     int32     `json:"ready"`
	Draining  int       `json:"draining"`
	Children  []Child   `json:"children"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StaleAfter is how old a status may be before the driver reports the
// supervisor gone.
const StaleAfter = 10 * time.Second

func desiredPath(dir, target string) string { return filepath.Join(dir, target+".desired.json") }
func statusPath(dir, target string) string  { return filepath.Join(dir, target+".status.json") }

// writeJSON writes v to path atomically (a temporary file renamed over it).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Driver scales targets run by supervisors sharing its state directory.
type Driver struct {
	Dir string
}

// ErrNoSupervisor says no supervisor runs the target.
var ErrNoSupervisor = errors.New("no supervisor runs this target (start platform supervise)")

// Scale sets the target's desired count; the supervisor starts or stops
// children to match.
func (d Driver) Scale(ctx context.Context, target string, replicas int32) error {
	if _, err := d.status(target); err != nil {
		return err
	}
	return writeJSON(desiredPath(d.Dir, target), Desired{Replicas: replicas, UpdatedAt: time.Now().UTC()})
}

// Replicas returns the desired count (the driver's file, else the
// supervisor's) and the ready children.
func (d Driver) Replicas(ctx context.Context, target string) (desired, ready int32, err error) {
	st, err := d.status(target)
	if err != nil {
		return 0, 0, err
	}
	var want Desired
	if err := readJSON(desiredPath(d.Dir, target), &want); err == nil {
		return want.Replicas, st.Ready, nil
	}
	return st.Desired, st.Ready, nil
}

// Endpoints returns the ops addresses (host:port) of the target's live
// children, for reading their metrics and probes.
func (d Driver) Endpoints(ctx context.Context, target string) ([]string, error) {
	st, err := d.status(target)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range st.Children {
		out = append(out, c.OpsAddr)
	}
	return out, nil
}

func (d Driver) status(target string) (Status, error) {
	var st Status
	err := readJSON(statusPath(d.Dir, target), &st)
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("%s: %w", target, ErrNoSupervisor)
	}
	if err != nil {
		return st, fmt.Errorf("read the %s supervisor's status: %w", target, err)
	}
	if time.Since(st.UpdatedAt) > StaleAfter {
		return st, fmt.Errorf("%s: status is %s old: %w", target, time.Since(st.UpdatedAt).Round(time.Second), ErrNoSupervisor)
	}
	return st, nil
}
