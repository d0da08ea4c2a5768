-- Shared by every presence script (prepended to each one). ARGV[1] is always the
-- registry's key prefix, `parley:{<prefix>}:presence:`; the key layout is in lib.rs.
--
-- A connection is live while its node's lease is current and the connection was
-- registered in that lease's term: `lease:<node>`'s `term` equals the connection's term
-- and its `until_ms` is later than Redis's clock now.

local prefix = ARGV[1]

-- Numbers go into Redis as whole decimal strings, never in exponent notation.
local function decimal(number) return string.format('%.17g', number) end

local function lease_key(node) return prefix .. 'lease:' .. node end
local function terms_key(node) return prefix .. 'terms:' .. node end
local function conns_key(node, term) return prefix .. 'conns:' .. node .. ':' .. decimal(term) end
local function user_key(user_id) return prefix .. 'user:' .. user_id end
local nodes_key = prefix .. 'nodes'

-- Redis's own clock, in milliseconds: every node's scripts read the same one.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Leases read once per script run (a script sees no other writer meanwhile).
local leases = {}
local function lease_of(node)
  local lease = leases[node]
  if lease == nil then
    local fields = redis.call('HMGET', lease_key(node), 'term', 'until_ms')
    lease = {
      term = fields[1] and tonumber(fields[1]) or nil,
      until_ms = fields[2] and tonumber(fields[2]) or nil,
    }
    leases[node] = lease
  end
  return lease
end

local function lease_is_current(lease, now)
  return lease.until_ms ~= nil and lease.until_ms > now
end

-- Starts the node's next term (0 for a node never seen). The lease hash is never
-- deleted, so a term number never repeats for a node id.
local function start_term(node, now, lease_ms)
  local lease = lease_of(node)
  local term = 0
  if lease.term ~= nil then term = lease.term + 1 end
  lease.term = term
  lease.until_ms = now + lease_ms
  redis.call('HSET', lease_key(node), 'term', decimal(term), 'until_ms', decimal(lease.until_ms))
  redis.call('SADD', nodes_key, node)
  return lease
end

-- A user hash entry: field `<node>/<serial>` (node ids have no '/'), value
-- `<term>:<device_id>` (the term is digits, so the first ':' ends it).
local function split_field(field)
  local slash = string.find(field, '/', 1, true)
  return string.sub(field, 1, slash - 1), string.sub(field, slash + 1)
end

local function split_value(value)
  local colon = string.find(value, ':', 1, true)
  return tonumber(string.sub(value, 1, colon - 1)), string.sub(value, colon + 1)
end

local function is_live(node, term, now)
  local lease = lease_of(node)
  return lease.term == term and lease_is_current(lease, now)
end

-- Calls `visit(node, serial, term, device)` for each live connection of the user until
-- it returns true; answers whether one did.
local function any_live_connection(user_id, now, visit)
  local entries = redis.call('HGETALL', user_key(user_id))
  for index = 1, #entries, 2 do
    local node, serial = split_field(entries[index])
    local term, device = split_value(entries[index + 1])
    if is_live(node, term, now) and visit(node, serial, term, device) then
      return true
    end
  end
  return false
end

local function has_live_connection(user_id, now)
  return any_live_connection(user_id, now, function() return true end)
end

-- Takes a connection out of its term's index (the reaper's list); a term left with no
-- connection leaves the node's list of terms.
local function forget_in_term(node, term, serial)
  local key = conns_key(node, term)
  redis.call('HDEL', key, serial)
  if redis.call('EXISTS', key) == 0 then
    redis.call('SREM', terms_key(node), decimal(term))
  end
end

