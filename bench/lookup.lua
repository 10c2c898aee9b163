-- wrk script: GET /v1/users/{id}/segment for random known users
-- (with ?explain=true when the environment sets EXPLAIN=1).
local users = {}
local n = 0
local suffix = os.getenv("EXPLAIN") == "1" and "?explain=true" or ""

function init(args)
  local path = args[1] or "users.txt"
  for line in io.lines(path) do
    n = n + 1
    users[n] = line
  end
end

request = function()
  local u = users[math.random(1, n)]
  return wrk.format("GET", "/v1/users/" .. u .. "/segment" .. suffix)
end
