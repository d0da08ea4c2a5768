-- online_devices: the devices with a live connection of one user, each once.
-- KEYS[1] = user:<user_id>. ARGV: prefix, user_id.
local now = now_ms()
local seen = {}
local devices = {}
any_live_connection(ARGV[2], now, function(_, _, _, device)
  if not seen[device] then
    seen[device] = true
    devices[#devices + 1] = device
  end
  return false
end)
return devices
