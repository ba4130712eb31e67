package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// keyPrefix starts every key Podium writes, so a Redis can be shared.
const keyPrefix = "podium:"

// maxListed bounds how many nodes one Nodes call reads.
const maxListed = 1000

// Redis 7 (Debian's) has no SET IFEQ: compare-and-set is a Lua script,
// which also makes the heartbeat and the listing one round trip each.

// announceScript: KEYS node, owner, index, reserved; ARGV id, instance,
// value, ttl ms, viewers joined since the last beat. Returns 1, or 0 when another instance owns
// the id.
var announceScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
if cur and cur ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[3], now + ttl, ARGV[1])
local joined = tonumber(ARGV[5])
if joined > 0 then
  local left = redis.call('DECRBY', KEYS[4], joined)
  if left <= 0 then redis.call('DEL', KEYS[4]) end
end
return 1
`)

// leaveScript: KEYS node, owner, index, reserved; ARGV id, instance.
var leaveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// nodesScript: KEYS index; ARGV prefix, max. Drops expired ids from the
// index and returns id, value, reserved, ms left for each live node.
var nodesScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
  -- pcall: a key of the wrong type (written by something else) is
  -- skipped, not an error that hides every other node.
  local v = redis.pcall('GET', ARGV[1] .. 'node:' .. id)
  if type(v) == 'string' then
    local left = redis.call('PTTL', ARGV[1] .. 'node:' .. id)
    local r = redis.pcall('GET', ARGV[1] .. 'res:' .. id)
    if type(r) ~= 'string' then r = '0' end
    table.insert(out, id)
    table.insert(out, v)
    table.insert(out, r)
    table.insert(out, tostring(left))
  end
end
return out
`)

// Redis is the Registry on a Redis server (7 or newer).
type Redis struct {
	rdb *redis.Client
}

// NewRedis connects lazily to url (redis://[:password@]host:port/db):
// nothing is dialled until the first call, so a Redis that is down at
// start costs nothing but a log line from the heartbeat.
func NewRedis(url string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	// Short timeouts and no hidden retries: the heartbeat loop retries
	// with its own backoff, and the allocator falls back to its last view.
	opts.DialTimeout = time.Second
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	opts.MaxRetries = -1
	opts.PoolTimeout = time.Second
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true // no CLIENT SETINFO: older servers reject it noisily
	opts.DialerRetries = 1      // the heartbeat is the retry loop
	// go-redis logs every failed dial itself (to stderr, each time); the
	// heartbeat logs one line per state change instead. The library's
	// logger is process-wide: silencing it here is the only way.
	redis.SetLogger(&logging.VoidLogger{})
	return &Redis{rdb: redis.NewClient(opts)}, nil
}

func nodeKey(id string) string  { return keyPrefix + "node:" + id }
func ownerKey(id string) string { return keyPrefix + "owner:" + id }
func resKey(id string) string   { return keyPrefix + "res:" + id }
func sessKey(id string) string  { return keyPrefix + "sess:" + id }

const indexKey = keyPrefix + "nodes"

// Announce implements Registry.
func (r *Redis) Announce(ctx context.Context, id, instance string, value []byte, ttl time.Duration, joined int64) error {
	n, err := announceScript.Run(ctx, r.rdb, []string{nodeKey(id), ownerKey(id), indexKey, resKey(id)},
		id, instance, value, ttl.Milliseconds(), joined).Int()
	if err != nil {
		return fmt.Errorf("announce %s: %w", id, err)
	}
	if n == 0 {
		return ErrNodeTaken
	}
	return nil
}

// Leave implements Registry.
func (r *Redis) Leave(ctx context.Context, id, instance string) error {
	if err := leaveScript.Run(ctx, r.rdb, []string{nodeKey(id), ownerKey(id), indexKey, resKey(id)}, id, instance).Err(); err != nil {
		return fmt.Errorf("leave %s: %w", id, err)
	}
	return nil
}

// Nodes implements Registry.
func (r *Redis) Nodes(ctx context.Context) ([]Entry, error) {
	res, err := nodesScript.Run(ctx, r.rdb, []string{indexKey}, keyPrefix, maxListed).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make([]Entry, 0, len(res)/4)
	for i := 0; i+3 < len(res); i += 4 {
		reserved, _ := strconv.ParseInt(res[i+2], 10, 64)
		left, _ := strconv.ParseInt(res[i+3], 10, 64)
		out = append(out, Entry{ID: res[i], Value: []byte(res[i+1]), Reserved: reserved, TTLLeft: time.Duration(left) * time.Millisecond})
	}
	sortEntries(out)
	return out, nil
}

// Assign implements Registry.
func (r *Redis) Assign(ctx context.Context, node string, resTTL time.Duration, sid string, session []byte, sessTTL time.Duration) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, resKey(node))
		p.PExpire(ctx, resKey(node), resTTL)
		p.Set(ctx, sessKey(sid), session, sessTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("assign %s: %w", node, err)
	}
	return nil
}

// Session implements Registry.
func (r *Redis) Session(ctx context.Context, sid string) ([]byte, error) {
	b, err := r.rdb.Get(ctx, sessKey(sid)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return b, nil
}

// Close implements Registry.
func (r *Redis) Close() error { return r.rdb.Close() }
