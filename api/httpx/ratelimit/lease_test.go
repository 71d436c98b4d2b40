package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/testenv"
)

const (
	redisCallsMetric   = "ratelimit_redis_calls_total"
	leaseDroppedMetric = "ratelimit_lease_dropped_tokens_total"
)

// newPolicyFixture is newFixture with other quotas.
func newPolicyFixture(t *testing.T, rdb goredis.UniversalClient, keys redis.Keys, p Policies) *fixture {
	t.Helper()
	f := &fixture{log: &syncBuffer{}, reg: prometheus.NewRegistry()}
	f.l = New(rdb, keys, p, slog.New(slog.NewTextHandler(f.log, nil)), f.reg)
	return f
}

// readQuota is a policy set whose read quota is q per period; the others are
// too small to lease.
func readQuota(q int, period time.Duration) Policies {
	return Policies{
		Read:  config.Rate{Limit: q, Period: period},
		Write: config.Rate{Limit: 3, Period: time.Minute},
		Anon:  config.Rate{Limit: 2, Period: time.Minute},
	}
}

func get(principal string) *http.Request {
	return request(http.MethodGet, "/v1/jobs", principal, "192.0.2.1")
}

func TestLeaseCap_FollowsTheQuota(t *testing.T) {
	cases := map[int]int{2: 1, 3: 1, 60: 1, 99: 1, 100: 2, 300: 6, 1200: 24, 1600: 32, 1_000_000: 32}
	for q, want := range cases {
		if got := leaseCap(policy{rate: config.Rate{Limit: q, Period: time.Minute}}); got != want {
			t.Errorf("leaseCap(%d/min) = %d, want %d", q, got, want)
		}
	}
}

func TestLease_BurstOnOneKeyMakesFewRedisCalls(t *testing.T) {
	rdb, keys := testenv.Redis(t)
	commands := &commandCounter{}
	rdb.AddHook(commands)
	f := newPolicyFixture(t, rdb, keys, readQuota(1_000_000, time.Minute))
	const requests = 1000
	for i := range requests {
		if res, rec := serve(t, f.l.Principal, get("acme")); res.Status != http.StatusOK || res.RateLimit.Name != "read" {
			t.Fatalf("request %d: status %d, RateLimit %+v: %s", i, res.Status, res.RateLimit, rec.Body)
		}
	}
	calls := metricValues(t, f.reg, redisCallsMetric)["read"]
	// Leases grow with the demand seen (1, 1, 2, 4, … 32) and then hold 32:
	// about 37 calls when no lease expires; a slow run may expire a few.
	if calls > 100 {
		t.Errorf("%s = %v for %d requests on one key, want at most 100", redisCallsMetric, calls, requests)
	}
	// EVALSHA, plus EVAL when the script was not loaded yet.
	if n := commands.Load(); n > int64(calls)+4 {
		t.Errorf("%d Redis commands for %v GCRA calls", n, calls)
	}
	if diff := cmp.Diff(map[string]float64{"read/allowed": requests}, metricValues(t, f.reg, "ratelimit_decisions_total")); diff != "" {
		t.Errorf("ratelimit_decisions_total (-want +got):\n%s", diff)
	}
}

// fakeGCRA is redis_rate's GCRA script on a fake clock, so that minutes of a
// client's traffic can be simulated at once. It records the n of each call.
type fakeGCRA struct {
	now func() time.Time

	mu    sync.Mutex
	tat   map[string]time.Time
	calls []int
}

func (g *fakeGCRA) AllowN(_ context.Context, key string, limit redis_rate.Limit, n int) (*redis_rate.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, n)
	now := g.now()
	interval := limit.Period / time.Duration(limit.Rate)
	tat := g.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(interval * time.Duration(n))
	allowAt := newTAT.Add(-interval * time.Duration(limit.Burst))
	if now.Before(allowAt) {
		return &redis_rate.Result{Limit: limit, RetryAfter: allowAt.Sub(now), ResetAfter: tat.Sub(now)}, nil
	}
	g.tat[key] = newTAT
	return &redis_rate.Result{
		Limit: limit, Allowed: n, Remaining: int(now.Sub(allowAt) / interval),
		RetryAfter: -1, ResetAfter: newTAT.Sub(now),
	}, nil
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// simulated returns a limiter deciding with fakeGCRA on a fake clock.
func simulated(t *testing.T, p Policies) (*fixture, *fakeGCRA, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := &fakeGCRA{now: clock.Now, tat: map[string]time.Time{}}
	f := newPolicyFixture(t, nil, "test:sim:", p)
	f.l.gcra, f.l.now = g, clock.Now
	return f, g, clock
}

// slowClientTimes is ten minutes of a client sending one or two requests a
// second, in the patterns that tempt leasing most: a lone request, a pair
// back to back, a pair apart, and a pair straddling a lease window.
func slowClientTimes(start time.Time, seed uint64) []time.Time {
	rng := rand.New(rand.NewPCG(seed, 1))
	var at []time.Time
	for s := range 600 {
		sec := start.Add(time.Duration(s) * time.Second)
		first := sec.Add(time.Duration(rng.IntN(900)) * time.Millisecond)
		at = append(at, first)
		switch rng.IntN(4) {
		case 1:
			at = append(at, first.Add(time.Millisecond))
		case 2:
			at = append(at, first.Add(time.Duration(1+rng.IntN(99))*time.Millisecond))
		case 3:
			at = append(at, first.Add(leaseWindow-time.Millisecond))
		}
	}
	return at
}

func TestLease_SlowClientIsNeverLimited(t *testing.T) {
	// The contract's default read quota; the client sends 1–2 requests/s for
	// ten minutes of simulated time.
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			f, g, clock := simulated(t, readQuota(1200, time.Minute))
			times := slowClientTimes(clock.Now(), seed)
			for i, at := range times {
				clock.Set(at)
				if res, rec := serve(t, f.l.Principal, get("acme")); res.Status != http.StatusOK {
					t.Fatalf("request %d at +%s: status %d: %s", i, at.Sub(times[0]), res.Status, rec.Body)
				}
			}
			charged := 0
			for _, n := range g.calls {
				charged += n
			}
			// The bound leasing keeps: at most one token dropped per request
			// seen in the window before a lease.
			if charged > 2*len(times) {
				t.Errorf("charged %d tokens for %d requests, want at most twice as many", charged, len(times))
			}
			dropped := metricValues(t, f.reg, leaseDroppedMetric)["read"]
			if unused := f.l.leases.states[f.l.keys.Key("ratelimit", "read", "acme")].tokens; charged != len(times)+int(dropped)+unused {
				t.Errorf("charged %d = %d requests + %v dropped + %d unused, does not add up", charged, len(times), dropped, unused)
			}
			t.Logf("%d requests, %d Redis calls, %d tokens charged", len(times), len(g.calls), charged)
		})
	}
}

func TestLease_LoneRequestsAreDecidedOneByOne(t *testing.T) {
	f, g, clock := simulated(t, readQuota(1200, time.Minute))
	start := clock.Now()
	for i := range 50 {
		clock.Set(start.Add(time.Duration(i) * (leaseWindow + time.Millisecond)))
		serve(t, f.l.Principal, get("acme"))
	}
	if want := slices.Repeat([]int{1}, 50); !slices.Equal(g.calls, want) {
		t.Errorf("AllowN n per call = %v, want 50 × 1: a request alone in its window leases nothing", g.calls)
	}
}

func TestLease_SimulatedClientOverQuotaIsLimited(t *testing.T) {
	// The simulation's control: a client at twice the quota's rate is
	// limited after about one quota plus what refills meanwhile.
	f, _, clock := simulated(t, readQuota(1200, time.Minute))
	start := clock.Now()
	allowed := 0
	for i := range 4000 { // 40/s for 100 s
		clock.Set(start.Add(time.Duration(i) * 25 * time.Millisecond))
		if res, _ := serve(t, f.l.Principal, get("acme")); res.Status == http.StatusOK {
			allowed++
		}
	}
	// Burst 1200 plus 100 s of refill at 20/s.
	if allowed < 3150 || allowed > 3200 {
		t.Errorf("%d of 4000 allowed, want about 3200", allowed)
	}
}

// leaseFixture is a real-Redis fixture whose leases last a minute, so that
// no lease expires during a slow (-race) run and decisions are exact.
func leaseFixture(t *testing.T, p Policies) *fixture {
	t.Helper()
	rdb, keys := testenv.Redis(t)
	f := newPolicyFixture(t, rdb, keys, p)
	f.l.leases.window = time.Minute
	return f
}

func TestLease_NearQuotaDecisionsMatchSingleRequests(t *testing.T) {
	// Periods of a day, so that nothing refills during the test, and quotas
	// that divide it, so that GCRA's float arithmetic is exact.
	for _, tc := range []struct{ quota, requests int }{{100, 150}, {1600, 1700}} {
		t.Run(fmt.Sprint(tc.quota), func(t *testing.T) {
			p := readQuota(tc.quota, 24*time.Hour)
			leased, single := leaseFixture(t, p), leaseFixture(t, p)
			single.l.leases.window = 0 // as before leases: one Redis call per request
			type answer struct{ Status, R int }
			run := func(f *fixture) []answer {
				var out []answer
				for range tc.requests {
					res, rec := serve(t, f.l.Principal, get("acme"))
					if res.Status == http.StatusTooManyRequests {
						checkLimited(t, res, rec, field{"read", map[string]int{"q": tc.quota, "w": 86400}}, int(p.Read.Period.Seconds())/tc.quota)
					}
					out = append(out, answer{res.Status, res.RateLimit.Params["r"]})
				}
				return out
			}
			want := run(single)
			got := run(leased)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("leased decisions (-single +leased):\n%s", diff)
			}
			var allowed []int
			for _, a := range got {
				if a.Status == http.StatusOK {
					allowed = append(allowed, a.R)
				}
			}
			if len(allowed) != tc.quota || allowed[0] != tc.quota-1 || allowed[len(allowed)-1] != 0 {
				t.Errorf("%d allowed, r from %d to %d; want %d allowed counting down to 0", len(allowed), allowed[0], allowed[len(allowed)-1], tc.quota)
			}
			calls := metricValues(t, leased.reg, redisCallsMetric)["read"]
			t.Logf("%d requests: %v Redis calls leased, %v one by one", tc.requests, calls, metricValues(t, single.reg, redisCallsMetric)["read"])
			// Within the quota, leases of up to leaseCap; past it, one call
			// per request as before.
			lc := leaseCap(p.read())
			if limit := float64(tc.quota/lc*2 + lc + 12 + tc.requests - tc.quota); calls > limit {
				t.Errorf("%v Redis calls, want at most %v", calls, limit)
			}
		})
	}
}

// read is the read policy of ps, for leaseCap.
func (ps Policies) read() policy { return policy{name: PolicyRead, rate: ps.Read} }

func TestLease_ConcurrentBurstSpendsEveryTokenOnce(t *testing.T) {
	const quota, workers, each = 2000, 64, 40
	f := leaseFixture(t, readQuota(quota, 24*time.Hour))
	var (
		mu      sync.Mutex
		rs      []int
		limited int
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				res, rec := serve(t, f.l.Principal, get("acme"))
				mu.Lock()
				switch res.Status {
				case http.StatusOK:
					rs = append(rs, res.RateLimit.Params["r"])
				case http.StatusTooManyRequests:
					limited++
				default:
					t.Errorf("status %d: %s", res.Status, rec.Body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	key := f.l.keys.Key("ratelimit", "read", "acme")
	unused := f.l.leases.states[key].tokens
	dropped := int(metricValues(t, f.reg, leaseDroppedMetric)["read"])
	if len(rs)+limited != workers*each {
		t.Fatalf("%d allowed + %d limited of %d", len(rs), limited, workers*each)
	}
	// Never more than the quota; less only by tokens still leased, at most
	// one lease's worth.
	if len(rs)+unused+dropped != quota || unused+dropped >= leaseCap(readQuota(quota, 0).read()) {
		t.Errorf("%d allowed, %d unused in the lease, %d dropped; want them to add up to %d with under one lease unused",
			len(rs), unused, dropped, quota)
	}
	// r counts down from the quota, and stays within it.
	slices.Sort(rs)
	if rs[0] < 0 || rs[len(rs)-1] != quota-1 {
		t.Errorf("r from %d to %d, want within 0..%d, starting at %d", rs[0], rs[len(rs)-1], quota-1, quota-1)
	}
	// Each 429 is one call, as before leases; the quota itself is fetched
	// in leases of up to 32 (at least quota/32 calls). Under contention
	// leases start small and grow, and a loaded machine has measured just
	// over quota/10; without leases it would be one call per request, so
	// quota/5 still proves leasing while not failing on scheduler noise.
	calls := metricValues(t, f.reg, redisCallsMetric)["read"]
	t.Logf("%d requests from %d goroutines: %v Redis calls, %d limited", workers*each, workers, calls, limited)
	if within := int(calls) - limited; within > quota/5 {
		t.Errorf("%d Redis calls for the %d requests within the quota, want at most %d", within, len(rs), quota/5)
	}
}

func TestLease_NotUsedAfterRedisIsMarkedDown(t *testing.T) {
	rdb, keys, outage := flakyRedis(t)
	f := newPolicyFixture(t, rdb, keys, readQuota(1000, 24*time.Hour))
	f.l.leases.window = time.Minute
	f.l.health.cooldown = 50 * time.Millisecond
	f.l.timeout = 100 * time.Millisecond
	for range 10 {
		if res, _ := serve(t, f.l.Principal, get("acme")); res.Status != http.StatusOK {
			t.Fatalf("status %d", res.Status)
		}
	}
	key := keys.Key("ratelimit", "read", "acme")
	leased := f.l.leases.states[key].tokens
	if leased == 0 {
		t.Fatal("no tokens leased after 10 requests")
	}

	// A write (never leased) finds Redis gone and marks it down.
	outage.Store(true)
	serve(t, f.l.Principal, request(http.MethodPost, "/v1/jobs", "acme", "192.0.2.1"))
	if f.log.count(switchedLine) != 1 {
		t.Fatal("the write did not switch to the fallback")
	}
	res, _ := serve(t, f.l.Principal, get("acme"))
	if r := res.RateLimit.Params["r"]; res.Status != http.StatusOK || r != 999 {
		t.Errorf("read after Redis was marked down: status %d, r=%d; want the fallback's fresh bucket, r=999", res.Status, r)
	}

	// Back up: the probe asks Redis itself, and the old lease stays void.
	outage.Store(false)
	time.Sleep(60 * time.Millisecond)
	res, _ = serve(t, f.l.Principal, get("acme"))
	if want := 1000 - 10 - leased - 1; res.Status != http.StatusOK || res.RateLimit.Params["r"] != want {
		t.Errorf("first read after recovery: status %d, r=%d; want r=%d (Redis's count, the void lease spent)", res.Status, res.RateLimit.Params["r"], want)
	}
	// The next read meets the void lease: its tokens are dropped, and a new
	// lease is taken.
	res, _ = serve(t, f.l.Principal, get("acme"))
	if want := 1000 - 10 - leased - 2; res.Status != http.StatusOK || res.RateLimit.Params["r"] != want {
		t.Errorf("second read after recovery: status %d, r=%d; want r=%d", res.Status, res.RateLimit.Params["r"], want)
	}
	if got := metricValues(t, f.reg, leaseDroppedMetric)["read"]; int(got) != leased {
		t.Errorf("%s = %v, want the %d tokens of the void lease", leaseDroppedMetric, got, leased)
	}
	if f.log.count(recoveredLine) != 1 {
		t.Errorf("%q logged %d times, want once", recoveredLine, f.log.count(recoveredLine))
	}
}

func TestLease_StateIsBounded(t *testing.T) {
	f, _, clock := simulated(t, readQuota(1200, time.Minute))
	f.l.leases.max = 50
	start := clock.Now()
	for i := range 500 {
		clock.Set(start.Add(time.Duration(i) * time.Millisecond))
		for range 3 { // enough to lease
			serve(t, f.l.Principal, get(fmt.Sprint("p", i)))
		}
		if n := len(f.l.leases.states); n > 50 {
			t.Fatalf("%d lease states after %d principals, want at most 50", n, i+1)
		}
	}
	// Later, every state is idle: they go first, and nothing is left over.
	clock.Set(start.Add(time.Hour))
	for i := range 50 {
		serve(t, f.l.Principal, get(fmt.Sprint("q", i)))
	}
	for k := range f.l.leases.states {
		if !strings.Contains(k, ":q") {
			t.Errorf("idle state %s kept", k)
		}
	}
	if n := len(f.l.leases.states); n != 50 {
		t.Errorf("%d states, want the 50 new ones", n)
	}
}
