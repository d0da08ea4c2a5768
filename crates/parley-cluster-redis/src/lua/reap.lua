-- reap: removes the connections of every term that is not live (its node's lease
-- lapsed, or the node has started a newer term) and answers the users left with no
-- connection at all, as a flat list `user_id, node, user_id, node, ...`. At most
-- ARGV[2] connections are removed per run (so one run never holds Redis for long); the
-- rest, and the users they leave offline, go to the next run. A user is answered only by
-- the run that removes their last connection, so once across all callers.
-- KEYS[1] = nodes. ARGV: prefix, budget.
local budget = tonumber(ARGV[2])
local now = now_ms()
local reached = {}
local order = {}

local function reap_term(node, term)
  local key = conns_key(node, term)
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', key, cursor, 'COUNT', 100)
    cursor = page[1]
    local entries = page[2]
    for index = 1, #entries, 2 do
      if budget <= 0 then return end
      local serial, user_id = entries[index], entries[index + 1]
      local field = node .. '/' .. serial
      local value = redis.call('HGET', user_key(user_id), field)
      -- Re-registered in a later term: that entry is not this term's to remove.
      if value and split_value(value) == term then
        redis.call('HDEL', user_key(user_id), field)
        if reached[user_id] == nil then
          reached[user_id] = node
          order[#order + 1] = user_id
        end
      end
      redis.call('HDEL', key, serial)
      budget = budget - 1
    end
  until cursor == '0' or budget <= 0
end

for _, node in ipairs(redis.call('SMEMBERS', nodes_key)) do
  local lease = lease_of(node)
  local current = lease_is_current(lease, now)
  for _, term_text in ipairs(redis.call('SMEMBERS', terms_key(node))) do
    local term = tonumber(term_text)
    if budget > 0 and not (current and term == lease.term) then
      reap_term(node, term)
      if redis.call('EXISTS', conns_key(node, term)) == 0 then
        redis.call('SREM', terms_key(node), term_text)
      end
    end
  end
  if not current and redis.call('EXISTS', terms_key(node)) == 0 then
    redis.call('SREM', nodes_key, node)
  end
end

local departures = {}
for _, user_id in ipairs(order) do
  if redis.call('EXISTS', user_key(user_id)) == 0 then
    departures[#departures + 1] = user_id
    departures[#departures + 1] = reached[user_id]
  end
end
return departures
