package idempotency_test

import (
	"testing"
	"time"

	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/testenv"
)

// Every script of the store touches the record and the binding together, so
// on a Redis Cluster both must hash to one slot, whatever the principal and
// the key hold, while different keys spread over the cluster.
func TestRedisKeys_ShareOneClusterSlot(t *testing.T) {
	principals := []string{"acme", "a{b", "x}y", "{}", "p:{q}:r"}
	keys := []string{"k1", "order-42", "{", "}{", "a:b:c", "ключ"}
	slots := map[int]bool{}
	for _, prefix := range []string{"platform:", "test:0123:", ""} {
		s := idempotency.New(nil, redis.Keys(prefix), time.Hour, testenv.Logger(t))
		for _, p := range principals {
			for _, k := range keys {
				ks := idempotency.RedisKeys(s, p, "key_1", "POST", "/v1/jobs", k)
				if len(ks) < 2 {
					t.Fatalf("want the record and the binding, got %q", ks)
				}
				slot := redis.Slot(ks[0])
				for _, other := range ks[1:] {
					if redis.Slot(other) != slot {
						t.Errorf("%q (slot %d) and %q (slot %d) are in different slots", ks[0], slot, other, redis.Slot(other))
					}
				}
				slots[slot] = true
			}
		}
	}
	if len(slots) < 20 {
		t.Errorf("records use only %d slots: the tag must spread keys, not pin them", len(slots))
	}
}
