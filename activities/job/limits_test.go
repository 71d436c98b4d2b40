package job

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/testenv"
)

// Two limiters over one Redis are two worker replicas: the in-flight cap is
// the principal's across both, another principal has its own, and a
// released slot is free again at once.
func TestLimiter_InFlightCapIsSharedAcrossReplicasPerPrincipal(t *testing.T) {
	rdb, keys := testenv.Redis(t)
	limits := DeliveryLimits{MaxInFlight: 3, Rate: 1000, Period: time.Second, Lease: time.Minute}
	replicas := []*Limiter{NewLimiter(rdb, keys, limits), NewLimiter(rdb, keys, limits)}
	ctx := t.Context()
	var releases []func()
	for i := range 3 {
		release, _, throttled := replicas[i%2].Acquire(ctx, "acme", fmt.Sprint("d", i))
		if throttled {
			t.Fatalf("delivery %d throttled under the cap", i)
		}
		releases = append(releases, release)
	}
	if _, wait, throttled := replicas[1].Acquire(ctx, "acme", "d3"); !throttled || wait != 0 {
		t.Errorf("fourth delivery: throttled %v, wait %s; want throttled until a release", throttled, wait)
	}
	if _, _, throttled := replicas[0].Acquire(ctx, "beta", "b0"); throttled {
		t.Error("another principal is throttled by acme's deliveries")
	}
	releases[0]()
	if _, _, throttled := replicas[1].Acquire(ctx, "acme", "d4"); throttled {
		t.Error("a released slot is not free again")
	}
}

// A worker that dies holding a slot gives it back when its lease expires.
func TestLimiter_ExpiredLeaseFreesTheSlot(t *testing.T) {
	rdb, keys := testenv.Redis(t)
	l := NewLimiter(rdb, keys, DeliveryLimits{MaxInFlight: 1, Lease: 300 * time.Millisecond})
	if _, _, throttled := l.Acquire(t.Context(), "acme", "crashed"); throttled {
		t.Fatal("first delivery throttled")
	}
	if _, _, throttled := l.Acquire(t.Context(), "acme", "next"); !throttled {
		t.Fatal("second delivery admitted over the cap")
	}
	time.Sleep(400 * time.Millisecond)
	if _, _, throttled := l.Acquire(t.Context(), "acme", "next"); throttled {
		t.Error("the expired lease still holds the slot")
	}
}

// The rate limit counts deliveries begun per period, per principal, and
// says how long until the next one may begin.
func TestLimiter_RatePerPrincipalSaysWhenToTryAgain(t *testing.T) {
	rdb, keys := testenv.Redis(t)
	l := NewLimiter(rdb, keys, DeliveryLimits{MaxInFlight: 100, Rate: 5, Period: time.Second})
	for i := range 5 {
		release, _, throttled := l.Acquire(t.Context(), "acme", fmt.Sprint("r", i))
		if throttled {
			t.Fatalf("delivery %d throttled under the rate", i)
		}
		release()
	}
	_, wait, throttled := l.Acquire(t.Context(), "acme", "r5")
	if !throttled || wait <= 0 || wait > time.Second {
		t.Errorf("sixth delivery in a second: throttled %v, wait %s; want throttled for at most 1s", throttled, wait)
	}
	if _, _, throttled := l.Acquire(t.Context(), "beta", "b0"); throttled {
		t.Error("another principal is limited by acme's rate")
	}
}

// With Redis unreachable the limits hold per process, and no delivery
// fails because of Redis.
func TestLimiter_RedisDownFallsBackToProcessLimits(t *testing.T) {
	dead := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	l := NewLimiter(dead, "test:", DeliveryLimits{MaxInFlight: 2, Rate: 1000, Period: time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	release, _, throttled := l.Acquire(ctx, "acme", "a")
	_, _, throttled2 := l.Acquire(ctx, "acme", "b")
	_, _, throttled3 := l.Acquire(ctx, "acme", "c")
	if throttled || throttled2 || !throttled3 {
		t.Fatalf("throttled %v %v %v, want the third over the per-process cap of 2", throttled, throttled2, throttled3)
	}
	release()
	if _, _, throttled := l.Acquire(ctx, "acme", "d"); throttled {
		t.Error("a released local slot is not free again")
	}
}
