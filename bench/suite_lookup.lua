-- wrk script of bench/run.sh: bench/lookup.lua's random-user segment lookups
-- (GET /v1/users/{id}/segment), plus a count of answers by status class,
-- printed by done() as one line: "status 2xx=N 429=N 5xx=N other=N".
-- Run from bench/ (dofile path): wrk ... -s suite_lookup.lua URL -- users.txt
dofile("lookup.lua")

local threads = {}
s2xx, s429, s5xx, sother = 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2xx"); b = b + t:get("s429")
    c = c + t:get("s5xx"); d = d + t:get("sother")
  end
  io.write(string.format("status 2xx=%d 429=%d 5xx=%d other=%d\n", a, b, c, d))
end
