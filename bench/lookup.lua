-- wrk script: GET /v1/users/{id}/segment for random known users.
local users = {}
local n = 0

function init(args)
  local path = args[1] or "users.txt"
  for line in io.lines(path) do
    n = n + 1
    users[n] = line
  end
end

request = function()
  local u = users[math.random(1, n)]
  return wrk.format("GET", "/v1/users/" .. u .. "/segment")
end
