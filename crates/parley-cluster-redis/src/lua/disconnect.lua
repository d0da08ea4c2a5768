-- disconnect: removes one connection and answers 1 if the user has no live connection
-- left (so this call announces the offline). The user's other connections, if any, all
-- belong to lapsed terms: they are removed too, so no `reap` announces it again.
-- KEYS[1] = user:<user_id>. ARGV: prefix, node, serial, user_id.
local node, serial, user_id = ARGV[2], ARGV[3], ARGV[4]
local now = now_ms()
local field = node .. '/' .. serial
local value = redis.call('HGET', KEYS[1], field)
if not value then return 0 end
redis.call('HDEL', KEYS[1], field)
forget_in_term(node, split_value(value), serial)
if has_live_connection(user_id, now) then return 0 end
local entries = redis.call('HGETALL', KEYS[1])
for index = 1, #entries, 2 do
  local other_node, other_serial = split_field(entries[index])
  forget_in_term(other_node, split_value(entries[index + 1]), other_serial)
end
redis.call('DEL', KEYS[1])
return 1
