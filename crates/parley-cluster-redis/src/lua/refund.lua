-- refund: gives one token back to a bucket, up to its capacity (as `TokenBucket::give_back`:
-- the stored tokens grow, the update time stays). A missing bucket is full already.
-- KEYS[1] = the bucket key; ARGV = capacity, period_us.
local capacity = tonumber(ARGV[1])
local rate = capacity / tonumber(ARGV[2])
local now = now_us()
local tokens, updated = read_bucket(KEYS[1], capacity, rate, now)
if tokens == nil then return 0 end
tokens = math.min(capacity, tokens + 1)
local level = math.min(capacity, tokens + math.max(0, now - updated) * rate)
if level >= capacity then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', decimal(tokens))
  expire_when_full(KEYS[1], capacity, rate, level)
end
return 1
