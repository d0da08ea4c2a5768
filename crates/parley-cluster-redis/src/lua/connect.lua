-- connect: registers a connection of ARGV[2] under its current lease term (starting a
-- new term if the lease lapsed or never was) and answers {1 if the user had no live
-- connection before else 0, the term}. KEYS[1] = user:<user_id>.
-- ARGV: prefix, node, serial, user_id, device_id, lease_ms.
local node, serial, user_id, device = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = now_ms()
local lease = lease_of(node)
if not lease_is_current(lease, now) then
  lease = start_term(node, now, tonumber(ARGV[6]))
end
local was_offline = not has_live_connection(user_id, now)
local field = node .. '/' .. serial
local previous = redis.call('HGET', KEYS[1], field)
if previous then
  local previous_term = split_value(previous)
  if previous_term ~= lease.term then
    forget_in_term(node, previous_term, serial)
  end
end
redis.call('HSET', KEYS[1], field, decimal(lease.term) .. ':' .. device)
redis.call('HSET', conns_key(node, lease.term), serial, user_id)
redis.call('SADD', terms_key(node), decimal(lease.term))
if was_offline then return {1, lease.term} end
return {0, lease.term}
