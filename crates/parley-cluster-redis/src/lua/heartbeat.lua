-- heartbeat: renews the node's lease if it is current ({1, term}), or starts the node's
-- next term ({0, term}: the lease was lost, and connections of the old term never count
-- again).
-- KEYS[1] = lease:<node>. ARGV: prefix, node, lease_ms.
local node, lease_ms = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local lease = lease_of(node)
if lease_is_current(lease, now) then
  redis.call('HSET', KEYS[1], 'until_ms', decimal(now + lease_ms))
  return {1, lease.term}
end
lease = start_term(node, now, lease_ms)
return {0, lease.term}
