-- online: one flag (1 or 0) per user asked, in the order asked.
-- KEYS = user:<user_id> for each; ARGV: prefix, then the user ids in the same order.
local now = now_ms()
local answers = {}
for index = 2, #ARGV do
  if has_live_connection(ARGV[index], now) then
    answers[#answers + 1] = 1
  else
    answers[#answers + 1] = 0
  end
end
return answers
