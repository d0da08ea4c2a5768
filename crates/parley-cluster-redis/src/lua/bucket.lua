-- Shared by the rate-limit scripts (prepended to each one): a token bucket as
-- `parley_core::ratelimit::TokenBucket` computes it, on Redis's clock in microseconds.
-- A bucket is a hash {tokens, updated_us}; a missing one is full.

local function decimal(number) return string.format('%.17g', number) end

local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

-- The bucket's stored tokens and update time (nil if missing), and its level at `now`.
local function read_bucket(key, capacity, rate, now)
  local fields = redis.call('HMGET', key, 'tokens', 'updated_us')
  if not fields[1] then return nil, nil, capacity end
  local tokens, updated = tonumber(fields[1]), tonumber(fields[2])
  local elapsed = math.max(0, now - updated)
  return tokens, updated, math.min(capacity, tokens + elapsed * rate)
end

-- Expires the bucket when it would be full again (a missing bucket is full), so idle
-- buckets vanish and the key space follows the recently active keys.
local function expire_when_full(key, capacity, rate, level)
  local milliseconds = math.max(1, math.ceil((capacity - level) / rate / 1000))
  redis.call('PEXPIRE', key, decimal(milliseconds))
end

