package database

import (
	"testing"
	"time"
)

// fakeRouter is a router over replicas in the given states, with the
// primary's positions samples, and no pools.
func fakeRouter(opts RouterOptions, samples []sample, states ...replicaState) *Router {
	r := &Router{opts: opts, samples: samples}
	for i := range states {
		rep := &replica{}
		rep.state.Store(&states[i])
		r.replicas = append(r.replicas, rep)
	}
	return r
}

func TestRouter_Pick(t *testing.T) {
	now := time.Now()
	// The primary was at 100 until 3s ago, at 200 since.
	samples := []sample{{now.Add(-10 * time.Second), 100}, {now.Add(-3 * time.Second), 100}, {now.Add(-2900 * time.Millisecond), 200}, {now, 200}}
	opts := RouterOptions{MaxLagTime: 5 * time.Second, PollInterval: time.Second, WriteTTL: 30 * time.Second}
	fresh := func(replayed uint64) replicaState { return replicaState{ok: true, replayed: replayed, polledAt: now} }
	cases := []struct {
		name   string
		opts   RouterOptions
		last   uint64
		states []replicaState
		want   string // "" picks a replica
	}{
		{"current replica, no write", opts, 0, []replicaState{fresh(200)}, ""},
		{"replayed the principal's write", opts, 200, []replicaState{fresh(200)}, ""},
		{"behind the principal's write, within the bound", opts, 150, []replicaState{fresh(100)}, ReasonNotReplayed},
		{"3s behind, bound 2s", RouterOptions{MaxLagTime: 2 * time.Second, PollInterval: time.Second}, 0, []replicaState{fresh(100)}, ReasonLagging},
		{"write TTL caps the time bound", RouterOptions{MaxLagTime: time.Minute, WriteTTL: 2 * time.Second, PollInterval: time.Second}, 0, []replicaState{fresh(100)}, ReasonLagging},
		{"100 bytes behind, bound 50 bytes", RouterOptions{MaxLagBytes: 50, PollInterval: time.Second}, 0, []replicaState{fresh(100)}, ReasonLagging},
		{"100 bytes behind, bound 500 bytes", RouterOptions{MaxLagBytes: 500, PollInterval: time.Second}, 0, []replicaState{fresh(100)}, ""},
		{"behind the whole window", opts, 0, []replicaState{fresh(50)}, ReasonLagging},
		{"down", opts, 0, []replicaState{{polledAt: now}}, ReasonUnreachable},
		{"last poll too old", opts, 0, []replicaState{{ok: true, replayed: 200, polledAt: now.Add(-time.Minute)}}, ReasonUnreachable},
		{"one of two usable", opts, 200, []replicaState{{polledAt: now}, fresh(200)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fakeRouter(c.opts, samples, c.states...)
			rep, reason := r.pick(c.last, now)
			if reason != c.want || (rep == nil) != (c.want != "") {
				t.Fatalf("pick = %v, %q; want reason %q", rep, reason, c.want)
			}
		})
	}
}

func TestRouter_SamplesKeepOneWindow(t *testing.T) {
	r := fakeRouter(RouterOptions{MaxLagTime: time.Second, PollInterval: 100 * time.Millisecond}, nil)
	start := time.Now()
	for i := range 1000 {
		r.addSample(sample{at: start.Add(time.Duration(i) * 100 * time.Millisecond), lsn: uint64(i)})
	}
	// window = 2×1s + 2×100ms = 2.2s: 23 samples.
	if n := len(r.samples); n < 22 || n > 24 {
		t.Fatalf("%d samples kept, want about 23", n)
	}
}
