package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claims: a member of a group claims each stream it has, so every box can
// ask who has a class (OvenMediaEngine's OriginMapStore: SET NX with a
// short expiry, refreshed by the owner; see cluster-notes.md §5). A claim
// is the owner's node id under podium:claim:{group}:{key}, expiring after
// ttl unless refreshed; podium:claims:{group} indexes the live ones (a
// zset scored by expiry, like the node index), so a read lists a group's
// claims in one round trip without SCAN.

// maxClaims bounds how many claims one read returns per group.
const maxClaims = 10_000

// maxReadGroups bounds how many groups one read covers.
const maxReadGroups = 32

// claimPrefix starts the claim keys of group.
func claimPrefix(group string) string { return keyPrefix + "claim:" + group + ":" }
func claimIndex(group string) string  { return keyPrefix + "claims:" + group }

// claimScript: KEYS index; ARGV claim prefix, node, ttl ms, stream
// keys... For each stream key: SET NX PX, or refresh when node holds it
// already (compare-and-refresh). Returns the holder of each key after the
// call ("" for a key of the wrong type, which is left alone).
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  local k = ARGV[1] .. ARGV[i]
  local cur = redis.pcall('GET', k)
  if cur == false then
    redis.call('SET', k, ARGV[2], 'PX', ttl)
    cur = ARGV[2]
  elseif type(cur) ~= 'string' then
    cur = ''
  elseif cur == ARGV[2] then
    redis.call('PEXPIRE', k, ttl)
  end
  if cur == ARGV[2] then redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
  table.insert(out, cur)
end
return out
`)

// releaseScript: KEYS index; ARGV claim prefix, node, stream keys...
// Deletes each claim node holds (compare-and-delete); another node's
// claim stays.
var releaseScript = redis.NewScript(`
local n = 0
for i = 3, #ARGV do
  local k = ARGV[1] .. ARGV[i]
  if redis.pcall('GET', k) == ARGV[2] then
    redis.call('DEL', k)
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

// ownersScript: ARGV key prefix, max, groups... Drops lapsed claims from
// each group's index and returns group, stream key, holder for each live
// claim.
var ownersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 3, #ARGV do
  local g = ARGV[i]
  local idx = ARGV[1] .. 'claims:' .. g
  if redis.call('TYPE', idx)['ok'] == 'zset' then
    redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
    local keys = redis.call('ZRANGE', idx, 0, tonumber(ARGV[2]) - 1)
    for _, k in ipairs(keys) do
      local v = redis.pcall('GET', ARGV[1] .. 'claim:' .. g .. ':' .. k)
      if type(v) == 'string' then
        table.insert(out, g)
        table.insert(out, k)
        table.insert(out, v)
      end
    end
  end
end
return out
`)

// Claim implements Registry.
func (r *Redis) Claim(ctx context.Context, group, node string, keys []string, ttl time.Duration) (map[string]string, error) {
	if len(keys) == 0 {
		return map[string]string{}, nil
	}
	args := make([]any, 0, 3+len(keys))
	args = append(args, claimPrefix(group), node, ttl.Milliseconds())
	for _, k := range keys {
		args = append(args, k)
	}
	res, err := claimScript.Run(ctx, r.rdb, []string{claimIndex(group)}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim %d streams in group %s: %w", len(keys), group, err)
	}
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		if i < len(res) && res[i] != "" {
			out[k] = res[i]
		}
	}
	return out, nil
}

// Release implements Registry.
func (r *Redis) Release(ctx context.Context, group, node string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(keys))
	args = append(args, claimPrefix(group), node)
	for _, k := range keys {
		args = append(args, k)
	}
	if err := releaseScript.Run(ctx, r.rdb, []string{claimIndex(group)}, args...).Err(); err != nil {
		return fmt.Errorf("release %d streams in group %s: %w", len(keys), group, err)
	}
	return nil
}

// Owners implements Registry.
func (r *Redis) Owners(ctx context.Context, groups []string) (map[string]map[string]string, error) {
	groups = boundGroups(groups)
	out := make(map[string]map[string]string, len(groups))
	if len(groups) == 0 {
		return out, nil
	}
	args := make([]any, 0, 2+len(groups))
	args = append(args, keyPrefix, maxClaims)
	for _, g := range groups {
		args = append(args, g)
		out[g] = map[string]string{}
	}
	res, err := ownersScript.Run(ctx, r.rdb, nil, args...).StringSlice()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read claims: %w", err)
	}
	for i := 0; i+2 < len(res); i += 3 {
		if m, ok := out[res[i]]; ok {
			m[res[i+1]] = res[i+2]
		}
	}
	return out, nil
}

// boundGroups sorts and dedups groups, at most maxReadGroups.
func boundGroups(groups []string) []string {
	g := slices.Clone(groups)
	slices.Sort(g)
	g = slices.Compact(g)
	g = slices.DeleteFunc(g, func(s string) bool { return s == "" })
	if len(g) > maxReadGroups {
		g = g[:maxReadGroups]
	}
	return g
}
