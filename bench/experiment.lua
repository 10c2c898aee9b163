-- wrk script: GET /v1/experiments/<EXP>/assignment/<user> for known users
-- (users.txt, one id per line). WALK=1: thread t of THREADS walks the
-- users in order from t * n / THREADS (first assignments while unseen
-- users last, then repeats); otherwise a random user per request.
local users = {}
local n = 0
local exp = os.getenv("EXP") or "bench"
local walk = os.getenv("WALK") == "1"
local threads = tonumber(os.getenv("THREADS") or "1")
local next_thread = 0
local counter = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  for line in io.lines(args[1] or "users.txt") do
    n = n + 1
    users[n] = line
  end
end

request = function()
  local i
  if walk then
    i = ((tid or 0) * math.floor(n / threads) + counter) % n + 1
    counter = counter + 1
  else
    i = math.random(1, n)
  end
  return wrk.format("GET", "/v1/experiments/" .. exp .. "/assignment/" .. users[i])
end
