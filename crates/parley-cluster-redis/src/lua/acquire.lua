-- acquire: takes one token from every bucket, or none. Answers 0 when granted, else the
-- longest wait in microseconds (rounded up, at least 1). A bucket named twice is checked
-- and spent once. KEYS = the bucket keys; ARGV = capacity, period_us for each, in order.
local now = now_us()
local seen = {}
local buckets = {}
local wait_us = 0
for index, key in ipairs(KEYS) do
  if not seen[key] then
    seen[key] = true
    local capacity = tonumber(ARGV[2 * index - 1])
    local rate = capacity / tonumber(ARGV[2 * index])
    local _, _, level = read_bucket(key, capacity, rate, now)
    if level < 1 then
      wait_us = math.max(wait_us, (1 - level) / rate)
    end
    buckets[#buckets + 1] = { key = key, capacity = capacity, rate = rate, level = level }
  end
end
if wait_us > 0 then
  return math.max(1, math.ceil(wait_us))
end
for _, bucket in ipairs(buckets) do
  local tokens = bucket.level - 1
  redis.call('HSET', bucket.key, 'tokens', decimal(tokens), 'updated_us', decimal(now))
  expire_when_full(bucket.key, bucket.capacity, bucket.rate, tokens)
end
return 0
