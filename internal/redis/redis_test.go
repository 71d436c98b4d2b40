package redis

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestSlot_MatchesRedisCluster(t *testing.T) {
	// Values from the cluster specification and CLUSTER KEYSLOT.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "hello": 866,
		"{user1000}.following": Slot("user1000"), "{user1000}.followers": Slot("user1000"),
		"foo{}{bar}": Slot("foo{}{bar}"), "foo{{bar}}zap": Slot("{bar"), "foo{bar}{zap}": Slot("bar"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error("an empty tag must hash the whole key")
	}
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		url  string
		want goredis.UniversalOptions
	}{
		{"redis://:pw@127.0.0.1:6380/2", goredis.UniversalOptions{Addrs: []string{"127.0.0.1:6380"}, Password: "pw", DB: 2}},
		{"redis-sentinel://127.0.0.1:26379/mymaster", goredis.UniversalOptions{Addrs: []string{"127.0.0.1:26379"}, MasterName: "mymaster"}},
		{"redis-sentinel://u:p%40ss@10.0.0.1:26379,[::1]:26380/main?db=3&sentinel_password=sp",
			goredis.UniversalOptions{Addrs: []string{"10.0.0.1:26379", "[::1]:26380"}, MasterName: "main", Username: "u",
				Password: "p@ss", DB: 3, SentinelPassword: "sp"}},
		{"redis-cluster://:pw@a:7000,b:7001", goredis.UniversalOptions{Addrs: []string{"a:7000", "b:7001"}, Password: "pw", IsClusterMode: true}},
	}
	for _, c := range cases {
		got, err := ParseURL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if g, w := *got, c.want; !equalOpts(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.url, g, w)
		}
	}
}

func equalOpts(g, w goredis.UniversalOptions) bool {
	if len(g.Addrs) != len(w.Addrs) {
		return false
	}
	for i := range g.Addrs {
		if g.Addrs[i] != w.Addrs[i] {
			return false
		}
	}
	return g.MasterName == w.MasterName && g.Username == w.Username && g.Password == w.Password &&
		g.DB == w.DB && g.SentinelPassword == w.SentinelPassword && g.IsClusterMode == w.IsClusterMode
}

func TestParseURL_Refuses(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:6379",
		"redis-sentinel://127.0.0.1:26379",           // no master name
		"redis-sentinel://127.0.0.1:26379/a/b",       // not one name
		"redis-sentinel://127.0.0.1/mymaster",        // no port
		"redis-sentinel://127.0.0.1:26379/m?x=1",     // unknown parameter
		"redis-sentinel://127.0.0.1:26379/m?db=x",    // bad db
		"redis-cluster://127.0.0.1:7000/1",           // a cluster has db 0 only
		"redis-cluster://127.0.0.1:7000,127.0.0.1:x", // bad port
	} {
		if _, err := ParseURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestServerURL(t *testing.T) {
	ctx := context.Background()
	if u, err := ServerURL(ctx, "redis://:pw@h:6379/2"); err != nil || u != "redis://:pw@h:6379/2" {
		t.Errorf("one server: %q %v", u, err)
	}
	if _, err := ServerURL(ctx, "redis-cluster://a:7000,b:7001"); err == nil {
		t.Error("a cluster has no single server to snapshot")
	}
}
