package idempotency

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/internal/redis"
)

// A record is a Redis hash under recordKey with fields fp (the request's
// fingerprint), state ("running" or "done"), token (the claiming request's,
// so that a request whose lock expired cannot overwrite or delete a newer
// claim), and once done status, header (JSON), body (raw bytes) and withheld
// ("1" when the response carried a secret: body is then empty).
// recordKey includes the API key id: records are per credential.
//
// Next to it, bindingKey holds the "METHOD route" a (principal, key) was
// first used on, so that the same key on another route is refused. Both keys
// are written by the same script, so on a Redis Cluster they must share a
// slot: both start with the same hash tag, derived from (principal, key).

// claimScript claims the key for a request, or reports why it cannot.
// KEYS: record, binding. ARGV: fingerprint, "METHOD route", token, lock ms.
var claimScript = goredis.NewScript(`
local bound = redis.call('GET', KEYS[2])
if bound and bound ~= ARGV[2] then
  return {'other_route'}
end
local rec = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'header', 'body', 'withheld')
if rec[1] then
  return {'exists', rec[1], rec[2], rec[3], rec[4], rec[5], rec[6]}
end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', 'token', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return {'claimed'}
`)

// completeScript stores the response; retention starts now.
// KEYS: record, binding. ARGV: token, status, header, body, ttl ms, "METHOD route", withheld.
var completeScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'header', ARGV[3], 'body', ARGV[4], 'withheld', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[5])
return 1
`)

// releaseScript deletes the claim so a retry runs again.
// KEYS: record, binding. ARGV: token, "METHOD route".
var releaseScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
`)

// outcome is what a claim found.
type outcome int

const (
	claimed    outcome = iota // this request runs the handler
	running                   // the same request is still running
	done                      // the same request completed; replay it
	withheld                  // the same request completed with a secret; do not replay it
	otherBody                 // the key was used with another body
	otherRoute                // the key was used on another route
)

// claim tries to claim sc for a request whose body has fingerprint fp.
func (s *Store) claim(ctx context.Context, sc scope, fp, token string, lock time.Duration) (outcome, response, error) {
	res, err := claimScript.Run(ctx, s.rdb, s.redisKeys(sc), fp, sc.method+" "+sc.route, token, lock.Milliseconds()).Slice()
	if err != nil {
		return 0, response{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	switch str(res, 0) {
	case "claimed":
		return claimed, response{}, nil
	case "other_route":
		return otherRoute, response{}, nil
	}
	switch {
	case str(res, 1) != fp:
		return otherBody, response{}, nil
	case str(res, 2) != "done":
		return running, response{}, nil
	}
	resp, err := decode(str(res, 3), str(res, 4), str(res, 5))
	if str(res, 6) == "1" {
		return withheld, resp, err
	}
	return done, resp, err
}

// complete stores resp under sc for ttl.
func (s *Store) complete(ctx context.Context, sc scope, token string, resp response) error {
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("encode stored headers: %w", err)
	}
	body, flag := resp.Body, "0"
	if resp.Withheld {
		body, flag = nil, "1"
	}
	err = completeScript.Run(ctx, s.rdb, s.redisKeys(sc), token, resp.Status, header, body,
		s.ttl.Milliseconds(), sc.method+" "+sc.route, flag).Err()
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// release deletes the claim so that a retry runs again.
func (s *Store) release(ctx context.Context, sc scope, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, s.redisKeys(sc), token, sc.method+" "+sc.route).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// redisKeys are the record and binding keys of sc. The key itself is hashed:
// it may be 255 characters of anything printable, colons included. The
// record is per API key, so only the credential that made a request can get
// its replay; the binding to a route is per principal, so the same key on
// another route is 422 whichever of the principal's keys sends it.
//
// Both keys begin with the same text up to and including a hash tag of
// (principal, key), so a Redis Cluster puts them in one slot, as the scripts
// need, while different keys spread over the slots. The tag comes before the
// principal, whose text is the client's.
func (s *Store) redisKeys(sc scope) []string {
	tag := redis.Tag(digest(sc.principal, sc.key)[:16])
	return []string{
		s.keys.Key("idem", tag, sc.principal, digest(sc.keyID, sc.method, sc.route, sc.key)),
		s.keys.Key("idem", tag, sc.principal, "route", digest(sc.key)),
	}
}

func decode(status, header, body string) (response, error) {
	code, err := strconv.Atoi(status)
	if err != nil {
		return response{}, fmt.Errorf("decode stored status %q: %w", status, err)
	}
	resp := response{Status: code, Body: []byte(body)}
	if err := json.Unmarshal([]byte(header), &resp.Header); err != nil {
		return response{}, fmt.Errorf("decode stored headers: %w", err)
	}
	return resp, nil
}

// str returns res[i] as a string; Redis nils (missing fields) are "".
func str(res []any, i int) string {
	if i >= len(res) {
		return ""
	}
	s, _ := res[i].(string)
	return s
}
