package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
)

// Token leases. Asking Redis for every request costs a round trip that, on a
// busy principal, dominates the limiter's price. Instead the process may
// charge n requests of a key's quota at once, with redis_rate's AllowN (the
// same GCRA, the same key), and hand them out locally for leaseWindow. Tokens
// still unused at expiry are dropped: they stay spent in Redis, so leasing
// never admits a request GCRA did not grant. A granted token may be used a
// little after GCRA granted it (within leaseWindow; within two for one held
// for a waiter when the next lease lands), so over any span a key is admitted
// at most what GCRA grants over that span plus 2×leaseWindow: 4 requests more
// at 1200/min, the price of the GCRA answer being a little stale.
//
// n follows the key's demand: it is the number of requests this process saw
// for the key within the leaseWindow before the current request, at least 1
// and at most leaseCap: min(maxLease, quota/leaseShare). A key whose quota is
// under 2×leaseShare, or a client sending at most two requests per window,
// always gets n = 1 and is decided by Redis exactly as without leases.
// Because a lease is never larger than the demand just seen, and a lease that
// expires with tokens left is never followed by another within the same
// window, the tokens dropped over any period are fewer than the requests seen
// in that period and the window before it: Redis is charged less than twice
// what the client asks for, so a client below half its quota is never
// limited because of leasing. When AllowN(n) is refused (fewer than n
// tokens left), the same decision asks AllowN(1), and leasing is off for the
// key until Redis said n tokens would be back: near the quota the decisions
// are redis_rate's own.
//
// Headers: a request served from a lease reports r as Redis's Remaining when
// the lease was taken plus the tokens still unused in the lease after this
// request took its own (the fetching request included). That is exactly what
// Redis would have said had each request been charged on its own at lease
// time; within a lease r only goes down. It ignores what other processes spend and the quota restored since
// the lease (at most leaseWindow's worth). t is the time until the next unit
// is restored, from the lease's ResetAfter less the time since.
const (
	// leaseWindow is how long leased tokens may be handed out, and the
	// window over which demand is counted.
	leaseWindow = 100 * time.Millisecond
	// maxLease caps n; it is also the demand history kept per key.
	maxLease = 32
	// leaseShare bounds a lease to 1/leaseShare of the quota, so that a
	// dropped lease costs at most 2% of it: 1200/min leases up to 24.
	leaseShare = 50
	// maxLeaseStates bounds the memory of lease state.
	maxLeaseStates = 10_000
	// maxWaits is how many lease fetches a request waits for before it asks
	// Redis for itself.
	maxWaits = 2
)

// errLeaseLost answers a request that waited on a lease fetch while Redis was
// marked down: it takes the fallback without counting a new failure.
var errLeaseLost = errors.New("ratelimit: redis failed while waiting for a lease")

// leaseCap is the largest lease under p; 1 means p is never leased.
func leaseCap(p policy) int {
	return max(1, min(maxLease, p.rate.Limit/leaseShare))
}

// gcra is what the limiter asks: redis_rate's Limiter.
type gcra interface {
	AllowN(ctx context.Context, key string, limit redis_rate.Limit, n int) (*redis_rate.Result, error)
}

// leaseState is one key's lease and demand.
type leaseState struct {
	class string

	// arrivals holds the times (since leases.base) of the key's last
	// requests as a ring, enough to count maxLease before the current one;
	// the first seen slots are valid.
	arrivals [maxLease + 1]time.Duration
	next     int
	seen     int

	// The current lease: tokens unused, of which reserved are held for the
	// requests that waited for it; valid until expires and while gen is the
	// leases' generation.
	tokens     int
	reserved   int
	gen        uint64
	expires    time.Time
	leasedAt   time.Time
	remaining  int           // Redis's Remaining when leased
	resetAfter time.Duration // Redis's ResetAfter when leased

	// singleUntil: AllowN(n>1) was refused; until then, n = 1.
	singleUntil time.Time

	// The fetch in flight: fetching is closed when it ends (nil when none
	// is), fetchN is its n, claims the requests waiting for one of its
	// tokens.
	fetching chan struct{}
	fetchN   int
	claims   int
}

// leases holds the lease state of every key, bounded like local.
type leases struct {
	window  time.Duration // zero or less disables leasing
	max     int
	base    time.Time
	dropped *prometheus.CounterVec

	mu     sync.Mutex
	gen    uint64 // advanced on every Redis failure: leases of older generations are void
	states map[string]*leaseState
}

func newLeases(window time.Duration, max int, dropped *prometheus.CounterVec) *leases {
	return &leases{window: window, max: max, base: time.Now(), dropped: dropped, states: make(map[string]*leaseState)}
}

// invalidate voids every lease: Redis failed, and its answers from before
// are not to be relied on.
func (ls *leases) invalidate() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.gen++
}

func (ls *leases) generation() uint64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.gen
}

// state returns key's state, creating it; ls.mu is held.
func (ls *leases) state(key, class string, now time.Time) *leaseState {
	if s, ok := ls.states[key]; ok {
		return s
	}
	if len(ls.states) >= ls.max {
		ls.evict(now)
	}
	s := &leaseState{class: class}
	ls.states[key] = s
	return s
}

// evict makes room down to 90% of max. Idle states go first (no fetch in
// flight, no valid lease, no request within the window): forgetting them
// loses nothing. Then any state without a fetch in flight goes, its unused
// tokens dropped.
func (ls *leases) evict(now time.Time) {
	target := ls.max * 9 / 10
	cutoff := now.Sub(ls.base) - ls.window
	for k, s := range ls.states {
		if s.fetching == nil && !ls.valid(s, now) && (s.seen == 0 || s.newest() <= cutoff) {
			ls.drop(s)
			delete(ls.states, k)
		}
	}
	for k, s := range ls.states {
		if len(ls.states) <= target {
			return
		}
		if s.fetching == nil {
			ls.drop(s)
			delete(ls.states, k)
		}
	}
}

// valid reports whether s holds a lease that may be used; ls.mu is held.
func (ls *leases) valid(s *leaseState, now time.Time) bool {
	return s.tokens > 0 && s.gen == ls.gen && now.Before(s.expires)
}

// drop discards s's unused tokens; ls.mu is held.
func (ls *leases) drop(s *leaseState) {
	if s.tokens > 0 {
		ls.dropped.WithLabelValues(s.class).Add(float64(s.tokens))
	}
	s.tokens, s.reserved = 0, 0
}

func (s *leaseState) arrive(at time.Duration) {
	s.arrivals[s.next] = at
	s.next = (s.next + 1) % len(s.arrivals)
	s.seen = min(s.seen+1, len(s.arrivals))
}

func (s *leaseState) newest() time.Duration {
	return s.arrivals[(s.next+len(s.arrivals)-1)%len(s.arrivals)]
}

// demand counts the recorded requests after cutoff.
func (s *leaseState) demand(cutoff time.Duration) int {
	n := 0
	for _, at := range s.arrivals[:s.seen] {
		if at > cutoff {
			n++
		}
	}
	return n
}

// take hands out one leased token: a reserved one to a request that claimed
// it, else one nobody waits for; ls.mu is held.
func (ls *leases) take(s *leaseState, p policy, now time.Time, claimed bool) (decision, bool) {
	if !ls.valid(s, now) {
		ls.drop(s)
		return decision{}, false
	}
	switch {
	case claimed && s.reserved > 0:
		s.reserved--
	case s.tokens > s.reserved:
	default:
		return decision{}, false
	}
	s.tokens--
	return decision{
		allowed:   true,
		remaining: s.remaining + s.tokens,
		next:      untilNextUnit(s.resetAfter-now.Sub(s.leasedAt), p.interval()),
	}, true
}

// leased decides a request of key under p from the key's lease, or fetches a
// lease, or asks Redis for this request alone. asked reports whether Redis
// was asked.
//
// One fetch per key is in flight at a time. A request that finds one claims
// one of its tokens, if it has one left for a claim, and waits: the fetch is
// already on its way, so waiting costs at most the round trip the request
// would pay anyway, and the lease holds the claimed tokens for the waiters.
// Asking Redis instead would put one more script in the queue of a Redis
// that shares the CPU with everything else, which is what slows every
// request down. When the fetch in flight is fully claimed, the request waits
// for it to end without a claim, once, and then claims from the next fetch,
// fetches it, or asks Redis alone: no request waits for more than two
// fetches, and most for at most one.
func (l *Limiter) leased(ctx context.Context, key string, p policy, limit int) (d decision, asked bool, err error) {
	ls := l.leases
	claimed := false
	for waits := 0; ; waits++ {
		now := l.now()
		ls.mu.Lock()
		s := ls.state(key, p.name, now)
		if waits == 0 {
			s.arrive(now.Sub(ls.base))
		}
		if d, ok := ls.take(s, p, now, claimed); ok {
			ls.mu.Unlock()
			return d, false, nil
		}
		claimed = false
		if ch := s.fetching; ch != nil && waits < maxWaits {
			if s.claims < s.fetchN-1 {
				s.claims++
				claimed = true
			} else if waits > 0 {
				ls.mu.Unlock()
				d, err := l.single(ctx, key, p)
				return d, true, err
			}
			gen := ls.gen
			ls.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				ls.mu.Lock()
				if claimed && s.fetching == ch {
					s.claims--
					claimed = false
				}
				ls.mu.Unlock()
			}
			if ls.generation() != gen {
				return decision{}, false, errLeaseLost
			}
			continue
		}
		n := 1
		if s.fetching == nil && !now.Before(s.singleUntil) {
			// The requests before this one within the window.
			n = min(limit, s.demand(now.Sub(ls.base)-ls.window)-1)
		}
		if n <= 1 {
			ls.mu.Unlock()
			d, err := l.single(ctx, key, p)
			return d, true, err
		}
		s.fetching, s.fetchN, s.claims = make(chan struct{}), n, 0
		gen := ls.gen
		ls.mu.Unlock()
		d, err := l.fetch(ctx, key, p, n, s, gen)
		return d, true, err
	}
}

// fetch leases n tokens of key for s, taking one for this request and
// holding those claimed meanwhile for their waiters. If Redis refuses n, the
// same decision asks for this request alone, and the waiters find no lease
// and ask for themselves.
func (l *Limiter) fetch(ctx context.Context, key string, p policy, n int, s *leaseState, gen uint64) (d decision, err error) {
	ls := l.leases
	var res *redis_rate.Result
	refusedFor := time.Duration(0)
	// Deferred, so that the waiters are released even on a panic.
	defer func() {
		now := l.now()
		ls.mu.Lock()
		defer ls.mu.Unlock()
		if refusedFor > 0 {
			s.singleUntil = now.Add(refusedFor)
		}
		if err == nil && refusedFor == 0 && res != nil {
			d.remaining = res.Remaining + ls.install(s, res, n, gen, now)
		}
		close(s.fetching)
		s.fetching, s.fetchN, s.claims = nil, 0, 0
	}()

	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if res, err = l.allowN(ctx, key, p, n); err != nil {
		return decision{}, err
	}
	if res.Allowed == 0 {
		refusedFor = max(res.RetryAfter, time.Nanosecond)
		if res, err = l.allowN(ctx, key, p, 1); err != nil {
			return decision{}, err
		}
		return redisDecision(res, p), nil
	}
	return decision{allowed: true, next: untilNextUnit(res.ResetAfter, p.interval())}, nil
}

// install makes res, a grant of n tokens of which the fetching request takes
// one, s's lease, and returns the tokens left in it (for r). Reservations of the
// previous lease that its waiters have not taken yet carry over. If Redis
// failed since the fetch began, the lease is void and its tokens dropped.
// ls.mu is held.
func (ls *leases) install(s *leaseState, res *redis_rate.Result, n int, gen uint64, now time.Time) int {
	if ls.gen != gen {
		ls.dropped.WithLabelValues(s.class).Add(float64(n - 1))
		return 0
	}
	carried := 0
	if ls.valid(s, now) {
		carried = min(s.reserved, s.tokens)
	}
	s.tokens -= carried
	ls.drop(s)
	s.tokens, s.reserved = carried+n-1, carried+min(s.claims, n-1)
	s.gen, s.expires, s.leasedAt = gen, now.Add(ls.window), now
	s.remaining, s.resetAfter = res.Remaining, res.ResetAfter
	return s.tokens
}

// single asks Redis for one request, as the limiter did before leases.
func (l *Limiter) single(ctx context.Context, key string, p policy) (decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := l.allowN(ctx, key, p, 1)
	if err != nil {
		return decision{}, err
	}
	return redisDecision(res, p), nil
}

func (l *Limiter) allowN(ctx context.Context, key string, p policy, n int) (*redis_rate.Result, error) {
	l.metrics.redisCalls.WithLabelValues(p.name).Inc()
	return l.gcra.AllowN(ctx, key, p.limit(), n)
}

func redisDecision(res *redis_rate.Result, p policy) decision {
	if res.Allowed == 0 {
		return decision{next: res.RetryAfter}
	}
	return decision{allowed: true, remaining: res.Remaining, next: untilNextUnit(res.ResetAfter, p.interval())}
}
