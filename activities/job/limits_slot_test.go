package job

import (
	"testing"

	"github.com/acme/platform/internal/redis"
)

// admitScript touches both keys in one call: on a Redis Cluster they must
// share a slot.
func TestLimiterKeys_ShareOneClusterSlot(t *testing.T) {
	l := NewLimiter(nil, redis.Keys("platform:"), DeliveryLimits{})
	for _, p := range []string{"acme", "beta-2", "a.b_c", "x"} {
		inFlight, rateKey := l.redisKeys(p)
		if redis.Slot(inFlight) != redis.Slot(rateKey) {
			t.Errorf("%s: %q and %q are in different slots", p, inFlight, rateKey)
		}
	}
}
