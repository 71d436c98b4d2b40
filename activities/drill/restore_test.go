package drill

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
