package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
)

// SentinelMaster is the master name RedisSentinel's sentinels monitor.
const SentinelMaster = "mymaster"

// RedisHA is a Redis primary with one replica watched by three sentinels,
// all of the test's own on free loopback ports.
type RedisHA struct {
	// URL is the platform's redis-sentinel:// URL of the set.
	URL              string
	Primary, Replica *Process
	Sentinels        []*Process
}

// RedisSentinel starts the set (redis-server, and redis-server --sentinel
// with down-after 1s and failover-timeout 5s, quorum 2) in temp dirs, waits
// until the replica streams and the sentinels know it, and stops every
// process by PID when the test ends. It skips the test without redis-server.
func RedisSentinel(t testing.TB) *RedisHA {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not installed: %v", err)
	}
	dir := t.TempDir()
	pPort, rPort := FreePort(t), FreePort(t)
	h := &RedisHA{}
	h.Primary = startRedis(t, bin, dir, "primary", pPort)
	h.Replica = startRedis(t, bin, dir, "replica", rPort, "--replicaof", "127.0.0.1", strconv.Itoa(pPort))
	waitFor(t, 15*time.Second, "the replica to stream", func(ctx context.Context) bool {
		return infoField(ctx, h.Replica.Addr, "replication", "master_link_status") == "up"
	})
	var addrs []string
	for i := range 3 {
		port := FreePort(t)
		name := fmt.Sprintf("sentinel%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n", port, dir) +
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n", SentinelMaster, pPort) +
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000\n", SentinelMaster) +
			fmt.Sprintf("sentinel failover-timeout %s 5000\n", SentinelMaster) +
			fmt.Sprintf("sentinel parallel-syncs %s 1\n", SentinelMaster)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		h.Sentinels = append(h.Sentinels, Start(t, dir, name, addr(port), bin, conf, "--sentinel"))
		addrs = append(addrs, addr(port))
	}
	h.URL = "redis-sentinel://" + strings.Join(addrs, ",") + "/" + SentinelMaster
	waitFor(t, 20*time.Second, "the sentinels to know the replica and each other", func(ctx context.Context) bool {
		for _, s := range h.Sentinels {
			c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
			m, err := c.Master(ctx, SentinelMaster).Result()
			_ = c.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})
	return h
}

// MasterAddr is the primary's address as the first answering sentinel says.
func (h *RedisHA) MasterAddr(ctx context.Context) string {
	for _, s := range h.Sentinels {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
		a, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		_ = c.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1]
		}
	}
	return ""
}

// Failover asks a sentinel to fail the primary over to the replica now
// (SENTINEL FAILOVER), as an operator or a crash would make it.
func (h *RedisHA) Failover(ctx context.Context) error {
	c := goredis.NewSentinelClient(&goredis.Options{Addr: h.Sentinels[0].Addr})
	defer c.Close()
	return c.Failover(ctx, SentinelMaster).Err()
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func startRedis(t testing.TB, bin, dir, name string, port int, extra ...string) *Process {
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", data,
		"--save", "", "--appendonly", "no"}, extra...)
	return Start(t, dir, name, addr(port), bin, args...)
}

func infoField(ctx context.Context, addr, section, field string) string {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func(context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// SlotGuard is a go-redis hook that fails the test when one command names
// keys of different Redis Cluster slots (a script, MGET, DEL, a MULTI's
// commands are checked one by one): on a cluster such a command is refused
// with CROSSSLOT. Add it to a client the code under test uses.
func SlotGuard(t testing.TB) goredis.Hook { return slotGuard{t} }

type slotGuard struct{ t testing.TB }

func (g slotGuard) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (g slotGuard) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		g.check(cmd)
		return next(ctx, cmd)
	}
}

func (g slotGuard) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			g.check(c)
		}
		return next(ctx, cmds)
	}
}

func (g slotGuard) check(cmd goredis.Cmder) {
	keys := commandKeys(cmd.Args())
	for _, k := range keys[min(1, len(keys)):] {
		if redis.Slot(k) != redis.Slot(keys[0]) {
			g.t.Errorf("%s touches keys of different cluster slots: %q", cmd.Name(), keys)
			return
		}
	}
}

// commandKeys are the keys of the multi-key commands the platform sends.
func commandKeys(args []any) []string {
	str := func(a []any) []string {
		out := make([]string, 0, len(a))
		for _, v := range a {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	if len(args) == 0 {
		return nil
	}
	switch strings.ToLower(fmt.Sprint(args[0])) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		if len(args) < 3 {
			return nil
		}
		n, _ := strconv.Atoi(fmt.Sprint(args[2]))
		if 3+n > len(args) {
			return nil
		}
		return str(args[3 : 3+n])
	case "mget", "del", "unlink", "exists", "touch", "watch":
		return str(args[1:])
	}
	return nil
}
