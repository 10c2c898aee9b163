-- wrk script of bench/soak.sh: the background mix beside the lookups, paced
-- by delay() to RATE requests/s over all threads (one connection per
-- thread, so each answer belongs to the thread's last request). A cycle of
-- five requests: POST /v1/events (20 events of random known users),
-- POST /v1/texts (5 texts), POST /v1/events again, GET
-- /v1/spaces/segments/clusters, GET /v1/drift. done() prints one line:
-- "mix events=N texts=N clusters=N drift=N ok=N 429=N 5xx=N other=N"
-- (events and texts count items accepted by 2xx answers; clusters and
-- drift count 2xx reads).
-- wrk -tT -cT ... -s soak_mix.lua URL -- USERS RATE TAG T (T threads)
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local users, pause_ms, tag, step, last = 1000, 20, "x", 0, ""
local words = {
  {"refund", "card", "payment", "charge", "bank", "fee", "transfer"},
  {"weather", "rain", "sunny", "forecast", "storm", "wind", "cloud"},
  {"football", "match", "goal", "score", "team", "league", "coach"},
  {"delivery", "parcel", "courier", "late", "address", "tracking", "box"}}
local types = {"view", "buy", "search", "cart", "share", "login", "review", "rate"}

function init(args)
  users = tonumber(args[1] or "1000")
  -- each of the THREADS threads sends RATE / THREADS requests per second
  pause_ms = math.floor(1000 * tonumber(args[4] or "1") / tonumber(args[2] or "50"))
  tag = args[3] or "x"
  math.randomseed(os.time() * 100 + tid)
  n_ev, n_tx, n_cl, n_dr, s_ok, s429, s5xx, sother = 0, 0, 0, 0, 0, 0, 0, 0
end

function delay()
  return pause_ms
end

local function next_id(prefix)
  counter = counter + 1
  return string.format("%s-%s-%d-%d", prefix, tag, tid, counter)
end

local function events_body()
  local now = os.time() * 1000
  local items = {}
  for i = 1, 20 do
    items[i] = string.format(
      '{"event_id":"%s","user_id":"u%d","type":"%s","ts":%d}',
      next_id("se"), math.random(0, users - 1),
      types[math.random(1, #types)], now - math.random(0, 86400000))
  end
  return '{"events":[' .. table.concat(items, ",") .. ']}'
end

local function texts_body()
  local items = {}
  for i = 1, 5 do
    local w = words[math.random(1, #words)]
    local t = {}
    for j = 1, 6 do t[j] = w[math.random(1, #w)] end
    items[i] = string.format('{"text_id":"%s","user_id":"u%d","text":"%s"}',
      next_id("st"), math.random(0, users - 1), table.concat(t, " "))
  end
  return '{"texts":[' .. table.concat(items, ",") .. ']}'
end

local json = {["Content-Type"] = "application/json"}
local cycle = {"events", "texts", "events", "clusters", "drift"}

request = function()
  step = step % #cycle + 1
  last = cycle[step]
  if last == "events" then
    return wrk.format("POST", "/v1/events", json, events_body())
  elseif last == "texts" then
    return wrk.format("POST", "/v1/texts", json, texts_body())
  elseif last == "clusters" then
    return wrk.format("GET", "/v1/spaces/segments/clusters")
  end
  return wrk.format("GET", "/v1/drift")
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    s_ok = s_ok + 1
    if last == "events" then n_ev = n_ev + 20
    elseif last == "texts" then n_tx = n_tx + 5
    elseif last == "clusters" then n_cl = n_cl + 1
    else n_dr = n_dr + 1 end
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local t = {0, 0, 0, 0, 0, 0, 0, 0}
  local names = {"n_ev", "n_tx", "n_cl", "n_dr", "s_ok", "s429", "s5xx", "sother"}
  for _, th in ipairs(threads) do
    for i, k in ipairs(names) do t[i] = t[i] + th:get(k) end
  end
  io.write(string.format(
    "mix events=%d texts=%d clusters=%d drift=%d ok=%d 429=%d 5xx=%d other=%d\n",
    t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]))
end
