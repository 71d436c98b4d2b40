package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/internal/config"
)

func TestLocal_RefusesOverQuotaAndTellsWhenTheNextRequestFits(t *testing.T) {
	c := newLocal(100)
	q := config.Rate{Limit: 3, Period: time.Minute}
	now := time.Now()
	var got []decision
	for range 4 {
		got = append(got, c.allow("k", q, now))
	}
	want := []decision{
		{allowed: true, remaining: 2, next: 20 * time.Second},
		{allowed: true, remaining: 1, next: 20 * time.Second},
		{allowed: true, remaining: 0, next: 20 * time.Second},
		{next: 20 * time.Second},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(decision{}), cmpApproxDuration); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if d := c.allow("k", q, now.Add(20*time.Second)); !d.allowed {
		t.Error("refused after one interval")
	}
}

var cmpApproxDuration = cmp.Comparer(func(a, b time.Duration) bool {
	return (a - b).Abs() < time.Millisecond
})

func TestLocal_EvictionBoundsMemory(t *testing.T) {
	c := newLocal(100)
	q := config.Rate{Limit: 3, Period: time.Minute}
	now := time.Now()
	c.allow("busy", q, now)
	for i := range 1000 {
		c.allow(fmt.Sprint("ip-", i), q, now)
		if len(c.buckets) > 100 {
			t.Fatalf("%d buckets after %d subjects, want at most 100", len(c.buckets), i+1)
		}
	}
	// Later, idle buckets are full again: they go first, losslessly.
	c2 := newLocal(10)
	for i := range 10 {
		c2.allow(fmt.Sprint("ip-", i), q, now)
	}
	c2.allow("new", q, now.Add(time.Minute))
	if len(c2.buckets) != 1 {
		t.Errorf("%d buckets, want only the new one after evicting full ones", len(c2.buckets))
	}
}

func TestUntilNextUnit_IsTheRemainderOfTheResetTime(t *testing.T) {
	interval := 200 * time.Millisecond
	cases := []struct {
		resetAfter, want time.Duration
	}{
		{0, 0},
		{200 * time.Millisecond, 200 * time.Millisecond},
		{199999988 * time.Nanosecond, 199999988 * time.Nanosecond},
		{200*time.Millisecond + 40*time.Nanosecond, 200*time.Millisecond + 40*time.Nanosecond}, // float noise
		{1500 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := untilNextUnit(tc.resetAfter, interval); got != tc.want {
			t.Errorf("untilNextUnit(%s) = %s, want %s", tc.resetAfter, got, tc.want)
		}
	}
}

func TestSeconds_RoundsUpToAtLeastOne(t *testing.T) {
	cases := map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 19999 * time.Millisecond: 20}
	for d, want := range cases {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestIsRead_GetHeadAndOFREPEvaluations(t *testing.T) {
	cases := []struct {
		method, path string
		want         bool
	}{
		{http.MethodGet, "/v1/jobs", true},
		{http.MethodHead, "/v1/jobs", true},
		{http.MethodPost, "/ofrep/v1/evaluate/flags/new-ui", true},
		{http.MethodPost, "/ofrep/v1/evaluate/flags", true},
		{http.MethodPost, "/v1/jobs", false},
		{http.MethodPut, "/v1/flags/x", false},
		{http.MethodPatch, "/v1/flags/x", false},
		{http.MethodDelete, "/v1/keys/key_1", false},
		{http.MethodOptions, "/v1/jobs", false},
		{http.MethodPut, "/ofrep/v1/evaluate/flags/x", false},
		{http.MethodPost, "/ofrep/v1/evaluate/../../../v1/jobs", false},
		{http.MethodPost, "/ofrep/v1/evaluatex", false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "/", nil)
		r.URL.Path = tc.path
		if got := isRead(r); got != tc.want {
			t.Errorf("isRead(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestClientIP_FromRemoteAddrOnly(t *testing.T) {
	cases := []struct {
		remoteAddr, forwarded, want string
	}{
		{"192.0.2.1:5000", "", "192.0.2.1"},
		{"192.0.2.1:5000", "198.51.100.7", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5000", "", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:5000", "", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:5000", "", "fe80::/64"},
		{"192.0.2.1", "", "192.0.2.1"},
		{"not-an-address", "", "not-an-address"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remoteAddr
		if tc.forwarded != "" {
			r.Header.Set("X-Forwarded-For", tc.forwarded)
		}
		if got := clientIP(r); got != tc.want {
			t.Errorf("clientIP(%q) = %q, want %q", tc.remoteAddr, got, tc.want)
		}
	}
}
